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
import { SchedulerClient } from "../lib/mesos/scheduler_client.ts";
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

/** Runs the scheduler until SIGINT/SIGTERM; returns the exit code. */
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
    const logger = makeLogger(config.LogFile);
    cleanups.push(() => logger.close());
    const log = logger.log;
    log("*****************************************************************");
    log("********************* Starting MrRedis-Scheduler ****************");
    log("*****************************************************************");

    // The store.
    if (config.DBType === "embedded") {
      await Deno.mkdir(parentDir(config.DBEndPoint), { recursive: true });
    }
    const store: Store = await openStore({ type: config.DBType, endpoints: config.DBEndPoint });
    cleanups.push(() => store.close());
    log(`Using the store ${store.description}`);

    // The artifact server, then the core (the ExecutorInfo needs the artifact URL).
    const artifacts: ArtifactServer = await listen(
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
    cleanups.push(() => artifacts.stop());
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

    // The REST API.
    const handler = createApiHandler(core, { log });
    const server = await listen("HTTPPort", config.HTTPPort, () =>
      Promise.resolve(Deno.serve({
        hostname: config.HTTPAddress,
        port: config.HTTPPort,
        onListen: () => {},
      }, handler)));
    cleanups.push(() => server.shutdown());
    log(`Starting the HTTP server at port ${server.addr.port}`);

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
    const client = new SchedulerClient({
      master,
      frameworkInfo: buildFrameworkInfo({
        user: config.UserName,
        name: config.FrameworkName,
        failoverTimeoutSeconds: config.FailoverTimeoutSeconds,
        ...(core.frameworkId ? { frameworkId: core.frameworkId } : {}),
      }),
      ...(core.frameworkId ? { frameworkId: core.frameworkId } : {}),
      onEvent: (event) => core.handleEvent(event),
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

    // Run until told to stop.
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      Deno.addSignalListener("SIGINT", stop);
      Deno.addSignalListener("SIGTERM", stop);
      cleanups.push(() => {
        Deno.removeSignalListener("SIGINT", stop);
        Deno.removeSignalListener("SIGTERM", stop);
      });
    });
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
