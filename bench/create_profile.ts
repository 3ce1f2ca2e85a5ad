/**
 * Where a 1 master + N slaves create spends its CPU and its time: one direct
 * parallel start, one cold create (a fresh sched and local cluster) and one
 * warm create, each with the CPU-seconds of every process kind (read from
 * /proc/<pid>/stat of the whole process tree of this program, sampled every
 * 50 ms, so a process that lived only between two samples is missed, and
 * each process's figure is in 10 ms ticks, rounded down: next to the
 * creates, the exact total of bench/_cpu.ts shows how much that loses), and
 * for the creates a timeline of the slaves (ms from the POST, from the
 * scheduler, executor and redis-server logs) and the master's BGSAVE forks.
 *
 *     deno run -A bench/create_profile.ts [slaves] [distribution]
 *     deno run -A bench/create_profile.ts singles [count]
 *
 * The second form profiles the singles benchmark instead: `count` redis-servers
 * started directly, then a warm create of `count` single instances at once
 * (each with its proxy task), with the CPU-seconds by process kind and when
 * each step of the singles happened (first / median / last, ms from the
 * first POST, from the scheduler's log).
 *
 * Not a benchmark (no ratio, no goal; `deno task bench --only create` is
 * the one): a diagnosis to read next to it. Linux only.
 *
 * @module
 */
import {
  command,
  create,
  destroy,
  executorLogs,
  portBlock,
  sleep,
  startMrRedis,
  startRedis,
  until,
  waitStatusRunning,
} from "./_harness.ts";
import { RedisClient } from "../lib/redis/client.ts";

const TICKS = 100; // USER_HZ on Linux

type Kind = "bench" | "sched" | "local cluster" | "executor" | "redis-server" | "other";

interface Proc {
  kind: Kind;
  cpu: number;
}

/** The CPU-seconds of every process under this one, kept after they end. */
class CpuSampler {
  readonly seen = new Map<number, Proc>();
  #running = true;
  readonly #loop: Promise<void>;

