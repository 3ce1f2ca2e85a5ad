/**
 * The scheduler's configuration (`config.json`): the original mr-redis fields
 * plus a few of our own, with defaults for the embedded set-up.
 *
 * @module
 */
import { didYouMean } from "./did_you_mean.ts";
import { endpointProblem } from "./store/endpoints.ts";

import { agentsShareHost, isLoopback } from "./release/hosts.ts";
import { parseHostNetwork } from "./mesos/local/host_network.ts";
import {
  agentTotal,
  parseAgentResources,
  reservedPerAgent,
} from "./mesos/local/agent_resources.ts";

/** Where the state lives. */
export type DBType = "etcd" | "zookeeper" | "embedded";

/** The scheduler configuration. Field names are the original's. */
export interface Config {
  /** Unix user the tasks run as (FrameworkInfo.user). */
  UserName: string;
  /** FrameworkInfo.name. */
  FrameworkName: string;
  /** `host:port`, `h1:p,h2:p`, `zk://h1,h2/mesos`, `local` or `local:N`. */
  Master: string;
  /**
   * The executor to ship: a compiled MrRedisExecutor, a release's
   * `MrRedisExecutor` or a release directory; empty: the one that comes with
   * this sched (see `lib/release/shipping.ts`).
   */
  ExecutorPath: string;
  /** Kept for compatibility; containers are not used, redis-server comes from RedisServerPath. */
  RedisImage: string;
  /** `etcd`, `zookeeper` or `embedded`. */
  DBType: DBType;
  /** Comma-separated endpoints (etcd/ZooKeeper) or a file path (embedded). */
  DBEndPoint: string;
  /** `stderr` or a file path to append log lines to. */
  LogFile: string;
  /**
   * Address agents use to reach the artifact server (it listens there); empty:
   * `127.0.0.1` when the agents share this host, else this host's first
   * non-loopback IPv4 address.
   */
  ArtifactIP: string;
  /** Artifact server port. */
  ArtifactPort: number;
  /** REST API port. */
  HTTPPort: number;
  /** redis-server binary shipped to agents (empty: the agent's own `redis-server` on PATH). */
  RedisServerPath: string;
  /** Address the REST API listens on. */
  HTTPAddress: string;
  /** Key prefix in the store. */
  StorePrefix: string;
  /** FrameworkInfo.failover_timeout: how long Mesos keeps tasks when the scheduler is away. */
  FailoverTimeoutSeconds: number;
  /** Work directory of the local cluster (sandboxes), for `Master: local`. */
  LocalWorkDir: string;
  /** First port of the local cluster's agents' `ports` ranges (agent i starts at base + i × LocalPortsPerAgent). */
  LocalPortsBase: number;
  /** Size of each local agent's `ports` range. */
  LocalPortsPerAgent: number;
  /** How long the local cluster keeps the sandbox of an ended executor, in seconds (Mesos `--gc_delay`). */
  LocalGCDelaySeconds: number;
  /**
   * An IPv4 /24 (`198.18.7.0/24`): the local cluster's agents are hosts of
   * their own (network namespace, address, root) on it; empty: they share
   * this host.
   */
  LocalNetwork: string;
  /**
   * Static reservations of the local cluster's agents, white-space separated
   * entries `I=RESOURCES` (agent I, from 0) or `RESOURCES` (every agent),
   * each as a Mesos agent's `--resources`:
   * `0=cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099]`; empty: none.
   */
  LocalReserved: string;
  /**
   * URL other schedulers name as this one's REST API while it leads (etcd and
   * ZooKeeper only); empty: `http://{HTTPAddress or the host name}:{HTTPPort}`.
   */
  AdvertiseURL: string;
  /** Lease ttl of the leader lock in seconds (etcd; ZooKeeper uses its session timeout), 2 to 600. */
  LeaderTTLSeconds: number;
  /** The one API token (client name `default`); empty: none. */
  APIToken: string;
  /** A file of API tokens, one `name:token` a line; empty: none. */
  APITokenFile: string;
  /** Allows a non-loopback `HTTPAddress` with no token (the API is then open to anyone who reaches it). */
  InsecureAPI: boolean;
  /** PEM certificate (chain) of the REST API and UI; with `KeyFile`, they are served over HTTPS. */
  CertFile: string;
  /** PEM private key for `CertFile`. */
  KeyFile: string;
  /** Mesos framework principal (FrameworkInfo.principal, HTTP Basic user); empty: none. */
  Principal: string;
  /** The principal's secret (HTTP Basic password). */
  Secret: string;
  /** A file holding the secret (trailing newline ignored), instead of `Secret`. */
  SecretFile: string;
  /** The Mesos role the framework subscribes with; `*`: the default role. */
  Role: string;
  /**
   * How long a connection to an instance's proxy waits for a usable master
   * (during a failover) before it gets an `-ERR` line, in seconds.
   */
  ProxyWaitSeconds: number;
}

