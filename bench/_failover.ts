/**
 * Failover benchmarks: SIGKILL of the master redis-server of a 1+2 instance
 * → first write accepted by the new master, against redis-sentinel over the
 * same three servers started directly. Each mr-redis sample is broken into
 * phases read from the scheduler and executor logs, so the time can be put
 * on detection, the promotion (its AOF switch included) and the re-pointed
 * slaves attaching (the new master refuses writes with NOREPLICAS until one
 * of them counts as a good replica).
 *
 * @module
 */
import {
  client,
  command,
  create,
  credentials,
  destroy,
  executorLogs,
  freePort,
  inSync,
  type MrRedis,
  redisPidsOnPort,
  sleep,
  stamps,
  startRedis,
  status,
  until,
} from "./_harness.ts";

/** One failover: its duration and the WAIT-acknowledged writes it lost. */
export interface FailoverSample {
  seconds: number;
  lost: number;
  acked: number;
}

/**
 * Where the time of one mr-redis failover went, in ms from the SIGKILL (NaN
 * when a line was not found). Wall clock of this process and the logs.
 */
export interface FailoverPhases {
  /** The scheduler logs the master's task lost (the executor saw the exit). */
  lost: number;
  /** The scheduler sends `promote` (after asking the slaves for their offsets). */
  promoting: number;
  /** The executor has promoted it (AOF switched on, `REPLICAOF NO ONE` done). */
  promoted: number;
  /** ms the executor spent switching the AOF on inside the promote (its log line). */
  aofMs: number;
  /** The scheduler got the promote's result. */
  promoteDone: number;
  /** The last `replicaof` result for the other slave. */
  repointed: number;
  /** The new master first showed in STATUS. */
  inStatus: number;
  /** The first write the new master accepted. */
  firstWrite: number;
  /** Writes the new master refused with NOREPLICAS before that. */
  noreplicas: number;
}

/** An mr-redis failover sample with its phases. */
export interface MrFailoverSample extends FailoverSample {
  phases: FailoverPhases;
}

/** Writes `keys` keys, each acknowledged by `WAIT 2`; returns the acknowledged ones. */
async function writeAcked(
  port: number,
  keys: number,
  host = "127.0.0.1",
  password?: string,
): Promise<string[]> {
  const redis = client(port, host, password);
  const acked: string[] = [];
  try {
    for (let i = 0; i < keys; i++) {
      const key = `k${i}`;
      await redis.call("SET", [key, `v${i}`]);
      const replicas = Number(await redis.call("WAIT", [2, 1000]));
      if (replicas >= 2) acked.push(key);
    }
  } finally {
    redis.close();
  }
  return acked;
}

async function countPresent(
  port: number,
  keys: string[],
  host = "127.0.0.1",
  password?: string,
): Promise<number> {
  const redis = client(port, host, password);
  try {
    let present = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const values = await redis.call("MGET", keys.slice(i, i + 100)) as (string | null)[];
      present += values.filter((v) => v !== null).length;
    }
    return present;
  } finally {
    redis.close();
  }
}

