/**
 * Helpers of the failover end-to-end tests: a local Mesos cluster owned by the
 * test process (so a test can stop an agent), the real `sched` process
 * pointed at it, writes acknowledged by `WAIT`, and a sampler that checks
 * every ~50 ms that no two redis-servers of the instance answer `ROLE` as
 * master.
 *
 * @module
 */
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import type { LocalCluster, LocalClusterOptions } from "../lib/mesos/local/mod.ts";
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { BLOCK_SIZE, reservePortRange } from "./_ports.ts";
import {
  redisPids,
  type Sched,
  type SchedOptions,
  startSched,
  status,
  type View,
  waitRunning,
  withRedis,
} from "./_sched.ts";

/** Ports each local agent offers. */
export const PORTS_PER_AGENT = 2 * BLOCK_SIZE;

/** A local cluster in the test process and a `sched` process using it. */
export interface FailoverEnv {
  dir: string;
  cluster: LocalCluster;
  sched: Sched;
  portsBase: number;
  agents: number;
  /** SIGKILLs sched (or stops it cleanly) and starts it again on the same ports and store. */
  restartSched(how: "kill" | "stop"): Promise<Sched>;
  /** The agent index whose port range holds `port`. */
  agentOfPort(port: number | string): number;
  /** Stops sched and the cluster, removes the dir. */
  close(): Promise<void>;
}

/**
 * `startSched`, tried again (up to 5 times, 1 s apart) when a port it was
 * given turned out taken: ports from `freePort()` can be grabbed by another
 * test's connection before sched binds them.
 */