/** A user mistake in the configuration; the message names the field and value. */
export class ConfigError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigError";
  }
}

/** The defaults: local cluster and embedded store. */
export function defaultConfig(): Config {
  return {
    UserName: Deno.env.get("USER") ?? "root",
    FrameworkName: "MrRedis",
    Master: "local",
    ExecutorPath: "",
    RedisImage: "redis:3.0-alpine",
    DBType: "embedded",
    DBEndPoint: "./mr-redis-data/state.db",
    LogFile: "stderr",
    ArtifactIP: "",
    ArtifactPort: 5454,
    HTTPPort: 5656,
    RedisServerPath: "",
    HTTPAddress: "127.0.0.1",
    StorePrefix: "/mr-redis",
    FailoverTimeoutSeconds: 604800,
    LocalWorkDir: "./mr-redis-data/local",
    LocalPortsBase: 31000,
    LocalPortsPerAgent: 500,
    LocalGCDelaySeconds: 86400,
    LocalNetwork: "",
    LocalReserved: "",
    AdvertiseURL: "",
    LeaderTTLSeconds: 10,
    APIToken: "",
    APITokenFile: "",
    InsecureAPI: false,
    CertFile: "",
    KeyFile: "",
    Principal: "",
    Secret: "",
    SecretFile: "",
    Role: "*",
    ProxyWaitSeconds: 2,
  };
}

type Kind = "string" | "port" | "seconds" | "count" | "boolean";

const FIELDS: Record<keyof Config, Kind> = {
  UserName: "string",
  FrameworkName: "string",
  Master: "string",
  ExecutorPath: "string",
  RedisImage: "string",
  DBType: "string",
  DBEndPoint: "string",
  LogFile: "string",
  ArtifactIP: "string",
  ArtifactPort: "port",
  HTTPPort: "port",
  RedisServerPath: "string",
  HTTPAddress: "string",
  StorePrefix: "string",
  FailoverTimeoutSeconds: "seconds",
  LocalWorkDir: "string",
  LocalPortsBase: "port",
  LocalPortsPerAgent: "count",
  LocalGCDelaySeconds: "seconds",
  LocalNetwork: "string",
  LocalReserved: "string",
  AdvertiseURL: "string",
  LeaderTTLSeconds: "seconds",
  APIToken: "string",
  APITokenFile: "string",
  InsecureAPI: "boolean",
  CertFile: "string",
  KeyFile: "string",
  Principal: "string",
  Secret: "string",
  SecretFile: "string",
  Role: "string",
  ProxyWaitSeconds: "seconds",
};

const DB_TYPES: readonly string[] = ["etcd", "zookeeper", "embedded"];

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function parsePort(field: string, value: unknown, where: string): number {
  const n = typeof value === "number"
    ? value
    : typeof value === "string" && /^\s*\d+\s*$/.test(value)
    ? Number(value)
    : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new ConfigError(
      `${where}: field "${field}" must be a port number from 0 to 65535 (a number or a string of digits), but got ${
        show(value)
      }`,
    );
  }
  return n;
}

/**
 * Parses a config document. Fields left out take their defaults. Throws
 * {@linkcode ConfigError} naming the field and the value for an unknown field,
 * a wrong type, a port out of range or an unknown `DBType`.
 */
