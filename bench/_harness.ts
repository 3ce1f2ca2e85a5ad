/**
 * Shared pieces of the benchmarks: redis-servers started directly (the
 * baselines), a scheduler with its own local cluster, timing and statistics.
 *
 * @module
 */
import { dirname } from "node:path";
import { RedisClient } from "../lib/redis/client.ts";
import { CpuGroup } from "./_cpu.ts";
import { reservePortRange } from "../tests/_ports.ts";

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * `count` ports held for a baseline's servers: a probed range below the
 * kernel's ephemeral ports (tests/_ports.ts), so no outgoing connection of
 * another program takes one between picking and binding (with `freePort`,
 * 2 of 51 servers once failed "Failed listening on port").
 */
export function portBlock(count: number): { ports: number[]; release(): void } {
  const range = reservePortRange(count);
  return {
    ports: Array.from({ length: count }, (_, i) => range.base + i),
    release: () => range.release(),
  };
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The median of a list (NaN when it is empty: every sample failed). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-th percentile (0..100) of a non-empty list, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Polls `check` every `intervalMs` until truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 120_000,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/**
 * A short-lived client (with `password`, logged in as the default user):
 * the project's own RESP client, which never retries in the background and
 * rejects every call it cannot answer (no stray "connection closed" errors
 * outside the awaited call).
 */
export function client(port: number, host = "127.0.0.1", password?: string): RedisClient {
  return new RedisClient({
    host,
    port,
    timeoutMs: 2000,
    ...(password !== undefined ? { password } : {}),
  });
}

/** Sends one command on a fresh connection and closes it. */
export async function command(
  port: number,
  args: [string, ...(string | number)[]],
  host = "127.0.0.1",
  password?: string,
): Promise<unknown> {
  const redis = client(port, host, password);
  try {
    const [name, ...rest] = args;
    return await redis.call(name, rest);
  } finally {
    redis.close();
  }
}

/** A redis-server started directly, for the baselines. */
export interface DirectRedis {
  port: number;
  process: Deno.ChildProcess;
  kill(signal?: Deno.Signal): void;
}

/**
 * The command line of a redis-server the benchmarks start directly, on
 * `port` with data in `dir`: no persistence, diskless full syncs at once
 * (as mr-redis runs replication), then `args`.
 */
export function directRedisArgs(dir: string, port: number, args: string[] = []): string[] {
  return [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
    "--repl-diskless-sync",
    "yes",
    "--repl-diskless-sync-delay",
    "0",
    "--dbfilename",
    `dump-${port}.rdb`,
    ...args,
  ];
}

/** Starts `redis-server` on `port` with `args`, data in `dir`; does not wait. */
export function startRedis(dir: string, port: number, args: string[] = []): DirectRedis {
  const process = new Deno.Command("redis-server", {
    args: directRedisArgs(dir, port, args),
    stdout: "null",
    stderr: "null",
  }).spawn();
  return {
    port,
    process,
    kill(signal: Deno.Signal = "SIGKILL") {
      try {
        process.kill(signal);
      } catch { /* gone already */ }
    },
  };
}

/** INFO replication as a map. */
export async function infoReplication(
  port: number,
  host = "127.0.0.1",
  password?: string,
): Promise<Map<string, string>> {
  const text = String(await command(port, ["INFO", "replication"], host, password));
  return new Map(
    text.split("\r\n").filter((l) => l.includes(":")).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
}

/** True when the slave on `port` has finished its initial sync. */
export async function inSync(
  port: number,
  host = "127.0.0.1",
  password?: string,
): Promise<boolean> {
  const info = await infoReplication(port, host, password);
  return info.get("master_link_status") === "up" && info.get("master_sync_in_progress") === "0";
}

/** Resident memory of a process in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}

/** CPU time (user + system, every thread) a process has used so far, in seconds. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in ticks of 10 ms
  } catch {
    return NaN; // no /proc (not Linux): the CPU figures read "—"
  }
}

/**
 * Pids of the processes working in `dir` or below it (an agent's sandboxes,
 * say) whose command line contains `needle`; zombies left out.
 */
export function processesUnder(dir: string, needle: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!pid) continue;
    try {
      if (!Deno.readLinkSync(`/proc/${pid}/cwd`).startsWith(dir)) continue;
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      if (cmdline !== "" && cmdline.includes(needle)) pids.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Pids of redis-server processes listening on `port`. */
export async function redisPidsOnPort(port: number): Promise<number[]> {
  const out = await new Deno.Command("pgrep", {
    args: ["-f", `redis-server [^ ]*:${port}( |$)`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).map(Number);
}

/** The running scheduler and local cluster a benchmark talks to. */
export interface MrRedis {
  api: string;
  /** The directory of this scheduler: `sched.log` and the local cluster (`local/`). */
  dir: string;
  schedPid: number;
  /** The local cluster's process (its master and agents), where it is one. */
  localPid?: number;
  /**
   * The CPU accounting of the sched, the local cluster and everything they
   * start (executors, redis-servers); `undefined` where no control group
   * can be made (see {@linkcode CpuGroup.unavailable}).
   */
  cpu?: CpuGroup;
  stop(): Promise<void>;
}

const ROOT = new URL("../", import.meta.url).pathname;
/** Ports each local agent offers. */
const PORTS_PER_AGENT = 500;

async function waitLine(stream: ReadableStream<Uint8Array>, pattern: RegExp): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Process ended before printing ${pattern}: ${buffer.slice(-2000)}`);
    buffer += value;
    const match = pattern.exec(buffer);
    if (match) {
      // Keep draining so the child never blocks on a full pipe.
      (async () => {
        try {
          while (!(await reader.read()).done) { /* drain */ }
        } catch { /* closed */ }
      })();
      return match[0];
    }
  }
}

/**
 * A local cluster (`mesos_local`) in its own process, sized for the
 * benchmark, with the CPU accounting of it and of everything it starts.
 */
export interface LocalCluster {
  /** Its work directory (agents' sandboxes under it). */
  dir: string;
  pid: number;
  masterPort: number;
  /** See {@linkcode MrRedis.cpu}; schedulers started against it are added. */
  cpu?: CpuGroup;
  /** Puts `pid` in the CPU group (dropping the group when that is refused). */
  count(pid: number): void;
  stop(): Promise<void>;
}

/** Starts a local cluster of `opts.agents` agents in `dir`; resolves once its master listens. */
export async function startLocalCluster(
  dir: string,
  opts: { agents: number; cpus: number; memMB: number },
): Promise<LocalCluster> {
  const masterPort = freePort();
  // The agents' ports: a range held while the benchmark runs, probed free
  // (below the kernel's ephemeral range; see tests/_ports.ts).
  const ports = reservePortRange(opts.agents * PORTS_PER_AGENT);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}cmd/mesos_local.ts`,
      "--agents",
      String(opts.agents),
      "--port",
      String(masterPort),
      "--work-dir",
      dir,
      "--cpus",
      String(opts.cpus),
      "--mem",
      String(opts.memMB),
      "--ports-base",
      String(ports.base),
      "--ports-per-agent",
      String(PORTS_PER_AGENT),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Counted from its start: the executors and redis-servers it launches are in the group too.
  const local: LocalCluster = {
    dir,
    pid: child.pid,
    masterPort,
    cpu: CpuGroup.open(),
    count(pid: number) {
      try {
        local.cpu?.add(pid);
      } catch (error) {
        CpuGroup.unavailable = `cannot put a process in ${local.cpu}: ${(error as Error).message}`;
        local.cpu?.close();
        delete local.cpu;
      }
    },
    async stop() {
      await stopChildren([child]);
      local.cpu?.close();
      ports.release();
    },
  };
  if (!local.cpu) delete local.cpu;
  local.count(child.pid);
  try {
    await waitLine(child.stdout, /http:\/\/127\.0\.0\.1:\d+/);
  } catch (error) {
    await local.stop();
    throw error;
  }
  child.stderr.pipeTo(
    Deno.openSync(`${dirname(dir)}/mesos-local.log`, { create: true, write: true }).writable,
  ).catch(() => {});
  return local;
}

/** SIGTERM to each child, SIGKILL to those left after 10 s; resolves once all have exited. */
async function stopChildren(children: Deno.ChildProcess[]): Promise<void> {
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
  }
  const timer = setTimeout(() => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }, 10_000);
  await Promise.allSettled(children.map((child) => child.status));
  clearTimeout(timer);
}

/**
 * Starts a local cluster in its own process (sized for the benchmark) and a
 * scheduler on the embedded store pointing at it; with `opts.local`, only the
 * scheduler, against that running cluster (its `stop` then stops the
 * scheduler alone, and the cluster's CPU group counts it).
 */
export async function startMrRedis(
  dir: string,
  opts: {
    agents: number;
    cpus: number;
    memMB: number;
    /** Extra environment of the sched process (e.g. `LD_PRELOAD`). */
    schedEnv?: Record<string, string>;
    /** A running local cluster to start the scheduler against. */
    local?: LocalCluster;
  },
): Promise<MrRedis> {
  const shared = opts.local;
  const local = shared ?? await startLocalCluster(`${dir}/local`, opts);
  const children: Deno.ChildProcess[] = [];
  const stopAll = async () => {
    await stopChildren(children);
    if (!shared) await local.stop();
  };
  let schedExit: Deno.CommandStatus | undefined;
  try {
    const httpPort = freePort();
    const config = {
      Master: `127.0.0.1:${local.masterPort}`,
      DBType: "embedded",
      DBEndPoint: `${dir}/state.db`,
      HTTPPort: httpPort,
      ArtifactPort: freePort(),
      LogFile: `${dir}/sched.log`,
      LocalWorkDir: `${dir}/unused`,
    };
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
    const sched = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${ROOT}cmd/sched.ts`, `-config=${dir}/config.json`],
      ...(opts.schedEnv ? { env: opts.schedEnv } : {}),
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(sched);
    sched.status.then((status) => schedExit = status);
    local.count(sched.pid);
    const api = `http://127.0.0.1:${httpPort}`;
    // Until the REST API answers; at once when the sched has exited instead.
    const deadline = performance.now() + 60_000;
    let last = "";
    for (;;) {
      if (schedExit) {
        throw new Error(`the sched exited (code ${schedExit.code}) before its REST API answered`);
      }
      try {
        const response = await fetch(`${api}/v1/STATUS`);
        await response.body?.cancel();
        if (response.ok) break;
        last = `answered ${response.status}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (performance.now() > deadline) {
        throw new Error(`Timed out waiting for the scheduler's REST API: ${last}`);
      }
      await sleep(20);
    }
    return {
      api,
      dir,
      schedPid: sched.pid,
      localPid: local.pid,
      ...(local.cpu ? { cpu: local.cpu } : {}),
      stop: stopAll,
    };
  } catch (error) {
    // Nothing of this attempt may outlive it: the local cluster holds ports
    // (and the CPU group) that the next sample needs.
    const log = await Deno.readTextFile(`${dir}/sched.log`).catch(() => "");
    await stopAll();
    const tail = log.trim().split("\n").slice(-3).join(" | ");
    throw new Error(
      `${(error as Error).message}${tail ? `; the end of sched.log: ${tail.slice(-600)}` : ""}`,
      { cause: error },
    );
  }
}

/** STATUS JSON of one instance as the REST API gives it. */
export interface Status {
  Name: string;
  Status: string;
  Master: { IP: string; Port: string } | null;
  Slaves: { IP: string; Port: string; LastSyncedToMaster: number }[];
}

/** GET /v1/STATUS/{name}, or undefined when it is not 200. */
export async function status(api: string, name: string): Promise<Status | undefined> {
  const response = await fetch(`${api}/v1/STATUS/${name}`);
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  return await response.json();
}

/**
 * Waits until instance `name` is RUNNING with STATUS long polls
 * (`?wait=30s&status=RUNNING`: the scheduler answers when it is), as a
 * client would, instead of polling; throws after `timeoutMs`.
 */
export async function waitStatusRunning(
  api: string,
  name: string,
  timeoutMs = 300_000,
): Promise<Status> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const response = await fetch(`${api}/v1/STATUS/${name}?wait=30s&status=RUNNING`);
    if (response.ok) {
      const s: Status = await response.json();
      if (s.Status === "RUNNING") return s;
    } else {
      await response.body?.cancel();
      await sleep(100);
    }
  }
  throw new Error(`Timed out waiting for ${name} RUNNING`);
}

