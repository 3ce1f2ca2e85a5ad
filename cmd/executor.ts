/**
 * MrRedisExecutor: the Mesos custom executor of mr-redis. One runs per agent
 * per framework and hosts every redis task of the framework on that agent.
 *
 * Started by the Mesos agent with the executor environment
 * (`MESOS_AGENT_ENDPOINT`, `MESOS_FRAMEWORK_ID`, `MESOS_EXECUTOR_ID`,
 * `MESOS_SANDBOX`, ...). mr-redis settings, all optional:
 *
 * | variable | meaning |
 * |---|---|
 * | `MRR_REDIS_SERVER` | redis-server binary; default `<sandbox>/redis-server` when the scheduler shipped one, else `redis-server` on PATH |
 * | `MRR_REDIS_BIND` | address redis-server binds; default `0.0.0.0` |
 * | `MRR_REDIS_HOST` | host reported to the scheduler; default the agent hostname |
 * | `MRR_EXECUTOR_IDLE_TIMEOUT` | exit after this long with no task (stout duration, `0secs` never); default `30secs` |
 * | `MRR_DATA_ROOT` | redis data dirs go to `$MRR_DATA_ROOT/<agent id>/`, kept across executor runs; default: the sandbox (data lost with it) |
 * | `MRR_EXECUTOR_LEASE` | masters refuse writes after this long without contact with the agent (stout duration, `0secs` never); default `5secs` |
 *
 * Status updates: TASK_RUNNING once a redis-server answers (a slave: once its
 * initial sync is done), then one terminal update. TASK_STARTING is optional
 * in Mesos and goes only for a task still starting 5 s after its LAUNCH: a
 * quick start goes from TASK_STAGING straight to TASK_RUNNING, saving an
 * update and its acknowledgement through agent, master and scheduler.
 *
 * Logs go to stderr. Exit code 0 after SHUTDOWN or when idle; 1 when the
 * agent stayed unreachable past the recovery timeout (every redis-server is
 * stopped first); 2 on a bad environment.
 *
 * @module
 */

import { RedisExecutor } from "../lib/executor/mod.ts";
import { PROXY_THREAD_NAME } from "../lib/proxy/task_spec.ts";
import {
  ExecutorClient,
  parseDuration as parseStoutDuration,
} from "../lib/mesos/executor_client.ts";

/**
 * Parses a stout duration (`5secs`, `1.5mins`, `200ms`) into ms; throws a
 * `TypeError` naming the variable and the value when it is not one.
 */
