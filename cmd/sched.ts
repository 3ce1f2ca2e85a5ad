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
import { type Config, ConfigError, defaultConfig, loadConfigFile } from "../lib/config.ts";
import { openStore, type Store, StoreUnavailableError } from "../lib/store/mod.ts";
import { Scheduler } from "../lib/scheduler/core.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { type ArtifactServer, startArtifactServer } from "../lib/scheduler/artifacts.ts";
import { buildFrameworkInfo, mesosPort } from "../lib/scheduler/mesos_port.ts";
import { createApiHandler } from "../lib/api/handler.ts";
import { ApiTokens, type ContextHandler, exposureProblem, guardApi } from "../lib/api/auth.ts";
import { SchedulerClient } from "../lib/mesos/scheduler_client.ts";
import {
  becomeLeader,
  type Leadership,
  standbyHandler,
  standbyReads,
} from "../lib/scheduler/leader.ts";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";

const USAGE = `Usage: sched [-config=FILE] [-DumpEmptyConfig] [-h]

  -config FILE       the JSON config file (default: built-in defaults: local
                     Mesos cluster, embedded store)
  -DumpEmptyConfig   print a config with every field and its default, then exit
  -h, --help         show this help`;

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
}

/** Parses Go-style flags: `-config=F`, `-config F`, `--config=F`, `--config F`. */
function parseFlags(args: string[]): Flags {
  const flags: Flags = { dump: false, help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([A-Za-z]+)(?:=(.*))?$/s.exec(arg);
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
  return {
    log: (line) => {
      try {
        file.writeSync(encoder.encode(`${new Date().toISOString()} ${line}\n`));
      } catch {
        // A log write must never stop the scheduler.
      }
    },
    close: () => file.close(),
  };
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

/** Exit code when this scheduler stops because it lost leadership. */
const LOST_LEADERSHIP_EXIT = 3;

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
 * 1 a bug, 2 a bad config or command line, 3 lost leadership (etcd, ZooKeeper).
 */
export async function main(args: string[]): Promise<number> {
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

    // The store.
    if (config.DBType === "embedded") {
      await Deno.mkdir(parentDir(config.DBEndPoint), { recursive: true });
    }
    const store: Store = await openStore({ type: config.DBType, endpoints: config.DBEndPoint });
    cleanups.push(() => store.close());
    log(`Using the store ${store.description}`);

    // The REST API: it answers 503 until this process leads and has loaded
    // the store, then serves the real handler.
    const elects = config.DBType !== "embedded";
    const selfId = crypto.randomUUID();
    const standby = standbyHandler({ store, prefix: config.StorePrefix, id: selfId });
    const reads = standbyReads({ store, prefix: config.StorePrefix });
    let active: ContextHandler = elects
      ? (request) => reads(request) ?? standby(request)
      : () =>
        new Response("This scheduler is starting; try again in a moment", {
          status: 503,
          headers: { "retry-after": "1" },
        });
    const guarded = guardApi((request, ctx) => active(request, ctx), { tokens });
    const server = await listen("HTTPPort", config.HTTPPort, () =>
      Promise.resolve(Deno.serve({
        hostname: config.HTTPAddress,
        port: config.HTTPPort,
        ...(tls ?? {}),
        onListen: () => {},
        onError: (error) => {
          log(`HTTP handler failed: ${(error as Error)?.stack ?? error}`);
          return new Response("Internal Server Error", { status: 500 });
        },
      }, guarded)));
    cleanups.push(() => server.shutdown());
    log(`Starting the HTTP server at port ${server.addr.port}`);
    log(
      `REST API: ${tls ? "HTTPS" : "HTTP"} on ${config.HTTPAddress || "0.0.0.0"}, ${
        tokens.enabled
          ? `${tokens.size} API token(s) required`
          : "no API token (open to every client that reaches it)"
      }`,
    );

    // Leader election (etcd, ZooKeeper). The embedded store has one owner by
    // construction: its SQLite file is locked by the process that opened it.
    let leadership: Leadership | undefined;
    if (elects) {
      const url = advertiseUrl(config, server.addr.port, tls !== undefined);
      leadership = await becomeLeader({
        store,
        prefix: config.StorePrefix,
        id: selfId,
        url,
        ttlSeconds: config.LeaderTTLSeconds,
        signal: stopping.signal,
        log,
      });
      if (!leadership) {
        log("Stopping (was standing by)");
        await cleanup();
        return 0;
      }
      const held = leadership;
      cleanups.push(() => held.release());
      log(`Leading: took the leader lock on ${store.description}; advertising ${url}`);
    }

    // The artifact server, then the core (the ExecutorInfo needs the artifact URL).
    const startArtifacts = () =>
      listen(
        "ArtifactPort",
        config.ArtifactPort,
        () =>
          startArtifactServer({
            hostname: config.ArtifactIP,
            port: config.ArtifactPort,
            executorPath: config.ExecutorPath,
            redisServerPath: config.RedisServerPath,
            log,
          }),
      );
    let artifacts: ArtifactServer | undefined;
    if (leadership) {
      // A previous leader on this host may still hold the port while it
      // stops: wait for it (the ArtifactPort must stay the same, for the
      // ExecutorInfo of running executors must not change).
      let gone: string | undefined;
      leadership.lost.then((reason) => gone = reason);
      const deadline = Date.now() + 2 * config.LeaderTTLSeconds * 1000;
      for (let told = false; !artifacts; told = true) {
        try {
          artifacts = await startArtifacts();
        } catch (error) {
          if (!/in use/.test((error as Error).message) || Date.now() > deadline) throw error;
          if (!told) log(`${(error as Error).message}; waiting for the previous leader to free it`);
          await new Promise((r) => setTimeout(r, 250));
          if (gone !== undefined || stopping.signal.aborted) {
            log(`Stopping before acting: ${gone ?? "told to stop"}`);
            await cleanup();
            return gone !== undefined ? LOST_LEADERSHIP_EXIT : 0;
          }
        }
      }
    } else {
      artifacts = await startArtifacts();
    }
    const artifactServer = artifacts;
    cleanups.push(() => artifactServer.stop());
    log(
      `Starting the artifact server at port ${artifacts.port}, shipping ${artifacts.executorSource}`,
    );
    const artifactUrl = `http://${config.ArtifactIP}:${artifacts.port}`;
    const core = new Scheduler({
      store,
      prefix: config.StorePrefix,
      executorInfo: buildExecutorInfo({
        artifactUrl,
        shipsRedisServer: artifacts.shipsRedisServer,
        resources: DEFAULT_RESOURCES,
        // Agents fetching from a loopback artifact server run on this host:
        // keep redis on loopback too.
        ...(/^127\./.test(config.ArtifactIP) || config.ArtifactIP === "localhost"
          ? { environment: { MRR_REDIS_BIND: "127.0.0.1" } }
          : {}),
      }),
      log,
    });
    await core.load();
    cleanups.push(() => core.stop());
    active = createApiHandler(core, { log });

    // Mesos: the local cluster or a real master.
    let master = config.Master;
    const agents = localAgents(config.Master);
    if (agents !== undefined) {
      await Deno.mkdir(config.LocalWorkDir, { recursive: true });
      const local = await startLocalCluster({
        agents,
        workDir: config.LocalWorkDir,
        port: 0,
        portsBase: config.LocalPortsBase,
        portsPerAgent: config.LocalPortsPerAgent,
      });
      cleanups.push(() => local.cluster.stop());
      master = local.url;
      log(`Started the local Mesos cluster with ${agents} agent(s) at ${master}`);
    }
    // Another scheduler subscribing with our FrameworkID makes Mesos end our
    // stream with "Framework failed over": it acts now, so this one must not.
    let failedOver!: (reason: string) => void;
    const replaced = new Promise<string>((resolve) => failedOver = resolve);
    const client = new SchedulerClient({
      master,
      frameworkInfo: buildFrameworkInfo({
        user: config.UserName,
        name: config.FrameworkName,
        failoverTimeoutSeconds: config.FailoverTimeoutSeconds,
        ...(core.frameworkId ? { frameworkId: core.frameworkId } : {}),
      }),
      ...(core.frameworkId ? { frameworkId: core.frameworkId } : {}),
      onEvent: (event) => {
        if (event.type === "ERROR" && /failed over/i.test(event.error?.message ?? "")) {
          client.stop().catch(() => {});
          failedOver(
            `Mesos says another scheduler took over the framework ("${event.error?.message}")`,
          );
          return;
        }
        return core.handleEvent(event);
      },
      onStateChange: (state) => {
        log(`Mesos connection: ${state}`);
        if (state !== "subscribed") core.disconnected().catch(() => {});
      },
      log,
    });
    core.attach(mesosPort(client));
    client.start();
    cleanups.push(() => client.stop());
    log(
      `Connecting to Mesos at ${master}${
        core.frameworkId ? ` as framework ${core.frameworkId}` : ""
      }`,
    );

    // Run until told to stop, or until leadership is gone.
    const outcome = await Promise.race([
      stopped,
      replaced,
      ...(leadership ? [leadership.lost] : []),
    ]);
    if (outcome !== "stop") {
      log(
        `Lost leadership: ${outcome}; stopping at once and exiting with code ${LOST_LEADERSHIP_EXIT} ` +
          "so that a supervisor restarts this scheduler as a standby",
      );
      // Stop acting first (the Mesos client is the last cleanup, so the first
      // run); bound the rest so a dead store cannot keep us alive.
      await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 3_000))]);
      return LOST_LEADERSHIP_EXIT;
    }
    log("Stopping");
    await cleanup();
    return 0;
  } catch (error) {
    await cleanup();
    if (
      error instanceof ConfigError || error instanceof StoreUnavailableError ||
      error instanceof UsageError
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
