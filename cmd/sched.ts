/**
 * `sched`: the mr-redis Mesos framework scheduler, its REST API and its
 * artifact server.
 *
 * ```sh
 * deno run -A cmd/sched.ts -config=./config.json
 * deno run -A cmd/sched.ts -DumpEmptyConfig
 * ```
 *
 * @module
 */
import {
  type Config,
  ConfigError,
  defaultConfig,
  frameworkCredential,
  loadConfigFile,
  localReserved,
} from "../lib/config.ts";
// The store modules one by one, not lib/store/mod.ts: the etcd and ZooKeeper
// clients load only when the config asks for them (see lib/store/open.ts).
import { fencedStore } from "../lib/store/fenced.ts";
import { openStore } from "../lib/store/open.ts";
import { type Store, StoreUnavailableError } from "../lib/store/store.ts";
import { SCHED_PASS_DELAY_MS, Scheduler } from "../lib/scheduler/core.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import {
  type ArtifactServer,
  devLauncherScript,
  startArtifactServer,
} from "../lib/scheduler/artifacts.ts";
import { chooseExecutorArtifact, planShipment, shipmentUris } from "../lib/release/shipping.ts";
import { agentsShareHost, artifactAddress, isLoopback } from "../lib/release/hosts.ts";
import { currentRelease, isFile } from "../lib/release/layout.ts";
import { buildFrameworkInfo, mesosPort } from "../lib/scheduler/mesos_port.ts";
import { createApiHandler } from "../lib/api/handler.ts";
import { serveGuarded } from "../lib/http/guarded_server.ts";
import { ApiTokens, type ContextHandler, exposureProblem, guardApi } from "../lib/api/auth.ts";
import { SchedulerClient } from "../lib/mesos/scheduler_client.ts";
import {
  becomeLeader,
  leaderKey,
  type Leadership,
  standbyHandler,
  standbyReads,
} from "../lib/scheduler/leader.ts";
import { isHealthRequest, type Role, serveHealth } from "../lib/api/health.ts";
import { countRequests, isMetricsRequest, serveMetrics } from "../lib/api/metrics.ts";
import { SchedulerCounters } from "../lib/metrics/counters.ts";
import { countingMesos, timedStore } from "../lib/metrics/instrument.ts";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ClusterState,
  ensureLocalCluster,
  isProcessAlive,
  LocalClusterMismatchError,
  readClusterState,
  stopLocalCluster,
} from "../lib/mesos/local/daemon.ts";

const USAGE = `Usage: sched [-config=FILE] [-DumpEmptyConfig] [--stop-local] [-h]

  -config FILE       the JSON config file (default: built-in defaults: local
                     Mesos cluster, embedded store)
  -DumpEmptyConfig   print a config with every field and its default, then exit
  --stop-local       stop the local Mesos cluster of this config (Master
                     "local"), which keeps running when sched stops; the
                     redis-servers stop cleanly and come back with their data
                     when sched starts again
  -h, --help         show this help`;

/** The hidden first argument that makes this program the local cluster (see {@linkcode localClusterCommand}). */
export const LOCAL_CLUSTER_FLAG = "--local-cluster";

/**
 * The command line that runs the local cluster with `mesos_local` flags:
 * this very program again with the hidden first argument `--local-cluster`.
 * From source (and from a bundle) that is `deno run -A` of this module's file
 * with the same Deno binary; compiled, the binary itself. Whichever way
 * `sched` was built, the cluster is the same code and needs no other file.
 */
export function localClusterCommand(flags: string[]): { command: string; args: string[] } {
  const own = [LOCAL_CLUSTER_FLAG, ...flags];
  if (Deno.build.standalone) return { command: Deno.execPath(), args: own };
  return { command: Deno.execPath(), args: ["run", "-A", fileURLToPath(import.meta.url), ...own] };
}

