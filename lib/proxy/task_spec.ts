/**
 * What the scheduler tells MrRedisExecutor about a proxy task: its
 * description in `TaskInfo.data` and the `proxy-master` command (a Mesos
 * MESSAGE, see `lib/executor_messages.ts`). Plain data: importing this module
 * does not load the proxy engine.
 *
 * @module
 */

/**
 * The name MrRedisExecutor starts its proxy thread with (a Web Worker, see
 * `proxy_thread.ts`): a bundled executor started as that worker serves the
 * proxies instead of running as an executor.
 */
export const PROXY_THREAD_NAME = "mr-redis proxy thread";

/** Where a proxy sends clients: the master of its instance and the failover epoch. */
export interface ProxyMasterSpec {
  host: string;
  port: number;
  /** The instance's failover epoch; a proxy ignores an older one than it knows. */
  epoch: number;
}

/** `TaskInfo.data` (JSON) of one proxy task. */
export interface ProxyTaskSpec {
  /** Always `"proxy"`: tells a proxy task from a redis task. */
  kind: "proxy";
  /** Instance name. */
  instance: string;
  /** Proxy id within the instance (`x1`, `x2`, ...). */
  proxyId: string;
  /** Port taken from the offer. */
  port: number;
  /** The master at launch, when the instance has one. */
  master?: ProxyMasterSpec;
  /**
   * The clients' password of the instance: the proxy logs in to the master
   * with it and clients AUTH to the proxy with it. Never logged.
   */
  password?: string;
  /** How long a connection waits for a usable master before an `-ERR` line, ms. */
  waitMs?: number;
}

/** Encodes a {@linkcode ProxyTaskSpec} for `TaskInfo.data`. */
export function encodeProxySpec(spec: ProxyTaskSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

function parse(data: Uint8Array | undefined): unknown {
  if (!data || data.length === 0) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(data));
  } catch {
    return undefined;
  }
}

/** Whether `TaskInfo.data` describes a proxy task (a JSON object with `kind` "proxy"). */
export function isProxySpec(data: Uint8Array | undefined): boolean {
  const value = parse(data);
  return typeof value === "object" && value !== null &&
    (value as { kind?: unknown }).kind === "proxy";
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0 && (value as number) <= 65535;
}

/** Checks a master address: `{host, port, epoch}`; returns it, or `undefined` when bad. */
export function checkMaster(value: unknown): ProxyMasterSpec | undefined {
  const m = value as { host?: unknown; port?: unknown; epoch?: unknown } | null;
  if (typeof m !== "object" || m === null) return undefined;
  if (typeof m.host !== "string" || m.host === "" || !isPort(m.port)) return undefined;
  if (!Number.isInteger(m.epoch) || (m.epoch as number) < 0) return undefined;
  return { host: m.host, port: m.port, epoch: m.epoch as number };
}

/**
 * Decodes and checks the `TaskInfo.data` of a proxy task; throws a
 * `TypeError` naming the bad field (never showing the password).
 */
export function decodeProxySpec(data: Uint8Array | undefined): ProxyTaskSpec {
  const value = parse(data);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError("TaskInfo.data is not a JSON object");
  }
  const v = value as Record<string, unknown>;
  const bad = (field: string, want: string) =>
    new TypeError(
      `TaskInfo.data field "${field}" must be ${want}, but got ${
        JSON.stringify(v[field]) ?? "nothing"
      }`,
    );
  if (v.kind !== "proxy") throw bad("kind", '"proxy"');
  if (typeof v.instance !== "string" || v.instance === "") {
    throw bad("instance", "a non-empty string");
  }
  if (typeof v.proxyId !== "string" || v.proxyId === "") throw bad("proxyId", "a non-empty string");
  if (!isPort(v.port)) throw bad("port", "a port number (1-65535)");
  const spec: ProxyTaskSpec = {
    kind: "proxy",
    instance: v.instance,
    proxyId: v.proxyId,
    port: v.port,
  };
  if (v.master !== undefined) {
    const master = checkMaster(v.master);
    if (!master) throw bad("master", "{host, port, epoch} of the master");
    spec.master = master;
  }
  if (v.password !== undefined) {
    if (typeof v.password !== "string" || v.password === "") {
      throw new TypeError('TaskInfo.data field "password" must be a non-empty string');
    }
    spec.password = v.password;
  }
  if (v.waitMs !== undefined) {
    if (!Number.isInteger(v.waitMs) || (v.waitMs as number) < 0) {
      throw bad("waitMs", "a whole number of ms, 0 or more");
    }
    spec.waitMs = v.waitMs as number;
  }
  return spec;
}
