/**
 * The creation benchmarks: 1 master + N slaves created through mr-redis, cold
 * (a fresh scheduler and local cluster per sample, executors not running
 * yet) and warm (executors already up), against the same redis-servers
 * started directly in the same run, daemonized one after another (as by
 * hand) and in parallel without `--daemonize` (the master, then every
 * replica at once as soon as it listens: the floor). Also a cold
 * create on a slow disk (every fsync of the scheduler made 20 ms slower by an
 * LD_PRELOAD shim built here with `cc`), the phases of one cold create read
 * from the logs, and the executor's start-up.
 *
 * @module
 */
import {
  client,
  create,
  credentials,
  destroy,
  directRedisArgs,
  executorLogs,
  inSync,
  type LocalCluster,
  median,
  type MrRedis,
  portBlock,
  processesUnder,
  sleep,
  stamps,
  startLocalCluster,
  startMrRedis,
  startRedis,
  status,
  waitStatusRunning,
} from "./_harness.ts";
import { executorStartupMs } from "./executor_startup.ts";
import { CpuGroup } from "./_cpu.ts";

/**
 * One sample: wall time, and the CPU-seconds of the processes that did the
 * work (the redis-servers; for mr-redis also the sched, the local cluster and
 * the executors), from the kernel's accounting (bench/_cpu.ts); `undefined`
 * where no control group could be made.
 */
export interface Measured {
  seconds: number;
  cpuSeconds?: number;
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `mr-redis-bench-${prefix}-` });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Waits until the master on `port` counts `replicas` replicas online (each
 * has loaded its initial sync and acknowledged it), asking the master alone:
 * one connection, so the measuring costs the baselines little CPU (polling
 * every replica's INFO took as much CPU as the servers on 2 cores). Fails at
 * once when `gone` names a server that could not start (a port taken since
 * it was picked), instead of waiting out the deadline.
 */
async function allOnline(
  port: number,
  replicas: number,
  gone: () => Promise<string | undefined>,
): Promise<void> {
  const redis = client(port);
  const deadline = performance.now() + 120_000;
  let checked = performance.now();
  let last = "";
  try {
    while (performance.now() < deadline) {
      try {
        const text = String(await redis.call("INFO", ["replication"]));
        if ((text.match(/state=online/g) ?? []).length >= replicas) return;
      } catch (error) {
        last = `: ${(error as Error).message}`;
      }
      if (performance.now() - checked > 1000) {
        checked = performance.now();
        const why = await gone();
        if (why) throw new Error(why);
      }
      await sleep(20);
    }
    throw new Error(`Timed out waiting for ${replicas} replicas of ${port} online${last}`);
  } finally {
    redis.close();
  }
}

/**
 * Resolves once `port` on loopback accepts a TCP connection (tried every
 * 2 ms), or rejects with what `gone` names.
 */
async function listening(port: number, gone: () => Promise<string | undefined>): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      const why = await gone();
      if (why) throw new Error(why);
      await sleep(2);
    }
  }
  throw new Error(`redis-server on port ${port} did not listen within 10 s`);
}

/**
 * Baseline: a master, and once it listens `slaves` replicas spawned at once
 * (no `--daemonize`), until every replica is in sync. The replicas wait for
 * their master as the executors make them wait: a replica started before
 * its master listens tries again only a second later, which put a second
 * into some samples of an all-at-once start and made its median swing
 * between runs (0.26–0.69 s on one afternoon).
 */
export async function baselineMasterSlaves(slaves: number): Promise<number> {
  return (await baselineMasterSlavesMeasured(slaves)).seconds;
}

/**
 * {@linkcode baselineMasterSlaves} with the CPU-seconds of its redis-servers
 * (and of this process's spawning them), until every replica is in sync.
 */