/** One SET on a fresh connection: "ok", "noreplicas" (refused for want of replicas) or "no". */
export async function tryWrite(
  port: number,
  host = "127.0.0.1",
  password?: string,
): Promise<"ok" | "noreplicas" | "no"> {
  try {
    const answer = await command(
      port,
      ["SET", "failover-probe", String(Date.now())],
      host,
      password,
    );
    return answer === "OK" ? "ok" : "no";
  } catch (error) {
    return /NOREPLICAS/.test((error as Error).message) ? "noreplicas" : "no";
  }
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `mr-redis-bench-${prefix}-` });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Baseline: redis-sentinel over a master and two replicas, down-after 1000 ms, quorum 1. */
export async function baselineSentinelFailover(keys: number): Promise<FailoverSample> {
  return await withTempDir("sentinel", async (dir) => {
    const master = startRedis(dir, freePort());
    const replicas = [0, 1].map(() =>
      startRedis(dir, freePort(), ["--replicaof", "127.0.0.1", String(master.port)])
    );
    const sentinelPort = freePort();
    await Deno.writeTextFile(
      `${dir}/sentinel.conf`,
      [
        `port ${sentinelPort}`,
        "bind 127.0.0.1",
        `dir ${dir}`,
        `sentinel monitor bench 127.0.0.1 ${master.port} 1`,
        "sentinel down-after-milliseconds bench 1000",
        "sentinel failover-timeout bench 10000",
        "sentinel parallel-syncs bench 2",
        "",
      ].join("\n"),
    );
    const sentinel = new Deno.Command("redis-sentinel", {
      args: [`${dir}/sentinel.conf`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await Promise.all(replicas.map((r) => until("replica sync", () => inSync(r.port))));
      await until("sentinel to see both replicas", async () => {
        const list = await command(sentinelPort, ["SENTINEL", "replicas", "bench"]) as unknown[];
        return list.length === 2;
      });
      const acked = await writeAcked(master.port, keys);
      const killed = performance.now();
      master.kill("SIGKILL");
      const newPort = await until(
        "sentinel to name a new master",
        async () => {
          const addr = await command(sentinelPort, [
            "SENTINEL",
            "get-master-addr-by-name",
            "bench",
          ]) as string[];
          const port = Number(addr[1]);
          return port !== master.port && await tryWrite(port) === "ok" ? port : 0;
        },
        60_000,
        10,
      );
      const seconds = (performance.now() - killed) / 1000;
      const present = await countPresent(newPort, acked);
      return { seconds, lost: acked.length - present, acked: acked.length };
    } finally {
      try {
        sentinel.kill("SIGKILL");
      } catch { /* gone */ }
      for (const r of [master, ...replicas]) r.kill();
      await Promise.allSettled([
        sentinel.status,
        master.process.status,
        ...replicas.map((r) => r.process.status),
      ]);
    }
  });
}

/** What {@linkcode killMaster} saw. */
export interface KilledMaster {
  /** The new master, as STATUS named it. */
  next: { IP: string; Port: string };
  /** `Date.now()` at the SIGKILL (for the logs). */
  wall: number;
  /** ms from the SIGKILL until STATUS named another master. */
  inStatus: number;
  /** ms from the SIGKILL until that master accepted a SET. */
  firstWrite: number;
  /** Writes it refused with NOREPLICAS before that. */
  noreplicas: number;
}

/**
 * SIGKILL of the one redis-server on `oldPort` (the master of `name`), then
 * SET on the master STATUS names (polled every 10 ms) until one is accepted.
 */
export async function killMaster(
  mr: MrRedis,
  name: string,
  oldPort: number,
  password?: string,
): Promise<KilledMaster> {
  const pids = await redisPidsOnPort(oldPort);
  if (pids.length !== 1) {
    throw new Error(`Expected one redis-server on port ${oldPort}, found ${pids.length}`);
  }
  const wall = Date.now();
  const killed = performance.now();
  Deno.kill(pids[0]!, "SIGKILL");
  let inStatus = NaN;
  let noreplicas = 0;
  const next = await until(
    "a new writable master",
    async () => {
      const m = (await status(mr.api, name))?.Master;
      if (!m || Number(m.Port) === oldPort) return undefined;
      if (Number.isNaN(inStatus)) inStatus = performance.now() - killed;
      const got = await tryWrite(Number(m.Port), m.IP, password);
      if (got === "noreplicas") noreplicas++;
      return got === "ok" ? m : undefined;
    },
    60_000,
    10,
  );
  return { next, wall, inStatus, firstWrite: performance.now() - killed, noreplicas };
}

/**
 * A 1+2 instance on `mr`: `keys` WAIT-acknowledged writes, SIGKILL of the
 * master redis-server, then SET on the new master (named by STATUS, polled
 * every 10 ms) until one is accepted; counts the acknowledged keys it has.
 */
export async function mrFailover(
  mr: MrRedis,
  name: string,
  keys: number,
): Promise<MrFailoverSample> {
  await create(mr.api, name, 50, 2);
  try {
    const before = await until(`${name} RUNNING`, async () => {
      const s = await status(mr.api, name);
      return s?.Status === "RUNNING" && s.Master ? s : undefined;
    }, 120_000);
    const oldPort = Number(before.Master!.Port);
    const password = await credentials(mr.api, name);
    // RUNNING is judged from the slaves' side; the master may count them a moment later.
    await until(
      `${name}'s master to take writes`,
      async () => await tryWrite(oldPort, before.Master!.IP, password) === "ok",
      30_000,
    );
    const acked = await writeAcked(oldPort, keys, before.Master!.IP, password);
    const { next, wall, inStatus, firstWrite, noreplicas } = await killMaster(
      mr,
      name,
      oldPort,
      password,
    );
    const present = await countPresent(Number(next.Port), acked, next.IP, password);
    // The replicaof result may reach the scheduler's log after the first write.
    let phases = await failoverPhases(mr, name, wall, { inStatus, firstWrite, noreplicas });
    for (let i = 0; i < 20 && Number.isNaN(phases.repointed); i++) {
      await sleep(100);
      phases = await failoverPhases(mr, name, wall, { inStatus, firstWrite, noreplicas });
    }
    return {
      seconds: firstWrite / 1000,
      lost: acked.length - present,
      acked: acked.length,
      phases,
    };
  } finally {
    await destroy(mr.api, name);
  }
}

/** Reads the phases of the failover of `name` (killed at `wall`) from the logs. */
export async function failoverPhases(
  mr: MrRedis,
  name: string,
  wall: number,
  seen: { inStatus: number; firstWrite: number; noreplicas: number },
): Promise<FailoverPhases> {
  const sched = await Deno.readTextFile(`${mr.dir}/sched.log`).catch(() => "");
  const executors = await executorLogs(`${mr.dir}/local`);
  const after = (list: number[], pick: "first" | "last") => {
    const late = list.filter((t) => t >= wall - 5);
    if (late.length === 0) return NaN;
    return (pick === "first" ? Math.min(...late) : Math.max(...late)) - wall;
  };
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const promotedLine = executors.split("\n").filter((l) =>
    new RegExp(`Task ${esc}\\.\\S+: promoted to master`).test(l) &&
    Date.parse(l.slice(0, 24)) >= wall
  ).at(0);
  const aofMs = Number(/AOF on in (\d+) ms/.exec(promotedLine ?? "")?.[1] ?? NaN);
  return {
    lost: after(stamps(sched, new RegExp(`Task ${esc}\\.\\S+ of ${esc} lost`)), "first"),
    promoting: after(stamps(sched, new RegExp(`Instance ${esc}: promoting`)), "first"),
    promoted: after(
      stamps(executors, new RegExp(`Task ${esc}\\.\\S+: promoted to master`)),
      "first",
    ),
    aofMs,
    promoteDone: after(stamps(sched, new RegExp(`Command promote ${esc}/\\S+: done`)), "first"),
    repointed: after(stamps(sched, new RegExp(`Command replicaof ${esc}/\\S+: done`)), "last"),
    inStatus: seen.inStatus,
    firstWrite: seen.firstWrite,
    noreplicas: seen.noreplicas,
  };
}