  constructor() {
    this.#loop = (async () => {
      while (this.#running) {
        this.sample();
        await sleep(50);
      }
    })();
  }

  /** Reads the tree once. */
  sample(): void {
    const all = new Map<number, { ppid: number; cpu: number; comm: string }>();
    for (const entry of Deno.readDirSync("/proc")) {
      const pid = Number(entry.name);
      if (!pid) continue;
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
        const close = text.lastIndexOf(")");
        const fields = text.slice(close + 2).split(" ");
        all.set(pid, {
          ppid: Number(fields[1]),
          cpu: (Number(fields[11]) + Number(fields[12])) / TICKS,
          comm: text.slice(text.indexOf("(") + 1, close),
        });
      } catch { /* gone */ }
    }
    const mine = new Set([Deno.pid]);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, p] of all) {
        if (!mine.has(pid) && mine.has(p.ppid)) (mine.add(pid), grew = true);
      }
    }
    for (const pid of mine) {
      const p = all.get(pid)!;
      const kind = pid === Deno.pid ? "bench" : kindOf(pid, p.comm);
      const known = this.seen.get(pid);
      if (!known) this.seen.set(pid, { kind, cpu: p.cpu });
      else {
        known.cpu = p.cpu;
        // A fresh child is a copy of its parent (an executor) until it execs redis-server.
        if (kind === "redis-server" || known.kind === "other") known.kind = kind;
      }
    }
  }

  /** CPU-seconds used per kind since `before` (a {@linkcode CpuSampler.snapshot}). */
  since(before: Map<number, number>): Map<Kind, { cpu: number; count: number }> {
    this.sample();
    const out = new Map<Kind, { cpu: number; count: number }>();
    for (const [pid, p] of this.seen) {
      const used = p.cpu - (before.get(pid) ?? 0);
      if (used <= 0) continue;
      const row = out.get(p.kind) ?? { cpu: 0, count: 0 };
      row.cpu += used;
      row.count++;
      out.set(p.kind, row);
    }
    return out;
  }

  snapshot(): Map<number, number> {
    this.sample();
    return new Map([...this.seen].map(([pid, p]) => [pid, p.cpu]));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

function kindOf(pid: number, comm: string): Kind {
  if (comm.startsWith("redis")) return "redis-server";
  let cmd = "";
  try {
    cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch { /* gone */ }
  if (cmd.includes("cmd/sched.ts")) return "sched";
  if (cmd.includes("cmd/mesos_local.ts")) return "local cluster";
  if (cmd.includes("cmd/executor.ts")) return "executor";
  return "other";
}

function cpuLine(what: string, seconds: number, used: Map<Kind, { cpu: number; count: number }>) {
  const total = [...used.values()].reduce((a, b) => a + b.cpu, 0);
  const parts = [...used].sort((a, b) => b[1].cpu - a[1].cpu)
    .map(([kind, r]) => `${kind} ${r.cpu.toFixed(2)}${r.count > 1 ? ` (${r.count})` : ""}`);
  console.log(
    `${what}: ${seconds.toFixed(3)} s, ${total.toFixed(2)} CPU-s: ${parts.join(", ")}`,
  );
}

/** The direct parallel start of the benchmark, its master logging to a file (to count forks). */
async function direct(slaves: number, dir: string): Promise<{ seconds: number; forks: number }> {
  const block = portBlock(slaves + 1);
  const started = performance.now();
  const master = startRedis(dir, block.ports[0]!, [
    "--maxmemory",
    "10mb",
    "--logfile",
    `${dir}/direct-master.log`,
  ]);
  const replicas = block.ports.slice(1).map((port) =>
    startRedis(dir, port, ["--maxmemory", "10mb", "--replicaof", "127.0.0.1", String(master.port)])
  );
  const redis = new RedisClient({ port: master.port, timeoutMs: 2000 });
  try {
    await until(`${slaves} replicas online`, async () => {
      const text = String(await redis.call("INFO", ["replication"]));
      return (text.match(/state=online/g) ?? []).length >= slaves;
    }, 120_000);
    const seconds = (performance.now() - started) / 1000;
    const log = await Deno.readTextFile(`${dir}/direct-master.log`);
    return { seconds, forks: (log.match(/Starting BGSAVE/g) ?? []).length };
  } finally {
    redis.close();
    for (const r of [master, ...replicas]) r.kill();
    await Promise.allSettled([master, ...replicas].map((r) => r.process.status));
    block.release();
  }
}

/** ms since the epoch of an ISO-stamped log line, or of a redis-server log line. */
function stampOf(line: string): number | undefined {
  const iso = Date.parse(line.slice(0, 24));
  if (Number.isFinite(iso) && /^\d{4}-/.test(line)) return iso;
  const m = line.match(/(\d\d) (\w\w\w) (\d{4}) (\d\d:\d\d:\d\d\.\d{3})/);
  if (!m) return undefined;
  const at = Date.parse(`${m[2]} ${m[1]} ${m[3]} ${m[4]} UTC`);
  return Number.isFinite(at) ? at : undefined;
}

const STEPS: [string, RegExp][] = [
  ["launched (sched)", /Launching \S+\.(p\d+)\.1 /],
  ["TASK_STARTING (executor)", /Task \S+\.(p\d+)\.1: TASK_STARTING/],
  ["redis-server started", /Redis is starting/],
  ["listening", /Ready to accept connections/],
  ["answered PING (executor)", /Task \S+\.(p\d+)\.1: redis-server pid/],
  ["sync started", /MASTER <-> REPLICA sync started/],
  ["sync done", /sync: Finished with success/],
  ["TASK_RUNNING (executor)", /Task \S+\.(p\d+)\.1: TASK_RUNNING/],
  ["RUNNING (sched)", /Task \S+\.(p\d+)\.1 is RUNNING/],
];

/** Copies the redis-server logs of the data dirs under `root` (before DELETE removes them). */
async function redisLogs(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path).catch(() => {});
      else if (entry.name === "redis-server.log") {
        const proc = dir.match(/-(p\d+)$/)?.[1];
        if (proc) out.set(proc, await Deno.readTextFile(path).catch(() => ""));
      }
    }
  };
  await walk(root).catch(() => {});
  return out;
}