export function parseDuration(name: string, value: string): number {
  try {
    return parseStoutDuration(value);
  } catch {
    throw new TypeError(
      `Variable "${name}" must be a duration such as "5secs" or "200ms", but got "${value}"`,
    );
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * A line logger to stderr: one synchronous write per line, stamped. Not
 * `console.error`, which formats its arguments first: an executor starting
 * dozens of redis-servers logs a few lines for each, next to them on the CPU.
 */
function stderrLogger(name: string): (line: string) => void {
  const encoder = new TextEncoder();
  return (line) => {
    const bytes = encoder.encode(`${new Date().toISOString()} ${name}: ${line}\n`);
    try {
      for (let done = 0; done < bytes.length;) done += Deno.stderr.writeSync(bytes.subarray(done));
    } catch {
      // stderr gone (the sandbox removed): the line is lost, not the executor.
    }
  };
}

/** The executor settings taken from the environment. */
export interface ExecutorSettings {
  /** Sandbox directory. */
  sandbox: string;
  /** Where redis data dirs go (`MRR_DATA_ROOT/<agent id>`, else the sandbox). */
  dataRoot: string;
  /** redis-server binary. */
  redisServer: string;
  /** Address redis-server binds. */
  bind: string;
  /** Host reported to the scheduler, when set explicitly. */
  host?: string;
  /** Idle exit delay in ms (0: never). */
  idleTimeoutMs: number;
  /** Agent lease in ms (0: off); see `RedisExecutorOptions.leaseMs`. */
  leaseMs: number;
  /** Time allowed between SHUTDOWN and the agent destroying the container, in ms. */
  gracePeriodMs: number;
}

/** Reads {@linkcode ExecutorSettings} from an environment; throws naming a bad variable. */
export function settingsFromEnv(env: Record<string, string>): ExecutorSettings {
  const sandbox = env.MESOS_SANDBOX || env.MESOS_DIRECTORY || Deno.cwd();
  const shipped = `${sandbox}/redis-server`;
  const settings: ExecutorSettings = {
    sandbox,
    dataRoot: env.MRR_DATA_ROOT
      ? `${env.MRR_DATA_ROOT.replace(/\/+$/, "")}/${
        (env.MESOS_SLAVE_ID || env.MESOS_AGENT_ID || "agent").replace(/[^A-Za-z0-9_.-]/g, "_")
      }`
      : sandbox,
    redisServer: env.MRR_REDIS_SERVER || (isFile(shipped) ? shipped : "redis-server"),
    bind: env.MRR_REDIS_BIND || "0.0.0.0",
    idleTimeoutMs: env.MRR_EXECUTOR_IDLE_TIMEOUT
      ? parseDuration("MRR_EXECUTOR_IDLE_TIMEOUT", env.MRR_EXECUTOR_IDLE_TIMEOUT)
      : 30_000,
    leaseMs: env.MRR_EXECUTOR_LEASE
      ? parseDuration("MRR_EXECUTOR_LEASE", env.MRR_EXECUTOR_LEASE)
      : 5000,
    gracePeriodMs: env.MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD
      ? parseDuration(
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        env.MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD,
      )
      : 5000,
  };
  if (env.MRR_REDIS_HOST) settings.host = env.MRR_REDIS_HOST;
  return settings;
}

/** Runs the executor until SHUTDOWN, idleness or giving up; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const log = stderrLogger("MrRedisExecutor");
  if (args.includes("-h") || args.includes("--help")) {
    console.log("MrRedisExecutor: started by a Mesos agent; see the module documentation");
    return 0;
  }
  const env = Deno.env.toObject();
  let settings: ExecutorSettings;
  try {
    settings = settingsFromEnv(env);
  } catch (error) {
    log((error as Error).message);
    return 2;
  }

  let finish: (code: number) => void = () => {};
  const done = new Promise<number>((resolve) => finish = resolve);
  // The stop budget leaves room inside the grace period for the terminal updates.
  const stopTimeoutMs = Math.max(500, Math.min(4000, settings.gracePeriodMs * 0.6));

  let client: ExecutorClient | undefined;
  const executor = new RedisExecutor({
    driver: {
      update: async (status) => {
        await client!.update(status);
      },
      message: (data) => client!.message(data),
    },
    sandbox: settings.sandbox,
    dataRoot: settings.dataRoot,
    redisServer: settings.redisServer,
    bind: settings.bind,
    ...(settings.host ? { host: settings.host } : {}),
    stopTimeoutMs,
    idleTimeoutMs: settings.idleTimeoutMs,
    leaseMs: settings.leaseMs,
    connected: () => client?.subscribed ?? false,
    onIdle: () => finish(0),
    log,
    // Bundled (a release), this file is the whole program, and the proxy
    // thread starts from it (see the end of this file); from source, from
    // its own module.
    ...(import.meta.url.endsWith(".ts") ? {} : { proxyThreadModule: new URL(import.meta.url) }),
  });
  try {
    client = new ExecutorClient({
      env,
      log,
      onEvent: (event) => {
        executor.handle(event);
        if (event.type === "SHUTDOWN") executor.shutdown().then(() => finish(0));
      },
      onGiveUp: () => {
        log("Agent unreachable past the recovery timeout; stopping every redis-server");
        executor.abandon().then(() => finish(1));
      },
    });
  } catch (error) {
    log(`Cannot start the executor client: ${(error as Error).message}`);
    return 2;
  }

  // Subscribe first: the agent waits for it before sending the LAUNCH; the
  // rest of the set-up runs while the SUBSCRIBE is on its way.
  Promise.resolve(client.start()).catch((error) => {
    log(`Executor client failed: ${(error as Error).message}`);
    executor.abandon().then(() => finish(1));
  });
  const onSignal = () => {
    log("Signalled; stopping every task");
    executor.shutdown().then(() => finish(0));
  };
  const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  log(
    `Starting: sandbox ${settings.sandbox}, data in ${settings.dataRoot}, redis-server "${settings.redisServer}"`,
  );

  const code = await done;
  await executor.shutdown();
  // Wait for the agent to acknowledge the terminal updates before leaving.
  await executor.flush(Math.max(1000, settings.gracePeriodMs - stopTimeoutMs));
  for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  await Promise.resolve(client.stop()).catch(() => {});
  log(`Exiting with code ${code}`);
  return code;
}

/** Whether this program runs as the proxy thread of an executor (a Web Worker it started). */
function isProxyThread(): boolean {
  return (globalThis as { name?: unknown }).name === PROXY_THREAD_NAME &&
    typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function";
}

if (import.meta.main) {
  if (isProxyThread()) {
    const { serveProxyThread } = await import("../lib/proxy/proxy_thread.ts");
    serveProxyThread();
  } else {
    Deno.exit(await main(Deno.args));
  }
}