async function startSchedRetrying(options: SchedOptions): Promise<Sched> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startSched(options);
    } catch (error) {
      if (attempt >= 5 || !/in use/.test((error as Error).message)) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * Starts the cluster (its agents on a port range held for the test, see
 * `_ports.ts`) and sched on the embedded store. `clusterOptions` overrides
 * options of the local cluster (the agent ping timeout is 2 s unless given);
 * `schedConfig` adds config fields of sched.
 */
export async function startFailoverEnv(
  name: string,
  agents = 3,
  clusterOptions: Partial<LocalClusterOptions> = {},
  schedConfig?: Record<string, unknown>,
): Promise<FailoverEnv> {
  const dir = await tempDir(name);
  const ports = reservePortRange(agents * PORTS_PER_AGENT);
  const portsBase = ports.base;
  let cluster: LocalCluster;
  let sched: Sched;
  try {
    const started = await startLocalCluster({
      agentPingTimeoutMs: 2_000,
      ...clusterOptions,
      agents,
      workDir: `${dir}/mesos`,
      portsBase,
      portsPerAgent: PORTS_PER_AGENT,
    });
    cluster = started.cluster;
    try {
      sched = await startSchedRetrying({
        dir,
        dbType: "embedded",
        master: new URL(started.url).host,
        ...(schedConfig ? { config: schedConfig } : {}),
      });
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  } catch (error) {
    ports.release();
    throw error;
  }
  const env: FailoverEnv = {
    dir,
    cluster,
    sched,
    portsBase,
    agents,
    async restartSched(how) {
      const old = env.sched;
      if (how === "kill") await old.kill();
      else await old.stop();
      env.sched = await startSchedRetrying({
        ...old.options,
        httpPort: old.httpPort,
        artifactPort: old.artifactPort,
        prefix: old.prefix,
      });
      return env.sched;
    },
    agentOfPort(port) {
      return Math.floor((Number(port) - portsBase) / PORTS_PER_AGENT);
    },
    async close() {
      await env.sched.stop().catch(() => {});
      await cluster.stop().catch(() => {});
      ports.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return env;
}

/** The sched log tail, for failure messages. */
export function logTail(sched: Sched, lines = 60): string {
  return `\n--- sched log tail ---\n${sched.log().split("\n").slice(-lines).join("\n")}`;
}

/**
 * Writes keys `k0`…`k{n-1}` on the master and waits until `WAIT slaves 1000`
 * acknowledges them on every slave; returns the keys' values.
 */
export async function writeAcked(view: View, n: number, tag: string): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  await withRedis(view.Master!, async (r) => {
    const pipe = r.pipeline();
    for (let i = 0; i < n; i++) {
      const key = `${tag}:k${i}`;
      const value = `${tag}-v${i}`;
      values.set(key, value);
      pipe.set(key, value);
    }
    const results = await pipe.exec();
    assert(results?.every(([e]) => e === null), "every SET succeeded");
    const acked = await r.call("WAIT", String(view.Slaves.length), "1000") as number;
    assertEquals(acked, view.Slaves.length, `WAIT acknowledged by ${acked} slave(s)`);
  });
  return values;
}

/** Checks every key of `values` on `p` (one MGET). */
export async function assertKeys(
  p: View["Master"] & object,
  values: Map<string, string>,
): Promise<void> {
  const keys = [...values.keys()];
  await withRedis(p, async (r) => {
    const got = await r.mget(...keys);
    const missing = keys.filter((k, i) => got[i] !== values.get(k));
    assertEquals(
      missing.length,
      0,
      `${missing.length} acknowledged keys lost: ${missing.slice(0, 5)}`,
    );
  });
}

/** Pid of the redis-server on `port` (fails clearly when none). */
export async function pidOfPort(port: string | number): Promise<number> {
  const pids = await redisPids(port);
  assert(pids.length === 1, `expected one redis-server on port ${port}, found ${pids.join(",")}`);
  return pids[0]!;
}

/** Parent pid of `pid` (from /proc). */
export async function parentPid(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
  const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  assert(ppid > 1, `parent of ${pid}`);
  return ppid;
}

/**
 * Waits until the instance is RUNNING again with a master other than
 * `oldPort`, `slaves` slaves, every slave replicating from the new master
 * (INFO `master_port`); returns the STATUS.
 */
export async function waitHealed(
  sched: Sched,
  name: string,
  oldPort: string,
  slaves: number,
  timeoutMs = 60_000,
): Promise<View> {
  let last: View | undefined;
  try {
    return await waitFor(
      `${name} healed (RUNNING, new master, ${slaves} slaves following it)`,
      async () => {
        last = await status(sched, name);
        if (
          last?.Status !== "RUNNING" || !last.Master || last.Master.Port === oldPort
        ) return undefined;
        if (last.Slaves.length !== slaves) return undefined;
        for (const s of last.Slaves) {
          const info = await withRedis(s, (r) => r.info("replication"));
          if (!info.includes(`master_port:${last.Master.Port}\r`)) return undefined;
          if (!info.includes("master_link_status:up")) return undefined;
        }
        const role = await withRedis(last.Master, (r) => r.call("ROLE") as Promise<unknown[]>);
        return role[0] === "master" ? last : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; last STATUS ${JSON.stringify(last)}${logTail(sched)}`,
    );
  }
}

/**
 * Polls STATUS until it shows a master other than `oldPort` that takes a
 * write; returns the ms from `since` to that first successful write.
 */
export async function firstWrite(
  sched: Sched,
  name: string,
  oldPort: string,
  since: number,
  timeoutMs = 30_000,
): Promise<number> {
  try {
    return await waitFor(`a new master of ${name} taking writes`, async () => {
      const v = await status(sched, name);
      if (!v?.Master || v.Master.Port === oldPort) return undefined;
      await withRedis(v.Master, (r) => r.set(`${name}:first-write`, String(since)));
      return Date.now() - since;
    }, { timeoutMs, intervalMs: 20 });
  } catch (error) {
    throw new Error(`${(error as Error).message}${logTail(sched)}`);
  }
}

/** Index just past the RESP value starting at `i` in `text`, or -1 when incomplete. */
function respEnd(text: string, i: number): number {
  const eol = text.indexOf("\r\n", i);
  if (eol < 0) return -1;
  const head = text[i];
  const n = Number(text.slice(i + 1, eol));
  if (head === "+" || head === "-" || head === ":") return eol + 2;
  if (head === "$") {
    if (n < 0) return eol + 2;
    const stop = eol + 2 + n + 2;
    return text.length >= stop ? stop : -1;
  }
  if (head === "*") {
    let at = eol + 2;
    for (let k = 0; k < n; k++) {
      at = respEnd(text, at);
      if (at < 0) return -1;
    }
    return at;
  }
  throw new Error(`Bad RESP reply: ${JSON.stringify(text.slice(i, i + 20))}`);
}

/**
 * Asks ROLE over one kept-open connection per port (few sockets, so the
 * sampler does not eat the ephemeral ports other tests pick listen ports
 * from); a connection that fails or stays silent past `timeoutMs` is closed
 * and opened again at the next sample.
 */
class RoleProbe {
  readonly #conns = new Map<number, Deno.TcpConn>();

  /** Whether the redis-server on `port` answers ROLE with `master` in time. */
  async saysMaster(port: number, timeoutMs = 300): Promise<boolean> {
    let conn = this.#conns.get(port);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const drop = () => {
      this.#conns.delete(port);
      try {
        conn?.close();
      } catch {
        // already closed
      }
    };
    try {
      timer = setTimeout(() => {
        timedOut = true;
        drop();
      }, timeoutMs);
      if (!conn) {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        if (timedOut) {
          conn.close();
          return false;
        }
        this.#conns.set(port, conn);
      }
      await conn.write(new TextEncoder().encode("*1\r\n$4\r\nROLE\r\n"));
      const buf = new Uint8Array(4096);
      let text = "";
      let end = -1;
      while (end < 0) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("closed");
        text += new TextDecoder().decode(buf.subarray(0, n));
        end = respEnd(text, 0);
      }
      if (end !== text.length) drop(); // more than one reply: start afresh
      return text.split("\r\n")[2] === "master";
    } catch {
      drop();
      return false; // dead, stopped or refusing: not a master a client can use
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes every connection. */
  close(): void {
    for (const conn of this.#conns.values()) {
      try {
        conn.close();
      } catch {
        // closed
      }
    }
    this.#conns.clear();
  }
}

/**
 * Ports of every redis-server process running in `dir` (its working
 * directory, the data dir in a sandbox, lies under it): this test's own,
 * whatever other redis-servers the machine runs, on whichever ports; read
 * from /proc.
 */
async function redisPortsUnder(dir: string): Promise<number[]> {
  const root = `${await Deno.realPath(dir)}/`;
  const ports: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (!`${await Deno.readLink(`/proc/${entry.name}/cwd`)}/`.startsWith(root)) continue;
      // redis-server sets its title to "redis-server 127.0.0.1:PORT".
      const title = (await Deno.readTextFile(`/proc/${entry.name}/cmdline`)).replaceAll("\0", " ");
      const m = /redis-server\S*\s+\S*:(\d+)\b/.exec(title);
      if (m) ports.push(Number(m[1]));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return ports;
}

/** Samples ROLE of every process of an instance until stopped; records any double master. */
export class MasterSampler {
  readonly #ports = new Set<number>();
  readonly #violations: string[] = [];
  #samples = 0;
  #running = true;
  readonly #loop: Promise<void>;

  /** Starts sampling `name` on `env` every ~`intervalMs`. */
  constructor(env: FailoverEnv, name: string, intervalMs = 50) {
    const probe = new RoleProbe();
    let scannedAt = 0;
    let scanning: Promise<void> | undefined;
    this.#loop = (async () => {
      while (this.#running) {
        const began = Date.now();
        try {
          const v = await status(env.sched, name).catch(() => undefined);
          for (const p of [v?.Master, ...(v?.Slaves ?? [])]) {
            if (p?.Port) this.#ports.add(Number(p.Port));
          }
          // Processes STATUS does not list (a stray old master): looked for at
          // most once a second, beside the samples (a scan of /proc takes
          // seconds on a busy machine).
          if (scanning === undefined && began - scannedAt >= 1_000) {
            scannedAt = began;
            scanning = redisPortsUnder(env.dir)
              .then((found) => found.forEach((port) => this.#ports.add(port)))
              .catch(() => {})
              .finally(() => scanning = undefined);
          }
          const ports = [...this.#ports];
          const answers = await Promise.all(ports.map((port) => probe.saysMaster(port)));
          const masters = ports.filter((_, i) => answers[i]);
          this.#samples++;
          if (masters.length > 1) {
            this.#violations.push(`${new Date().toISOString()}: masters on ports ${masters}`);
          }
        } catch {
          // a sample that could not be taken proves nothing
        }
        await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - began))));
      }
      await scanning;
      probe.close();
    })();
  }

  /** Stops sampling; asserts there was never more than one master and enough samples. */
  async stopAndCheck(): Promise<void> {
    this.#running = false;
    await this.#loop;
    assert(this.#samples > 5, `only ${this.#samples} samples taken`);
    assertEquals(this.#violations, [], "two processes of one instance said master at once");
  }
}

/** Kills the master's redis-server of `view` with `signal`; returns its port. */
export async function killMasterRedis(view: View, signal: Deno.Signal): Promise<string> {
  const pid = await pidOfPort(view.Master!.Port);
  Deno.kill(pid, signal);
  return view.Master!.Port;
}

/** Creates an MS instance and waits for it to be RUNNING with its slaves in sync. */
export async function createRunning(
  sched: Sched,
  name: string,
  slaves: number,
): Promise<View> {
  const res = await sched.api(`/v1/CREATE/${name}/20/1/${slaves}`, { method: "POST" });
  assertEquals(res.status, 201, await res.text());
  return await waitRunning(sched, name, 60_000);
}

/** What {@linkcode masterFailoverScenario} measured. */
export interface FailoverResult {
  /** ms from the failure to the first successful write on the new master. */
  firstWriteMs: number;
  after: View;
}

/**
 * The scenario every way of losing a master runs: a 1+2 instance, 500 keys
 * acknowledged by `WAIT 2 1000`, `fail` breaks the master (returns nothing;
 * it is given the STATUS), then: a slave is promoted, every key is on it,
 * the other slave follows it, the instance is back to 1+2 RUNNING, and no two
 * processes ever said master.
 */
export async function masterFailoverScenario(
  env: FailoverEnv,
  name: string,
  fail: (view: View) => Promise<void>,
  rounds = 1,
): Promise<FailoverResult[]> {
  const results: FailoverResult[] = [];
  let view = await createRunning(env.sched, name, 2);
  const sampler = new MasterSampler(env, name);
  try {
    for (let round = 1; round <= rounds; round++) {
      const values = await writeAcked(view, 500, `r${round}`);
      const oldPort = view.Master!.Port;
      const slavePorts = view.Slaves.map((s) => s.Port);
      const failedAt = Date.now();
      await fail(view);
      const firstWriteMs = await firstWrite(env.sched, name, oldPort, failedAt);
      const after = await waitHealed(env.sched, name, oldPort, 2);
      assert(
        slavePorts.includes(after.Master!.Port),
        `round ${round}: the new master ${after.Master!.Port} is one of the slaves ${slavePorts}`,
      );
      assertEquals(after.Epoch, round, `round ${round}: epoch`);
      await assertKeys(after.Master!, values);
      results.push({ firstWriteMs, after });
      view = after;
    }
  } finally {
    await sampler.stopAndCheck();
  }
  return results;
}