function timeline(
  name: string,
  posted: number,
  sched: string,
  executors: string,
  logs: Map<string, string>,
): void {
  const at = new Map<string, Map<string, number>>();
  const note = (proc: string, step: string, t: number) => {
    const row = at.get(proc) ?? new Map<string, number>();
    if (!row.has(step)) row.set(step, t - posted);
    at.set(proc, row);
  };
  for (const text of [sched, executors]) {
    for (const line of text.split("\n")) {
      if (!line.includes(` ${name}.`)) continue;
      for (const [step, pattern] of STEPS) {
        const m = line.match(pattern);
        const t = m?.[1] ? stampOf(line) : undefined;
        if (t !== undefined) note(m![1]!, step, t);
      }
    }
  }
  let forks = 0;
  for (const [proc, text] of logs) {
    for (const line of text.split("\n")) {
      if (/Starting BGSAVE/.test(line)) forks++;
      for (const [step, pattern] of STEPS) {
        if (!pattern.test(line) || pattern.source.includes("(p")) continue;
        const t = stampOf(line);
        if (t !== undefined) note(proc, step, t);
      }
    }
  }
  const master = sched.match(new RegExp(`Launching ${name}\\.(p\\d+)\\.1 \\(master\\)`))?.[1];
  console.log(
    `  ${name}: the slaves' steps, ms after the POST (first / median / last of ${
      at.size - (master ? 1 : 0)
    })`,
  );
  for (const [step] of STEPS) {
    const values = [...at].filter(([p]) => p !== master).map(([, row]) => row.get(step))
      .filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    if (values.length === 0) continue;
    const mid = values[Math.floor(values.length / 2)]!;
    const m = master ? at.get(master)?.get(step) : undefined;
    console.log(
      `    ${step.padEnd(26)} ${String(values[0]).padStart(6)} ${String(mid).padStart(6)} ${
        String(values.at(-1)).padStart(6)
      }${m !== undefined ? `   (master ${m})` : ""}`,
    );
  }
  const running = sched.split("\n").find((l) => l.includes(`Instance ${name} is RUNNING`));
  const t = running ? stampOf(running) : undefined;
  console.log(
    `    instance RUNNING at ${
      t !== undefined ? t - posted : "?"
    } ms; the master forked ${forks} BGSAVE(s) for the full syncs`,
  );
}

async function profiledCreate(
  mr: Awaited<ReturnType<typeof startMrRedis>>,
  sampler: CpuSampler,
  name: string,
  slaves: number,
  distribution: number,
): Promise<void> {
  const before = sampler.snapshot();
  const kernelBefore = mr.cpu?.seconds();
  const posted = Date.now();
  const t = performance.now();
  await create(mr.api, name, 10, slaves, distribution);
  await waitStatusRunning(mr.api, name);
  const seconds = (performance.now() - t) / 1000;
  cpuLine(`${name} create`, seconds, sampler.since(before));
  if (kernelBefore !== undefined) {
    // /proc/<pid>/stat counts in 10 ms ticks, rounded down per process: with
    // dozens of short-lived redis-servers the sampled total falls short.
    console.log(
      `  the kernel's total for the sched, the local cluster and all they started (bench/_cpu.ts): ${
        (mr.cpu!.seconds() - kernelBefore).toFixed(2)
      } CPU-s`,
    );
  }
  const logs = await redisLogs(`${mr.dir}/local`);
  const sched = await Deno.readTextFile(`${mr.dir}/sched.log`);
  timeline(name, posted, sched, await executorLogs(`${mr.dir}/local`), logs);
  await destroy(mr.api, name);
}

const SINGLE_STEPS: [string, RegExp][] = [
  ["master launched", /Launching (\S+)\.p\d+\.1 \(master\)/],
  ["proxy launched", /Launching proxy (\S+)\.x\d+\./],
  ["spawned (executor)", /Task (\S+)\.p\d+\.1: redis-server pid/],
  ["TASK_RUNNING (executor)", /Task (\S+)\.p\d+\.1: TASK_RUNNING/],
  ["master RUNNING", /Task (\S+)\.p\d+\.1 is RUNNING/],
  ["proxy RUNNING", /Proxy task (\S+)\.x\d+\.\S+ is RUNNING/],
  ["proxy told", /Telling proxy (\S+)\.x\d+\./],
  ["instance RUNNING", /Instance (\S+) is RUNNING/],
];

const REDIS_STEPS: [string, RegExp][] = [
  ["redis: starting", /Redis is starting/],
  ["redis: ready", /Ready to accept connections/],
];