/** The clients' password of an instance (GET /v1/CREDENTIALS), or undefined when it has none. */
export async function credentials(api: string, name: string): Promise<string | undefined> {
  const response = await fetch(`${api}/v1/CREDENTIALS/${name}`);
  if (!response.ok) {
    const text = await response.text();
    throw new Error(`CREDENTIALS ${name}: ${response.status} ${text}`);
  }
  const body: { Password?: string | null } = await response.json();
  return body.Password ?? undefined;
}

/** POST /v1/CREATE; throws with the answer unless 201. */
export async function create(
  api: string,
  name: string,
  capacityMB: number,
  slaves: number,
  distribution?: number,
): Promise<void> {
  const init: RequestInit = { method: "POST" };
  if (distribution !== undefined) {
    init.body = JSON.stringify({ Distribution: distribution });
    init.headers = { "Content-Type": "application/json" };
  }
  const response = await fetch(`${api}/v1/CREATE/${name}/${capacityMB}/1/${slaves}`, init);
  const text = await response.text();
  if (response.status !== 201) throw new Error(`CREATE ${name}: ${response.status} ${text}`);
}

/** DELETE an instance and wait until STATUS answers 404. */
export async function destroy(api: string, name: string): Promise<void> {
  const response = await fetch(`${api}/v1/DELETE/${name}`, { method: "DELETE" });
  await response.body?.cancel();
  await until(
    `${name} to be deleted`,
    async () => {
      const r = await fetch(`${api}/v1/STATUS/${name}`);
      await r.body?.cancel();
      return r.status === 404;
    },
    60_000,
    100,
  );
}

/** Time stamps (ms since the epoch) of the log lines matching `pattern` (ISO time first on each line). */
export function stamps(text: string, pattern: RegExp): number[] {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    if (!pattern.test(line)) continue;
    const at = Date.parse(line.slice(0, 24));
    if (Number.isFinite(at)) out.push(at);
  }
  return out;
}

/** The stderr logs of every executor under `root` (a local cluster's work dir), concatenated. */
export async function executorLogs(root: string): Promise<string> {
  let text = "";
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path).catch(() => {});
      else if (entry.name === "stderr") text += await Deno.readTextFile(path).catch(() => "");
    }
  };
  await walk(root).catch(() => {});
  return text;
}