/** A mistake in how sched was called: one line, exit code 2. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

interface Flags {
  config?: string;
  dump: boolean;
  help: boolean;
  stopLocal: boolean;
}

/** Parses Go-style flags: `-config=F`, `-config F`, `--config=F`, `--config F`. */
function parseFlags(args: string[]): Flags {
  const flags: Flags = { dump: false, help: false, stopLocal: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([A-Za-z][A-Za-z-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new UsageError(`Unexpected argument "${arg}"; see sched -h`);
    const [, name, value] = m;
    switch (name) {
      case "config": {
        const v = value ?? args[++i];
        if (v === undefined || v === "") {
          throw new UsageError(`Flag "-config" needs a file name, as in -config=./config.json`);
        }
        flags.config = v;
        break;
      }
      case "DumpEmptyConfig":
        if (value !== undefined) throw new UsageError(`Flag "-DumpEmptyConfig" takes no value`);
        flags.dump = true;
        break;
      case "stop-local":
        if (value !== undefined) throw new UsageError(`Flag "--stop-local" takes no value`);
        flags.stopLocal = true;
        break;
      case "h":
      case "help":
        flags.help = true;
        break;
      default:
        throw new UsageError(`Unknown flag "${arg}"; see sched -h`);
    }
  }
  return flags;
}

/** Makes the log sink: stderr, or a file the lines are appended to. */
function makeLogger(target: string): { log: (line: string) => void; close: () => void } {
  const encoder = new TextEncoder();
  if (target === "" || target === "stderr") {
    return {
      log: (line) => Deno.stderr.writeSync(encoder.encode(`${new Date().toISOString()} ${line}\n`)),
      close: () => {},
    };
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(target, { append: true, create: true });
  } catch (error) {
    throw new ConfigError(
      `Cannot open LogFile "${target}": ${(error as Error).message}`,
    );
  }
  // Lines logged in one turn of the event loop go out in one write (a
  // create logs ~100 lines in bursts), right after that turn.
  let lines: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    timer = undefined;
    if (lines.length === 0) return;
    const text = lines.join("");
    lines = [];
    try {
      for (let data = encoder.encode(text); data.length > 0;) {
        data = data.subarray(file.writeSync(data));
      }
    } catch {
      // A log write must never stop the scheduler.
    }
  };
  return {
    log: (line) => {
      lines.push(`${new Date().toISOString()} ${line}\n`);
      timer ??= setTimeout(flush, 0);
    },
    close: () => {
      clearTimeout(timer);
      flush();
      file.close();
    },
  };
}

/** `{ [key]: value }` when the value is defined, else `{}` (for optional fields). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : { [key]: value } as { [P in K]?: V };
}

/** The compiled MrRedisExecutor next to this compiled sched (`deno task compile`), if any. */
function compiledExecutor(): string | undefined {
  const exec = Deno.execPath();
  if (/(^|\/)deno$/.test(exec)) return undefined; // run by deno, not compiled
  const path = `${parentDir(exec)}/MrRedisExecutor`;
  return isFile(path) ? path : undefined;
}

/** `sched --stop-local`: stops the local cluster of the config. */
async function stopLocal(flags: Flags): Promise<number> {
  let config: Config;
  try {
    config = flags.config ? await loadConfigFile(flags.config) : defaultConfig();
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (localAgents(config.Master) === undefined) {
    console.error(
      `Flag "--stop-local" needs Master "local" or "local:N", but the config has "${config.Master}"`,
    );
    return 2;
  }
  try {
    const { stopped, pid } = await stopLocalCluster(config.LocalWorkDir);
    console.log(
      stopped
        ? `Stopped the local Mesos cluster in ${config.LocalWorkDir} (pid ${pid})`
        : `No local Mesos cluster runs in ${config.LocalWorkDir}`,
    );
    return 0;
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
}

/** Resolves once the local cluster of `state` is gone, saying whether it was stopped or died. */
function clusterGone(workDir: string, state: ClusterState, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const timer = setInterval(async () => {
      if (signal.aborted) return clearInterval(timer);
      if (isProcessAlive(state)) return;
      clearInterval(timer);
      const left = await readClusterState(workDir);
      resolve(
        left?.pid === state.pid
          ? `the local Mesos cluster (pid ${state.pid}) died`
          : `the local Mesos cluster (pid ${state.pid}) was stopped`,
      );
    }, 1000);
    Deno.unrefTimer(timer);
  });
}

/** Removes `dirs` under every agent's folder of the local cluster's data root. */
async function removeLocalDataDirs(dataRoot: string, dirs: string[]): Promise<void> {
  let agents: string[] = [];
  try {
    agents = [...Deno.readDirSync(dataRoot)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return; // nothing was ever stored
  }
  for (const agent of agents) {
    for (const dir of dirs) {
      await Deno.remove(join(dataRoot, agent, dir), { recursive: true }).catch(() => {});
    }
  }
}

function absolutePath(path: string): string {
  return isAbsolute(path) ? path : resolve(Deno.cwd(), path);
}

function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

function localAgents(master: string): number | undefined {
  const m = /^local(?::(\d+))?$/.exec(master);
  if (!m) return undefined;
  return m[1] ? Number(m[1]) : 3;
}

/**
 * Exit code when a scheduler without an election (the embedded store) is
 * told by Mesos that another scheduler took over its framework. With etcd or
 * ZooKeeper a lost leadership is a step-down to standby, not an exit.
 */
const LOST_LEADERSHIP_EXIT = 3;

/**
 * Checks for GET /v1/HEALTH that the store answers (one read of `key`,
 * bounded to 2 s, reused for 1 s); resolves `undefined` when it does, or why
 * not.
 */
function storeProbe(store: Store, key: string): () => Promise<string | undefined> {
  let last: { at: number; error: string | undefined } | undefined;
  let running: Promise<string | undefined> | undefined;
  return () => {
    if (last && Date.now() - last.at < 1_000) return Promise.resolve(last.error);
    running ??= (async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          store.get(key),
          new Promise((_, reject) =>
            timer = setTimeout(() => reject(new Error("no answer within 2 s")), 2_000)
          ),
        ]);
        last = { at: Date.now(), error: undefined };
      } catch (error) {
        last = { at: Date.now(), error: (error as Error).message };
      } finally {
        clearTimeout(timer);
        running = undefined;
      }
      return last.error;
    })();
    return running;
  };
}