/** `count` single instances created at once (warm: a first round starts the executors). */
async function profileSingles(count: number, sampler: CpuSampler, dir: string): Promise<void> {
  const block = portBlock(count);
  let before = sampler.snapshot();
  let t = performance.now();
  const servers = block.ports.map((port) => startRedis(dir, port, ["--maxmemory", "10mb"]));
  try {
    await Promise.all(
      servers.map((s) => until(`server ${s.port}`, () => command(s.port, ["PING"]))),
    );
    cpuLine(
      `${count} redis-servers started directly`,
      (performance.now() - t) / 1000,
      sampler.since(before),
    );
  } finally {
    for (const s of servers) s.kill();
    await Promise.allSettled(servers.map((s) => s.process.status));
    block.release();
  }
  const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
  try {
    for (const round of ["cold", "warm"]) {
      const names = Array.from({ length: count }, (_, i) => `${round}${i}`);
      before = sampler.snapshot();
      const posted = Date.now();
      t = performance.now();
      await Promise.all(names.map((n) => create(mr.api, n, 10, 0)));
      await Promise.all(names.map((n) => waitStatusRunning(mr.api, n)));
      cpuLine(`${round}: ${count} singles`, (performance.now() - t) / 1000, sampler.since(before));
      await sleep(300);
      const at = new Map<string, number[]>();
      const logs = (await Deno.readTextFile(`${mr.dir}/sched.log`)) + "\n" +
        (await executorLogs(`${mr.dir}/local`));
      for (const line of logs.split("\n")) {
        for (const [step, pattern] of SINGLE_STEPS) {
          const m = line.match(pattern);
          const s = m?.[1]?.startsWith(round) ? stampOf(line) : undefined;
          if (s !== undefined && s >= posted) at.set(step, [...(at.get(step) ?? []), s - posted]);
        }
      }
      const walk = async (dir: string) => {
        for await (const entry of Deno.readDir(dir)) {
          const path = `${dir}/${entry.name}`;
          if (entry.isDirectory) await walk(path).catch(() => {});
          else if (entry.name === "redis-server.log" && dir.includes(`/${round}`)) {
            for (const line of (await Deno.readTextFile(path)).split("\n")) {
              for (const [step, pattern] of REDIS_STEPS) {
                const s = pattern.test(line) ? stampOf(line) : undefined;
                if (s !== undefined) at.set(step, [...(at.get(step) ?? []), s - posted]);
              }
            }
          }
        }
      };
      await walk(`${mr.dir}/local`).catch(() => {});
      for (const [step] of [...REDIS_STEPS, ...SINGLE_STEPS]) {
        const v = (at.get(step) ?? []).sort((a, b) => a - b);
        if (v.length === 0) continue;
        console.log(
          `    ${step.padEnd(18)} ${String(v[0]).padStart(6)} ${
            String(v[v.length >> 1]).padStart(6)
          } ${String(v.at(-1)).padStart(6)}  (${v.length})`,
        );
      }
      await Promise.all(names.map((n) => destroy(mr.api, n)));
    }
  } finally {
    await mr.stop();
  }
}

if (import.meta.main && Deno.args[0] === "singles") {
  const sampler = new CpuSampler();
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-singles-profile-" });
  try {
    await profileSingles(Number(Deno.args[1] ?? 70), sampler, dir);
  } finally {
    await sampler.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
} else if (import.meta.main) {
  const slaves = Number(Deno.args[0] ?? 50);
  const distribution = Number(Deno.args[1] ?? 20);
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(", ");
  console.log(`1 master + ${slaves} slaves, Distribution ${distribution}; load ${load()}`);
  const sampler = new CpuSampler();
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-create-profile-" });
  try {
    const before = sampler.snapshot();
    const d = await direct(slaves, dir);
    cpuLine("direct parallel start", d.seconds, sampler.since(before));
    console.log(`  the master forked ${d.forks} BGSAVE(s) for the full syncs`);
    const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
    try {
      await profiledCreate(mr, sampler, "cold", slaves, distribution);
      await sleep(500);
      await profiledCreate(mr, sampler, "warm", slaves, distribution);
    } finally {
      await mr.stop();
    }
  } finally {
    await sampler.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    console.log(`load ${load()}`);
  }
}