export async function baselineMasterSlavesMeasured(slaves: number): Promise<Measured> {
  const block = portBlock(slaves + 1);
  const cpu = CpuGroup.open();
  // Each server is in the group from its first instruction (see CpuGroup.startInside).
  const spawn = <T>(start: () => T): T => cpu ? cpu.startInside(start) : start();
  return await withTempDir("ms", async (dir) => {
    const exited = new Set<number>();
    const gone = () =>
      Promise.resolve(
        exited.size > 0 ? `redis-server on port ${[...exited][0]} exited (port taken?)` : undefined,
      );
    const started = performance.now();
    const master = spawn(() => startRedis(dir, block.ports[0]!, ["--maxmemory", "10mb"]));
    master.process.status.then(() => exited.add(master.port));
    try {
      await listening(master.port, gone);
    } catch (error) {
      master.kill();
      await master.process.status;
      throw error;
    }
    const replicas = spawn(() =>
      Array.from(
        { length: slaves },
        (_, i) =>
          startRedis(dir, block.ports[i + 1]!, [
            "--maxmemory",
            "10mb",
            "--replicaof",
            "127.0.0.1",
            String(master.port),
          ]),
      )
    );
    for (const r of replicas) r.process.status.then(() => exited.add(r.port));
    try {
      await allOnline(master.port, slaves, gone);
      const seconds = (performance.now() - started) / 1000;
      return cpu ? { seconds, cpuSeconds: cpu.seconds() } : { seconds };
    } finally {
      for (const r of [master, ...replicas]) r.kill();
      await Promise.allSettled([master, ...replicas].map((r) => r.process.status));
    }
  }).finally(() => {
    cpu?.close();
    block.release();
  });
}

/**
 * Baseline as by hand: `redis-server --daemonize yes` for the master, then
 * for each replica one after another (each command returns once its server
 * has forked), until every replica is in sync.
 */
export async function baselineDaemonized(slaves: number): Promise<number> {
  const block = portBlock(slaves + 1);
  return await withTempDir("msd", async (dir) => {
    const ports = block.ports;
    const started = performance.now();
    try {
      for (const [i, port] of ports.entries()) {
        const out = await new Deno.Command("redis-server", {
          args: directRedisArgs(dir, port, [
            "--daemonize",
            "yes",
            "--pidfile",
            `${dir}/${port}.pid`,
            "--logfile",
            `${dir}/${port}.log`,
            "--maxmemory",
            "10mb",
            ...(i === 0 ? [] : ["--replicaof", "127.0.0.1", String(ports[0])]),
          ]),
          stdout: "null",
          stderr: "null",
        }).output();
        if (!out.success) throw new Error(`redis-server --daemonize on ${port} failed`);
      }
      // A daemonized server that could not start (its port taken since it
      // was picked) leaves a pid file naming a process that is gone, or none.
      const gone = async () => {
        if (performance.now() - started < 10_000) return undefined;
        for (const port of ports) {
          const pid = await Deno.readTextFile(`${dir}/${port}.pid`).catch(() => "");
          const alive = pid.trim() !== "" &&
            await Deno.stat(`/proc/${pid.trim()}`).then(() => true, () => false);
          if (!alive) {
            const log = await Deno.readTextFile(`${dir}/${port}.log`).catch(() => "");
            return `redis-server --daemonize on port ${port} is not running: ${
              log.trim().split("\n").at(-1) || "no log"
            }`;
          }
        }
        return undefined;
      };
      await allOnline(ports[0]!, slaves, gone);
      return (performance.now() - started) / 1000;
    } finally {
      for (const port of ports) {
        try {
          Deno.kill(Number(await Deno.readTextFile(`${dir}/${port}.pid`)), "SIGKILL");
        } catch { /* not started or gone */ }
      }
    }
  }).finally(() => block.release());
}

/** Creates 1+`slaves` on `mr` and waits until RUNNING (every slave checked in sync); deletes it. */
export async function mrCreateMasterSlaves(
  mr: MrRedis,
  name: string,
  slaves: number,
  distribution: number,
): Promise<number> {
  return (await mrCreateMasterSlavesMeasured(mr, name, slaves, distribution)).seconds;
}

/**
 * {@linkcode mrCreateMasterSlaves} with the CPU-seconds the sched, the local
 * cluster, the executors and the redis-servers used from the POST until the
 * client saw RUNNING (when `mr` has a CPU group).
 */