export function parseConfig(text: string, where = "config"): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${where}: not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${where}: must be a JSON object, but got ${show(raw)}`);
  }
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const known = Object.keys(FIELDS);
  for (const [field, value] of Object.entries(raw)) {
    const kind = FIELDS[field as keyof Config];
    if (kind === undefined) {
      throw new ConfigError(`${where}: unknown field "${field}"${didYouMean(field, known)}`);
    }
    if (kind === "port") {
      config[field] = parsePort(field, value, where);
    } else if (kind === "count") {
      const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) {
        throw new ConfigError(
          `${where}: field "${field}" must be a whole number from 1 to 65535, but got ${
            show(value)
          }`,
        );
      }
      config[field] = n;
    } else if (kind === "boolean") {
      if (typeof value !== "boolean") {
        throw new ConfigError(
          `${where}: field "${field}" must be true or false, but got ${show(value)}`,
        );
      }
      config[field] = value;
    } else if (kind === "seconds") {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new ConfigError(
          `${where}: field "${field}" must be a non-negative number of seconds, but got ${
            show(value)
          }`,
        );
      }
      config[field] = value;
    } else {
      if (typeof value !== "string") {
        throw new ConfigError(
          `${where}: field "${field}" must be a string, but got ${show(value)}`,
        );
      }
      config[field] = value;
    }
  }
  const result = config as unknown as Config;
  if (!DB_TYPES.includes(result.DBType)) {
    throw new ConfigError(
      `${where}: field "DBType" must be one of "etcd", "zookeeper", "embedded", but got ${
        show(result.DBType)
      }`,
    );
  }
  if (result.DBType !== "embedded" && result.DBEndPoint.trim() === "") {
    throw new ConfigError(`${where}: field "DBEndPoint" must name at least one endpoint`);
  }
  const endpoints = result.DBType === "embedded"
    ? undefined
    : endpointProblem(result.DBType, result.DBEndPoint);
  if (endpoints !== undefined) {
    throw new ConfigError(
      `${where}: field "DBEndPoint" must be a comma-separated list of host:port, but ${endpoints}`,
    );
  }
  if (result.LeaderTTLSeconds < 2 || result.LeaderTTLSeconds > 600) {
    throw new ConfigError(
      `${where}: field "LeaderTTLSeconds" must be from 2 to 600 seconds, but got ${
        show(result.LeaderTTLSeconds)
      }`,
    );
  }
  if (result.AdvertiseURL !== "" && !/^https?:\/\/[^/\s]+\/?$/.test(result.AdvertiseURL)) {
    throw new ConfigError(
      `${where}: field "AdvertiseURL" must be empty or an http(s) URL such as "http://sched1:5656", but got ${
        show(result.AdvertiseURL)
      }`,
    );
  }
  if (result.Principal === "" && (result.Secret !== "" || result.SecretFile !== "")) {
    throw new ConfigError(
      `${where}: field "${
        result.Secret !== "" ? "Secret" : "SecretFile"
      }" is set but "Principal" is empty; give the principal the secret belongs to`,
    );
  }
  if (result.Principal !== "" && result.Secret === "" && result.SecretFile === "") {
    throw new ConfigError(
      `${where}: field "Principal" ${
        show(result.Principal)
      } needs "Secret" or "SecretFile" (the Mesos master authenticates it with both)`,
    );
  }
  if (result.Secret !== "" && result.SecretFile !== "") {
    throw new ConfigError(
      `${where}: fields "Secret" and "SecretFile" exclude each other; give one`,
    );
  }
  if (/[:\s]/.test(result.Principal)) {
    throw new ConfigError(
      `${where}: field "Principal" must hold no ":" or white space, but got ${
        show(result.Principal)
      }`,
    );
  }
  const roleError = roleProblem(result.Role);
  if (roleError) {
    throw new ConfigError(`${where}: field "Role" ${roleError}, but got ${show(result.Role)}`);
  }
  if ((result.CertFile === "") !== (result.KeyFile === "")) {
    throw new ConfigError(
      `${where}: fields "CertFile" and "KeyFile" go together; give both for HTTPS or neither, but got only ${
        result.CertFile ? '"CertFile"' : '"KeyFile"'
      }`,
    );
  }
  if (result.Master.trim() === "") {
    throw new ConfigError(`${where}: field "Master" must not be empty`);
  }
  if (!/^local(:[1-9]\d?)?$/.test(result.Master) && result.Master.startsWith("local")) {
    throw new ConfigError(
      `${where}: field "Master" must be "local" or "local:N" with N from 1 to 99, but got ${
        show(result.Master)
      }`,
    );
  }
  if (result.LocalNetwork !== "") {
    if (!/^local(:\d+)?$/.test(result.Master)) {
      throw new ConfigError(
        `${where}: field "LocalNetwork" ${
          show(result.LocalNetwork)
        } needs Master "local" or "local:N", but got ${show(result.Master)}`,
      );
    }
    try {
      result.LocalNetwork = parseHostNetwork(result.LocalNetwork, `field "LocalNetwork"`).subnet;
    } catch (error) {
      throw new ConfigError(`${where}: ${(error as Error).message}`);
    }
  }
  if (isLoopback(result.ArtifactIP) && !agentsShareHost(result.Master, result.LocalNetwork)) {
    throw new ConfigError(
      `${where}: field "ArtifactIP" is the loopback address ${
        show(result.ArtifactIP)
      }, which agents of Master ${
        show(result.Master)
      } on other hosts cannot reach; give an address of this host they can reach, or leave it empty`,
    );
  }
  const agents = Number(
    /^local:(\d+)$/.exec(result.Master)?.[1] ?? (result.Master === "local" ? 3 : 0),
  );
  const lastPort = result.LocalPortsBase + agents * result.LocalPortsPerAgent - 1;
  if (agents > 0 && lastPort > 65535) {
    throw new ConfigError(
      `${where}: fields "LocalPortsBase" (${result.LocalPortsBase}) and "LocalPortsPerAgent" (${result.LocalPortsPerAgent}) give ${agents} local agents ports up to ${lastPort}, past 65535`,
    );
  }
  if (result.LocalReserved.trim() !== "") {
    if (agents === 0) {
      throw new ConfigError(
        `${where}: field "LocalReserved" needs Master "local" or "local:N", but got ${
          show(result.Master)
        }`,
      );
    }
    try {
      localReserved(result, agents).forEach((text, i) => {
        if (text === "") return;
        const base = result.LocalPortsBase + i * result.LocalPortsPerAgent;
        try {
          agentTotal({
            cpus: 4,
            mem: 4096,
            ports: { begin: base, end: base + result.LocalPortsPerAgent - 1 },
          }, parseAgentResources(text));
        } catch (error) {
          throw new Error(`agent ${i}: ${(error as Error).message}`);
        }
      });
    } catch (error) {
      throw new ConfigError(`${where}: field "LocalReserved": ${(error as Error).message}`);
    }
  }
  return result;
}