/** The REST API URL this scheduler advertises while it leads. */
function advertiseUrl(config: Config, port: number, https: boolean): string {
  if (config.AdvertiseURL) return config.AdvertiseURL.replace(/\/+$/, "");
  let host = config.HTTPAddress;
  if (host === "" || host === "0.0.0.0" || host === "::") {
    try {
      host = Deno.hostname();
    } catch {
      host = "localhost";
    }
  }
  return `${https ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Reads `CertFile` and `KeyFile` when given; a missing file is a {@linkcode ConfigError}. */
async function readTls(config: Config): Promise<{ cert: string; key: string } | undefined> {
  if (!config.CertFile) return undefined;
  const read = async (field: string, path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
      throw new ConfigError(`Cannot read ${field} "${path}": ${why}`);
    }
  };
  return {
    cert: await read("CertFile", config.CertFile),
    key: await read("KeyFile", config.KeyFile),
  };
}

/**
 * Runs the scheduler until SIGINT/SIGTERM; returns the exit code: 0 stopped,
 * 1 a bug, 2 a bad config or command line (a store address that cannot be
 * right included; one that does not answer is waited for), 3 Mesos gave the
 * framework to another scheduler while this one ran on the embedded store.
 */
export async function main(args: string[]): Promise<number> {
  if (args[0] === LOCAL_CLUSTER_FLAG) {
    // This process is the local cluster (a compiled sched runs itself as one):
    // its modules load only then.
    return await (await import("./mesos_local.ts")).main(args.slice(1));
  }
  let flags: Flags;
  try {
    flags = parseFlags(args);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.dump) {
    console.log(JSON.stringify(defaultConfig(), null, 3));
    return 0;
  }
  if (flags.stopLocal) return await stopLocal(flags);

  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // keep stopping the rest
      }
    }
    cleanups.length = 0;
  };
  try {
    const config: Config = flags.config ? await loadConfigFile(flags.config) : defaultConfig();
    const exposed = exposureProblem(config);
    if (exposed) throw new ConfigError(exposed);
    const tls = await readTls(config);
    const logger = makeLogger(config.LogFile);
    cleanups.push(() => logger.close());
    const log = logger.log;
    // A store or Mesos client library failing inside one of its own
    // callbacks (seen once with the ZooKeeper client as its server came back
    // under heavy load: "Uncaught null") must not end the scheduler: the
    // state is persisted before every action, and the store client recovers
    // by itself. Such an error is logged loudly, with its stack.
    const onUncaught = (event: ErrorEvent | PromiseRejectionEvent) => {
      event.preventDefault();
      const error = "reason" in event ? event.reason : event.error;
      log(
        `Uncaught ${"reason" in event ? "rejection" : "error"} (kept running): ${
          (error as Error)?.stack ?? String(error)
        }`,
      );
    };
    globalThis.addEventListener("error", onUncaught);
    globalThis.addEventListener("unhandledrejection", onUncaught);
    cleanups.push(() => {
      globalThis.removeEventListener("error", onUncaught);
      globalThis.removeEventListener("unhandledrejection", onUncaught);
    });
    const tokens = ApiTokens.load({ token: config.APIToken, file: config.APITokenFile, log });
    log("*****************************************************************");
    log("********************* Starting MrRedis-Scheduler ****************");
    log("*****************************************************************");

    // Stop on SIGINT/SIGTERM, whatever phase we are in.
    const stopping = new AbortController();
    const onSignal = () => stopping.abort();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    cleanups.push(() => {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    });
    const stopped = new Promise<"stop">((resolve) =>
      stopping.signal.addEventListener("abort", () => resolve("stop"), { once: true })
    );

    // What agents get, decided before anything starts: a bad choice is a
    // config mistake (exit 2).
    const artifactIp = artifactAddress(
      config.ArtifactIP,
      config.Master,
      () => Deno.networkInterfaces(),
      config.LocalNetwork,
    );
    if (artifactIp === undefined) {
      throw new ConfigError(
        `Field "ArtifactIP" is empty and this host has no non-loopback IPv4 address for agents of Master "${config.Master}" to reach; set ArtifactIP`,
      );
    }
    const credential = await frameworkCredential(config);
    const shipment = await planShipment(
      chooseExecutorArtifact({
        executorPath: config.ExecutorPath,
        master: config.Master,
        localNetwork: config.LocalNetwork,
        agentsShareHost: agentsShareHost(config.Master, config.LocalNetwork),
        ...optional("release", currentRelease()),
        ...optional("compiledSibling", compiledExecutor()),
        ...optional("launcher", devLauncherScript()),
      }),
      config.RedisServerPath,
    );

    // The store. An etcd or ZooKeeper address that cannot be right stops
    // sched here (exit code 2); a well-formed one that does not answer yet is
    // waited for by the election below (logged every 10 s). The embedded
    // store is opened at once: its SQLite file is locked by its one owner.
    const elects = config.DBType !== "embedded";
    if (!elects) await Deno.mkdir(parentDir(config.DBEndPoint), { recursive: true });
    const store: Store = await openStore({
      type: config.DBType,
      endpoints: config.DBEndPoint,
      check: !elects,
    });
    cleanups.push(() => store.close());
    log(`Using the store ${store.description}`);

    // The REST API. A standby answers STATUS read-only from the store (or,
    // when the store cannot be read, from its last view marked stale) and 503
    // naming the leader for everything else; the leader serves the real
    // handler. GET /v1/HEALTH answers in every role.
    let role: Role = elects ? "standby" : "taking-over";
    let mesosState = "disconnected";
    const selfId = crypto.randomUUID();
    const reads = standbyReads({ store, prefix: config.StorePrefix });
    let standbyApi: ContextHandler = () =>
      new Response("This scheduler is starting; try again in a moment", {
        status: 503,
        headers: { "retry-after": "1" },
      });
    let active = standbyApi;
    const probeStore = storeProbe(store, leaderKey(config.StorePrefix));
    // GET /metrics (lib/api/metrics.ts) needs the token like every route; the
    // instance families come from the leading core.
    const counters = new SchedulerCounters();
    let leading: Scheduler | undefined;
    const guarded = countRequests(
      guardApi(
        (request, ctx) =>
          isHealthRequest(request)
            ? serveHealth(async () => ({ role, mesos: mesosState, storeError: await probeStore() }))
            : isMetricsRequest(request)
            ? serveMetrics({
              role,
              mesos: mesosState,
              counters,
              ...(leading ? { snapshot: leading.snapshot() } : {}),
            })
            : active(request, ctx),
        { tokens },
      ),
      counters,
    );
    const server = await listen("HTTPPort", config.HTTPPort, () =>
      serveGuarded({
        hostname: config.HTTPAddress || "0.0.0.0",
        port: config.HTTPPort,
        ...(tls ?? {}),
        idleTimeoutMs: 60_000,
        // A client may run a burst of requests at once (one connection each with fetch).
        maxConnectionsPerClient: 256,
        onError: (error) => {
          log(`HTTP handler failed: ${(error as Error)?.stack ?? error}`);
          return new Response("Internal Server Error\n", { status: 500 });
        },
      }, guarded));
    cleanups.push(() => server.shutdown());
    log(`Starting the HTTP server at port ${server.addr.port}`);
    log(
      `REST API: ${tls ? "HTTPS" : "HTTP"} on ${config.HTTPAddress || "0.0.0.0"}, ${
        tokens.enabled
          ? `${tokens.size} API token(s) required`
          : "no API token (open to every client that reaches it)"
      }`,
    );
    const url = advertiseUrl(config, server.addr.port, tls !== undefined);
    if (elects) {
      const refuse = standbyHandler({
        store,
        prefix: config.StorePrefix,
        id: selfId,
        url,
        takingOver: () => role === "taking-over",
      });
      standbyApi = (request) => reads.handle(request) ?? refuse(request);
      active = standbyApi;
    }

    // Mesos: the local cluster (started once, when this process first leads;
    // it outlives a step-down) or a real master.
    // The local cluster outlives sched, as Mesos agents outlive a framework's
    // scheduler: the one running for LocalWorkDir is reused, or one is started
    // detached; `sched --stop-local` stops it (and then this process too).
    let mesosMaster: string | undefined;
    const agents = localAgents(config.Master);
    let localEnded: string | undefined;
    let localGone: Promise<string> | undefined;
    // On the local cluster, redis data lives outside the executors' sandboxes,
    // at a stable path per agent: it survives executor and cluster restarts.
    const dataRoot = agents === undefined
      ? undefined
      : join(absolutePath(config.LocalWorkDir), "data");
    const startMesos = async (): Promise<string> => {
      if (mesosMaster !== undefined) return mesosMaster;
      let master = config.Master;
      if (agents !== undefined) {
        const { state, started } = await ensureLocalCluster({
          workDir: config.LocalWorkDir,
          agents,
          portsBase: config.LocalPortsBase,
          portsPerAgent: config.LocalPortsPerAgent,
          gcDelaySeconds: config.LocalGCDelaySeconds,
          ...(config.LocalNetwork !== "" ? { network: config.LocalNetwork } : {}),
          ...(config.LocalReserved.trim() !== ""
            ? { reserved: localReserved(config, agents) }
            : {}),
          command: (flags) => localClusterCommand([...flags, "--verbose"]),
          signal: stopping.signal,
          // With a principal, the local cluster authenticates like a Mesos
          // master started with that credential.
          ...(credential ? { credentials: [credential] } : {}),
          log,
        });
        master = state.url;
        localGone = clusterGone(config.LocalWorkDir, state, stopping.signal);
        localGone.then((why) => localEnded = why);
        log(
          `${
            started ? "Started the" : "Using the running"
          } local Mesos cluster (pid ${state.pid}) with ${agents} agent(s) at ${master} (it keeps running when sched stops; sched --stop-local stops it)`,
        );
      }
      return mesosMaster = master;
    };

    /**
     * One term of leadership: ship the executor, load the store, subscribe to
     * Mesos and serve, until told to stop ("stop") or until leadership is
     * gone (the reason). Whatever ends it, it stops acting first.
     */
    const lead = async (leadership: Leadership | undefined): Promise<string> => {
      let gone: string | undefined;
      leadership?.lost.then((reason) => gone ??= reason);
      // The core writes through a fence, cut at the step-down: work still
      // queued in it can persist (and so do) nothing afterwards.
      const fence = fencedStore(store);
      let artifacts: ArtifactServer | undefined;
      let core: Scheduler | undefined;
      let client: SchedulerClient | undefined;
      const stepDown = async (why: string) => {
        active = standbyApi;
        leading = undefined;
        fence.fence(`this scheduler stepped down (${why})`);
        if (core) reads.remember(core, Date.now());
        if (elects) role = "standby";
        const bounded = (p: Promise<unknown> | undefined) =>
          Promise.race([p?.catch(() => {}), new Promise((r) => setTimeout(r, 3_000))]);
        await bounded(client?.stop());
        mesosState = "disconnected";
        await bounded(core?.stop());
        await bounded(artifacts?.stop());
        await bounded(leadership?.release());
      };
      try {
        // The artifact server, then the core (the ExecutorInfo needs its URL).
        // On a multi-host local cluster the artifact server listens on the
        // cluster's bridge, which exists once the cluster runs.
        if (config.LocalNetwork !== "") await startMesos();
        const startArtifacts = () =>
          listen(
            "ArtifactPort",
            config.ArtifactPort,
            () =>
              startArtifactServer({
                hostname: artifactIp,
                port: config.ArtifactPort,
                shipment,
                log,
              }),
          );
        if (leadership) {
          // A previous leader on this host may still hold the port while it
          // stops: wait for it (the ArtifactPort must stay the same, for the
          // ExecutorInfo of running executors must not change).
          const deadline = Date.now() + 2 * config.LeaderTTLSeconds * 1000;
          for (let told = false; !artifacts; told = true) {
            try {
              artifacts = await startArtifacts();
            } catch (error) {
              if (!/in use/.test((error as Error).message) || Date.now() > deadline) throw error;
              if (!told) {
                log(`${(error as Error).message}; waiting for the previous leader to free it`);
              }
              await new Promise((r) => setTimeout(r, 250));
              if (gone !== undefined || stopping.signal.aborted) {
                await stepDown(gone ?? "told to stop");
                return gone ?? "stop";
              }
            }
          }
        } else {
          artifacts = await startArtifacts();
        }
        const artifactUrl = `http://${
          artifactIp.includes(":") ? `[${artifactIp}]` : artifactIp
        }:${artifacts.port}`;
        log(`Starting the artifact server at ${artifactUrl}, shipping ${shipment.description}`);
        core = new Scheduler({
          store: timedStore(fence.store, counters),
          prefix: config.StorePrefix,
          executorInfo: buildExecutorInfo({
            uris: shipmentUris(shipment, artifactUrl),
            command: shipment.command,
            resources: DEFAULT_RESOURCES,
            environment: {
              ...shipment.environment,
              // Agents fetching from a loopback artifact server run on this
              // host: keep redis on loopback too.
              ...(isLoopback(artifactIp) ? { MRR_REDIS_BIND: "127.0.0.1" } : {}),
              // On the local cluster, redis data lives outside the sandboxes.
              ...(dataRoot !== undefined ? { MRR_DATA_ROOT: dataRoot } : {}),
            },
          }),
          ...(dataRoot !== undefined
            ? { removeDataDirs: (dirs: string[]) => removeLocalDataDirs(dataRoot, dirs) }
            : {}),
          proxyWaitMs: Math.round(config.ProxyWaitSeconds * 1000),
          passDelayMs: SCHED_PASS_DELAY_MS,
          log,
        });
        await core.load();
        if (gone !== undefined || stopping.signal.aborted) {
          await stepDown(gone ?? "told to stop");
          return gone ?? "stop";
        }
        active = createApiHandler(core, { log });
        leading = core;
        const master = await startMesos();

        // Another scheduler subscribing with our FrameworkID makes Mesos end
        // our stream with "Framework failed over": it acts now, so this one
        // must not.
        let failedOver!: (reason: string) => void;
        const replaced = new Promise<string>((resolve) => failedOver = resolve);
        const loaded = core;
        const mesos: SchedulerClient = new SchedulerClient({
          master,
          frameworkInfo: buildFrameworkInfo({
            user: config.UserName,
            name: config.FrameworkName,
            failoverTimeoutSeconds: config.FailoverTimeoutSeconds,
            role: config.Role,
            ...(credential ? { principal: credential.principal } : {}),
            ...(loaded.frameworkId ? { frameworkId: loaded.frameworkId } : {}),
          }),
          ...(loaded.frameworkId ? { frameworkId: loaded.frameworkId } : {}),
          ...(credential ? { credential } : {}),
          onEvent: (event) => {
            if (event.type === "ERROR" && /failed over/i.test(event.error?.message ?? "")) {
              mesos.stop().catch(() => {});
              failedOver(
                `Mesos says another scheduler took over the framework ("${event.error?.message}")`,
              );
              return;
            }
            if (event.type === "OFFERS") {
              counters.offersReceived += event.offers?.offers?.length ?? 0;
            }
            // Resolves once the event's handling starts: the next is read
            // meanwhile, and events arriving together share one store batch.
            return loaded.queueEvent(event);
          },
          onStateChange: (state) => {
            if (fence.fenced) return;
            mesosState = state;
            log(`Mesos connection: ${state}`);
            if (state !== "subscribed") loaded.disconnected().catch(() => {});
          },
          log,
        });
        client = mesos;
        core.attach(countingMesos(mesosPort(mesos), counters));
        mesos.start();
        role = "leader";
        log(
          `Connecting to Mesos at ${master}${
            core.frameworkId
              ? ` as framework ${core.frameworkId} (failing over to this scheduler)`
              : ""
          }`,
        );

        // Serve until told to stop, or until leadership is gone.
        const outcome = await Promise.race([
          stopped,
          replaced,
          ...(leadership ? [leadership.lost] : []),
          ...(localGone ? [localGone] : []),
        ]);
        if (localEnded !== undefined) {
          await stepDown(localEnded);
          return "stop";
        }
        if (outcome !== "stop") log(`Lost leadership: ${outcome}; stopping acting at once`);
        await stepDown(outcome === "stop" ? "told to stop" : outcome);
        return outcome;
      } catch (error) {
        // The store went away while taking over: stand by again.
        if (leadership && error instanceof StoreUnavailableError) {
          const why = `the store failed while taking over: ${error.message}`;
          log(`Lost leadership: ${why}; stopping acting at once`);
          await stepDown(why);
          return why;
        }
        if (stopping.signal.aborted) {
          // Told to stop while starting (e.g. waiting for the local cluster).
          await stepDown("told to stop");
          return "stop";
        }
        await stepDown(`failed: ${(error as Error).message}`);
        throw error;
      }
    };

    // Lead whenever this process holds the lock; step down, stand by and
    // contend again whenever it loses it (or its store), in this process.
    for (;;) {
      let leadership: Leadership | undefined;
      if (elects) {
        role = "standby";
        leadership = await becomeLeader({
          store,
          prefix: config.StorePrefix,
          id: selfId,
          url,
          ttlSeconds: config.LeaderTTLSeconds,
          signal: stopping.signal,
          log,
        });
        if (!leadership) break;
        role = "taking-over";
        log(`Leading: took the leader lock on ${store.description}; advertising ${url}`);
      }
      const outcome = await lead(leadership);
      if (outcome === "stop") break;
      if (!elects) {
        // Without an election there is no standby to become: with the
        // embedded store only another copy of its FrameworkID can do this.
        log(`Stopping: ${outcome}; exiting with code ${LOST_LEADERSHIP_EXIT}`);
        await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 3_000))]);
        return LOST_LEADERSHIP_EXIT;
      }
      log(
        "Stepped down: standing by (STATUS answers from the last view, marked stale while " +
          "the store cannot be read) and contending for leadership again",
      );
      await new Promise((r) => setTimeout(r, 500));
      if (stopping.signal.aborted) break;
    }
    if (localEnded !== undefined) {
      log(`Stopping: ${localEnded}; start sched again to start a new one`);
      await cleanup();
      return /died/.test(localEnded) ? 1 : 0;
    }
    log(role === "standby" ? "Stopping (was standing by)" : "Stopping");
    await cleanup();
    return 0;
  } catch (error) {
    await cleanup();
    if (
      error instanceof ConfigError || error instanceof StoreUnavailableError ||
      error instanceof UsageError || error instanceof LocalClusterMismatchError
    ) {
      console.error(error.message);
      return 2;
    }
    if (error instanceof TypeError && /store/i.test(error.message)) {
      console.error(error.message);
      return 2;
    }
    console.error(`sched failed: ${(error as Error)?.stack ?? error}`);
    return 1;
  }
}

/** Runs `start`, turning "address in use" into a one-line UsageError naming the field. */
async function listen<T>(field: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UsageError(`Cannot listen on ${field} ${port}: the address is in use`);
    }
    if (
      error instanceof Deno.errors.AddrNotAvailable || error instanceof Deno.errors.PermissionDenied
    ) {
      throw new UsageError(`Cannot listen on ${field} ${port}: ${(error as Error).message}`);
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