export async function mrCreateMasterSlavesMeasured(
  mr: MrRedis,
  name: string,
  slaves: number,
  distribution: number,
): Promise<Measured> {
  const cpuBefore = mr.cpu?.seconds();
  const started = performance.now();
  await create(mr.api, name, 10, slaves, distribution);
  await waitStatusRunning(mr.api, name);
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = cpuBefore === undefined ? undefined : mr.cpu!.seconds() - cpuBefore;
  // Check the claim behind RUNNING: every slave answers and is in sync.
  const s = (await status(mr.api, name))!;
  const password = await credentials(mr.api, name);
  for (const slave of s.Slaves) {
    if (!await inSync(Number(slave.Port), slave.IP, password)) {
      throw new Error(`${name}: slave ${slave.Port} not in sync`);
    }
  }
  await destroy(mr.api, name);
  return cpuSeconds === undefined ? { seconds } : { seconds, cpuSeconds };
}

/** The phases of one create, in ms from the POST, read from the sched and executor logs. */
export interface CreatePhases {
  /** Scheduler log: the first and last task recorded and handed to Mesos. */
  firstLaunch: number;
  lastLaunch: number;
  /** Executor logs: the last executor up (its first log line, written right after its SUBSCRIBE left). */
  executorsUp: number;
  /** Executor logs: the last redis-server started. */
  lastRedisStarted: number;
  /** Scheduler log: the last TASK_RUNNING (a slave is RUNNING once its sync is done). */
  lastTaskRunning: number;
  /** Scheduler log: the instance RUNNING. */
  instanceRunning: number;
  /** The client saw RUNNING in STATUS. */
  clientSaw: number;
}

/** One cold sample: a fresh sched and local cluster, then a create of 1+`slaves`. */
export async function coldCreate(
  slaves: number,
  distribution: number,
  options: { schedEnv?: Record<string, string> } = {},
): Promise<Measured & { phases: CreatePhases }> {
  return await withTempDir("cold", async (dir) => {
    const mr = await startMrRedis(dir, {
      agents: 3,
      cpus: 64,
      memMB: 65536,
      ...(options.schedEnv ? { schedEnv: options.schedEnv } : {}),
    });
    try {
      const wall = Date.now();
      const { seconds, cpuSeconds } = await mrCreateMasterSlavesMeasured(
        mr,
        "cold",
        slaves,
        distribution,
      );
      const sched = await Deno.readTextFile(`${dir}/sched.log`);
      const executors = await executorLogs(`${dir}/local`);
      const rel = (list: number[], pick: "first" | "last") =>
        list.length === 0 ? NaN : (pick === "first" ? Math.min(...list) : Math.max(...list)) - wall;
      const launches = stamps(sched, /Launching cold\./);
      const phases: CreatePhases = {
        firstLaunch: rel(launches, "first"),
        lastLaunch: rel(launches, "last"),
        executorsUp: rel(
          // One first line per executor: the earliest stamp of each "Starting:" line.
          stamps(executors, /MrRedisExecutor: Starting:/),
          "last",
        ),
        lastRedisStarted: rel(stamps(executors, /Task cold\.\S+: redis-server pid/), "last"),
        lastTaskRunning: rel(stamps(sched, /Task cold\.\S+ is RUNNING/), "last"),
        instanceRunning: rel(stamps(sched, /Instance cold is RUNNING/), "first"),
        clientSaw: seconds * 1000,
      };
      return cpuSeconds === undefined ? { seconds, phases } : { seconds, cpuSeconds, phases };
    } finally {
      await mr.stop();
    }
  });
}

/** Cold creates on a running local cluster: see {@linkcode openRunningCluster}. */
export interface RunningCluster {
  /** One cold create of 1+`slaves` by a fresh sched (a new framework) on the cluster. */
  sample(): Promise<Measured>;
  /** Stops the cluster; what a sample started has already ended. */
  close(): Promise<void>;
}

/**
 * Cold creates as on a cluster whose Mesos is already up: one local cluster
 * for every sample, first used by a scheduler of its own (so its master and
 * agents have run a create before, as a real Mesos master and agents have).
 * Each sample is a fresh sched (a new framework, no executor of it running)
 * creating 1+`slaves`; after it the instance is deleted, the sched stopped
 * and its executors ended (SIGTERM), so the next sample's sched finds none.
 */