/**
 * The local agents' static reservations from `LocalReserved`, one string
 * per agent (`""`: none; see `lib/mesos/local/agent_resources.ts`).
 */
export function localReserved(config: Config, agents: number): string[] {
  const entries = config.LocalReserved.split(/\s+/).filter((e) => e !== "");
  return reservedPerAgent(entries, agents);
}

/** Why `role` is not a valid Mesos role name, or `undefined`. */
function roleProblem(role: string): string | undefined {
  if (role === "*") return undefined;
  if (role === "") return 'must not be empty (the default role is "*")';
  if (/[\s\\]/.test(role) || [...role].some((c) => c.charCodeAt(0) < 0x20 || c === "\x7f")) {
    return 'must hold no white space, control characters or "\\"';
  }
  if (role.startsWith("/") || role.endsWith("/") || role.includes("//")) {
    return 'must be "/"-separated names with no leading, trailing or doubled "/"';
  }
  for (const part of role.split("/")) {
    if (part === "." || part === ".." || part === "*" || part.startsWith("-")) {
      return 'must have no part that is ".", "..", "*" or starts with "-"';
    }
  }
  return undefined;
}

/**
 * The Mesos framework credential of a config: `Principal` with `Secret` or
 * the content of `SecretFile` (one trailing newline dropped); `undefined`
 * without a principal. An unreadable or empty `SecretFile` is a
 * {@linkcode ConfigError}.
 */
export async function frameworkCredential(
  config: Config,
): Promise<{ principal: string; secret: string } | undefined> {
  if (config.Principal === "") return undefined;
  if (config.Secret !== "") return { principal: config.Principal, secret: config.Secret };
  let text: string;
  try {
    text = await Deno.readTextFile(config.SecretFile);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound ? "no such file" : (cause as Error).message;
    throw new ConfigError(`Cannot read SecretFile "${config.SecretFile}": ${why}`, { cause });
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret === "") throw new ConfigError(`SecretFile "${config.SecretFile}" is empty`);
  return { principal: config.Principal, secret };
}

/** Reads and parses a config file; a missing or unreadable file is a {@linkcode ConfigError}. */
export async function loadConfigFile(path: string): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (cause) {
    const why = cause instanceof Deno.errors.NotFound ? "no such file" : (cause as Error).message;
    throw new ConfigError(`Cannot read config file "${path}": ${why}`, { cause });
  }
  return parseConfig(text, `config file "${path}"`);
}