export async function openRunningCluster(
  slaves: number,
  distribution: number,
): Promise<RunningCluster> {
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-cold-up-" });
  let local: LocalCluster | undefined;
  let count = 0;
  const sample = async () => {
    const schedDir = `${dir}/sched${count}`;
    const name = `up${count++}`;
    await Deno.mkdir(schedDir);
    const mr = await startMrRedis(schedDir, {
      agents: 3,
      cpus: 64,
      memMB: 65536,
      local: local!,
    });
    try {
      return await mrCreateMasterSlavesMeasured(mr, name, slaves, distribution);
    } finally {
      await mr.stop();
      await endExecutors(local!.dir);
    }
  };
  const close = async () => {
    await local?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    local = await startLocalCluster(`${dir}/local`, { agents: 3, cpus: 64, memMB: 65536 });
    // Not a sample: it only brings the cluster's own code into use.
    await sample();
  } catch (error) {
    await close();
    throw error;
  }
  return { sample, close };
}

/** Ends every executor running in a sandbox under `dir` (SIGTERM, SIGKILL after 10 s). */
async function endExecutors(dir: string): Promise<void> {
  const pids = processesUnder(dir, "executor");
  const alive = (pid: number) => {
    try {
      return !/^\S+ \([^)]*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
    } catch {
      return false;
    }
  };
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  const deadline = performance.now() + 10_000;
  while (pids.some(alive)) {
    if (performance.now() > deadline) {
      for (const pid of pids.filter(alive)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      break;
    }
    await sleep(20);
  }
}

/**
 * C source of the slow-disk shim: every fsync/fdatasync sleeps SLOW_FSYNC_MS
 * first, and fails with EIO while the file FSYNC_FAIL_FILE names exists (a
 * disk that stopped taking writes, for the tests).
 */
const SLOW_FSYNC_C = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
static int pause_io(void) {
  const char *ms = getenv("SLOW_FSYNC_MS");
  const char *fail = getenv("FSYNC_FAIL_FILE");
  usleep((ms ? atoi(ms) : 20) * 1000);
  if (fail && access(fail, F_OK) == 0) {
    errno = EIO;
    return -1;
  }
  return 0;
}
int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  if (pause_io() != 0) return -1;
  return real(fd);
}
int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  if (pause_io() != 0) return -1;
  return real(fd);
}
`;

/** Builds the slow-disk shim with `cc` in `dir`; returns the path of the shared object. */
export async function buildSlowFsyncShim(dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/slow_fsync.c`, SLOW_FSYNC_C);
  const out = await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-O2", "-o", `${dir}/slow_fsync.so`, `${dir}/slow_fsync.c`, "-ldl"],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(
      `Cannot build the slow-disk shim: cc is missing (apt-get install gcc): ${error.message}`,
    );
  });
  if (!out.success) {
    throw new Error(`Cannot build the slow-disk shim: ${new TextDecoder().decode(out.stderr)}`);
  }
  return `${dir}/slow_fsync.so`;
}

/** Proves the shim works: one SQLite commit under it takes at least `ms`. */
export async function checkShim(shim: string, ms: number): Promise<number> {
  const code = `import { DatabaseSync } from "node:sqlite";
const db = new DatabaseSync(Deno.args[0]);
db.exec("PRAGMA journal_mode = WAL"); db.exec("PRAGMA synchronous = FULL");
db.exec("CREATE TABLE t (k TEXT)");
const t = performance.now();
for (let i = 0; i < 5; i++) db.exec("INSERT INTO t VALUES ('x')");
console.log((performance.now() - t) / 5);`;
  return await withTempDir("shim", async (dir) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code, `${dir}/t.db`],
      env: { LD_PRELOAD: shim, SLOW_FSYNC_MS: String(ms) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return Number(new TextDecoder().decode(out.stdout).trim());
  });
}

/** Executor start-up samples and those of an empty Deno program doing the same request. */
export async function executorStartup(
  samples: number,
): Promise<{ executor: number[]; bare: number[] }> {
  return await withTempDir("exec", async (dir) => {
    const bare = `${dir}/bare.ts`;
    await Deno.writeTextFile(
      bare,
      `await fetch("http://" + Deno.env.get("MESOS_AGENT_ENDPOINT") + "/api/v1/executor", { method: "POST" }).catch(() => {});\n`,
    );
    const executor: number[] = [];
    const empty: number[] = [];
    for (let i = 0; i < samples; i++) {
      executor.push(await executorStartupMs());
      empty.push(await executorStartupMs(bare));
    }
    return { executor, bare: empty };
  });
}

export { median };
