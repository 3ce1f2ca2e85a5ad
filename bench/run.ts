/**
 * The benchmarks: creation, failover, API and scale, each against a baseline
 * measured in the same run. Writes `bench/RESULTS.md` and `bench/results.json`.
 *
 *     deno task bench            # the full run (several minutes)
 *     deno task bench --quick    # a smoke run with small sizes and one sample
 *     deno task bench --only proxy   # only the proxy figures (their section of RESULTS.md)
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  baselineDaemonized,
  baselineMasterSlaves,
  buildSlowFsyncShim,
  checkShim,
  coldCreate,
  type CreatePhases,
  executorStartup,
  mrCreateMasterSlaves,
} from "./_create.ts";
import {
  client,
  command,
  create,
  destroy,
  freePort,
  inSync,
  median,
  type MrRedis,
  redisPidsOnPort,
  rssBytes,
  sleep,
  startMrRedis,
  startRedis,
  status,
  until,
} from "./_harness.ts";
import { proxyFailover, type ProxyFailoverSample, proxyThroughput } from "./_proxy.ts";

interface Result {
  name: string;
  goal: string;
  unit: string;
  baselineName: string;
  baseline: number[];
  measured: number[];
  /** measured median / baseline median. */
  ratio: number;
  met: boolean;
  notes: string[];
}

const OUT = new URL("./", import.meta.url).pathname;

function log(line: string) {
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

function ratioOf(measured: number[], baseline: number[]): number {
  return median(measured) / median(baseline);
}

async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: `mr-redis-bench-${prefix}-` });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Baseline: `count` single servers started directly, until each answers PING. */
export async function baselineSingles(count: number): Promise<number> {
  return await withTempDir("singles", async (dir) => {
    const started = performance.now();
    const servers = Array.from(
      { length: count },
      () => startRedis(dir, freePort(), ["--maxmemory", "10mb"]),
    );
    try {
      await Promise.all(
        servers.map((s) => until(`server ${s.port}`, () => command(s.port, ["PING"]))),
      );
      return (performance.now() - started) / 1000;
    } finally {
      for (const s of servers) s.kill();
      await Promise.allSettled(servers.map((s) => s.process.status));
    }
  });
}

async function mrCreateSingles(mr: MrRedis, prefix: string, count: number) {
  const started = performance.now();
  const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  await Promise.all(names.map((n) => create(mr.api, n, 10, 0)));
  await until(
    `${count} singles RUNNING`,
    async () => {
      const list: { Name: string; Status: string }[] = await (await fetch(`${mr.api}/v1/STATUS`))
        .json();
      const running = new Set(list.filter((i) => i.Status === "RUNNING").map((i) => i.Name));
      return names.every((n) => running.has(n));
    },
    300_000,
    50,
  );
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(names.map((n) => destroy(mr.api, n)));
  return seconds;
}

interface FailoverSample {
  seconds: number;
  lost: number;
  acked: number;
}

/** Writes `keys` keys, each acknowledged by `WAIT 2`; returns the acknowledged ones. */
async function writeAcked(
  port: number,
  keys: number,
  host = "127.0.0.1",
  password?: string,
): Promise<string[]> {
  const redis = client(port, host, password);
  await redis.connect();
  const acked: string[] = [];
  try {
    for (let i = 0; i < keys; i++) {
      const key = `k${i}`;
      await redis.set(key, `v${i}`);
      const replicas = Number(await redis.call("WAIT", "2", "1000"));
      if (replicas >= 2) acked.push(key);
    }
  } finally {
    redis.disconnect();
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
  await redis.connect();
  try {
    let present = 0;
    for (let i = 0; i < keys.length; i += 100) {
      const values = await redis.mget(...keys.slice(i, i + 100));
      present += values.filter((v) => v !== null).length;
    }
    return present;
  } finally {
    redis.disconnect();
  }
}

async function tryWrite(port: number, host = "127.0.0.1", password?: string): Promise<boolean> {
  try {
    return (await command(port, ["SET", "failover-probe", String(Date.now())], host, password)) ===
      "OK";
  } catch {
    return false;
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
          return port !== master.port && await tryWrite(port) ? port : 0;
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

async function mrFailover(mr: MrRedis, name: string, keys: number): Promise<FailoverSample> {
  await create(mr.api, name, 50, 2);
  const before = await until(`${name} RUNNING`, async () => {
    const s = await status(mr.api, name);
    return s?.Status === "RUNNING" ? s : undefined;
  }, 120_000);
  const oldPort = Number(before.Master!.Port);
  const password: string | undefined =
    (await (await fetch(`${mr.api}/v1/CREDENTIALS/${name}`)).json()).Password ?? undefined;
  const acked = await writeAcked(oldPort, keys, before.Master!.IP, password);
  const pids = await redisPidsOnPort(oldPort);
  if (pids.length !== 1) {
    throw new Error(`Expected one redis-server on port ${oldPort}, found ${pids.length}`);
  }
  const killed = performance.now();
  Deno.kill(pids[0]!, "SIGKILL");
  const next = await until(
    "a new writable master",
    async () => {
      const s = await status(mr.api, name);
      const m = s?.Master;
      if (!m || Number(m.Port) === oldPort) return undefined;
      return await tryWrite(Number(m.Port), m.IP, password) ? m : undefined;
    },
    60_000,
    10,
  );
  const seconds = (performance.now() - killed) / 1000;
  const present = await countPresent(Number(next.Port), acked, next.IP, password);
  await destroy(mr.api, name);
  return { seconds, lost: acked.length - present, acked: acked.length };
}

function toMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return NaN;
  const n = Number(match[1]);
  return match[2] === "us" ? n / 1000 : match[2] === "s" ? n * 1000 : n;
}

/** Requests per second and latencies of `url` under `connections` connections for `ms`, measured by wrk. */
async function load(url: string, connections: number, ms: number) {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", `-c${connections}`, `-d${Math.round(ms / 1000)}s`, "--latency", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`wrk failed: ${new TextDecoder().decode(out.stderr)}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(text)?.[1] ?? "");
  const p99 = toMs(/\s99%\s+(\S+)/.exec(text)?.[1] ?? "");
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const socketErrors = /Socket errors:.*/.exec(text)?.[0];
  return { rps, p50, p99, errors: non2xx + (socketErrors ? 1 : 0), raw: text };
}

/** A process serving the same bytes from memory: the API baseline. */
async function staticServer(body: string) {
  const port = freePort();
  const file = await Deno.makeTempFile({ prefix: "mr-redis-bench-body-" });
  await Deno.writeTextFile(file, body);
  const code = `const body = Deno.readFileSync(${JSON.stringify(file)});
Deno.serve({ port: ${port}, hostname: "127.0.0.1", onListen() {} }, () =>
  new Response(body, { headers: { "content-type": "application/json" } }));`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}/`;
  await until("the static baseline server", async () => (await fetch(url)).ok, 30_000, 50);
  return {
    url,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(file);
    },
  };
}

function machine(): string {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ??
    "unknown CPU";
  const mem = Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s*(\d+)/)?.[1];
  return `${navigator.hardwareConcurrency} × ${cpu}, ${
    Math.round(Number(mem) / 1048576)
  } GiB, ${Deno.build.os} ${Deno.build.arch}, Deno ${Deno.version.deno}`;
}

function fmt(n: number, digits = 3): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

function markdown(results: Result[], quick: boolean, runs: number): string {
  const lines = [
    "# Benchmark results",
    "",
    `Run: ${new Date().toISOString()}${
      quick ? " (quick mode: small sizes, not the committed figures)" : ""
    }; ${runs} run(s) per figure, medians.`,
    `Machine: ${machine()}; load average at the end ${
      Deno.loadavg().map((x) => x.toFixed(1)).join(", ")
    } (1, 5, 15 min; the machine may be shared).`,
    "",
    "| benchmark | baseline | baseline median | mr-redis median | ratio | goal | met |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.name} | ${r.baselineName} | ${fmt(median(r.baseline))} ${r.unit} | ${
        fmt(median(r.measured))
      } ${r.unit} | ${fmt(r.ratio, 2)} | ${r.goal} | ${r.met ? "yes" : "**no**"} |`,
    );
  }
  lines.push("", "## Notes", "");
  for (const r of results) for (const n of r.notes) lines.push(`- ${r.name}: ${n}`);
  lines.push("", "Every sample is in `bench/results.json`.", "");
  return lines.join("\n");
}

/** The phases of one cold create, as lines for the notes. */
function phaseNotes(p: CreatePhases): string {
  const step = (from: number, to: number) => fmt(to - from, 0);
  return [
    `POST → first task launched ${fmt(p.firstLaunch, 0)} ms`,
    `→ last launched +${step(p.firstLaunch, p.lastLaunch)}`,
    `→ last of the 3 executors up (spawned by its agent, SUBSCRIBE sent) +${
      step(p.lastLaunch, p.executorsUp)
    }`,
    `→ last redis-server started +${step(p.executorsUp, p.lastRedisStarted)}`,
    `→ last TASK_RUNNING (slave synced) +${step(p.lastRedisStarted, p.lastTaskRunning)}`,
    `→ instance RUNNING +${step(p.lastTaskRunning, p.instanceRunning)}`,
    `→ seen by the client +${step(p.instanceRunning, p.clientSaw)}`,
    `(total ${fmt(p.clientSaw, 0)} ms)`,
  ].join(" ");
}

/**
 * 1 master + N slaves: warm creates on `mr` (its executors already up),
 * cold creates (a fresh sched and cluster per sample), cold creates with a
 * slow fsync, and the executor start-up, against direct starts in this run.
 */
async function createBenchmarks(
  mr: MrRedis,
  size: { slaves: number; distribution: number },
  runs: number,
): Promise<Result[]> {
  const n = size.slaves;
  const what = `1 master + ${n} slaves (Distribution ${size.distribution}, 3 agents)`;
  const parallel: number[] = [];
  const daemonized: number[] = [];
  const warm: number[] = [];
  // A first create starts the executors; the warm samples follow it closely
  // (executors leave after 30 s without a task).
  log(
    `warm-up create of 1+${n}: ${
      fmt(await mrCreateMasterSlaves(mr, "warmup", n, size.distribution))
    } s`,
  );
  for (let i = 0; i < runs; i++) {
    parallel.push(await baselineMasterSlaves(n));
    daemonized.push(await baselineDaemonized(n));
    warm.push(await mrCreateMasterSlaves(mr, `ms${i}`, n, size.distribution));
    log(
      `1+${n}: direct parallel ${fmt(parallel.at(-1)!)} s, daemonized ${
        fmt(daemonized.at(-1)!)
      } s, warm ${fmt(warm.at(-1)!)} s`,
    );
  }
  const cold: { seconds: number; phases: CreatePhases }[] = [];
  for (let i = 0; i < runs; i++) {
    cold.push(await coldCreate(n, size.distribution));
    log(`1+${n} cold: ${fmt(cold.at(-1)!.seconds)} s`);
  }
  const shimDir = await Deno.makeTempDir({ prefix: "mr-redis-bench-shim-" });
  const slow: number[] = [];
  let shimMs = NaN;
  try {
    const shim = await buildSlowFsyncShim(shimDir);
    shimMs = await checkShim(shim, 20);
    log(`slow-disk shim: one SQLite commit takes ${fmt(shimMs, 1)} ms under it`);
    for (let i = 0; i < runs; i++) {
      const c = await coldCreate(n, size.distribution, {
        schedEnv: { LD_PRELOAD: shim, SLOW_FSYNC_MS: "20" },
      });
      slow.push(c.seconds);
      log(`1+${n} cold, slow fsync: ${fmt(c.seconds)} s`);
    }
  } finally {
    await Deno.remove(shimDir, { recursive: true }).catch(() => {});
  }
  const start = await executorStartup(Math.max(5, runs));
  log(
    `executor start-up: ${fmt(median(start.executor), 0)} ms (bare Deno ${
      fmt(median(start.bare), 0)
    } ms)`,
  );

  const coldSeconds = cold.map((c) => c.seconds);
  const bySpeed = [...cold].sort((a, b) => a.seconds - b.seconds);
  const medianCold = bySpeed[Math.floor(bySpeed.length / 2)]!;
  const list = (xs: number[], digits = 3) => xs.map((x) => fmt(x, digits)).join(", ");
  const baselineName = `${
    n + 1
  } redis-servers started directly in parallel (no --daemonize), until in sync`;
  const directNote = `direct starts in this run: parallel ${list(parallel)} s (median ${
    fmt(median(parallel))
  }); daemonized one after another ${list(daemonized)} s (median ${fmt(median(daemonized))})`;
  const coldRatio = ratioOf(coldSeconds, parallel);
  const warmRatio = ratioOf(warm, parallel);
  const slowRatio = median(slow) / median(coldSeconds);
  const execOwn = median(start.executor) - median(start.bare);
  return [
    {
      name: `create ${what}, cold: a fresh sched, executors not yet running`,
      goal: "≤ 1.5× the parallel direct start",
      unit: "s",
      baselineName,
      baseline: parallel,
      measured: coldSeconds,
      ratio: coldRatio,
      met: coldRatio <= 1.5,
      notes: [
        `samples ${list(coldSeconds)} s; ${
          fmt(median(coldSeconds) / median(daemonized), 2)
        }× the daemonized start`,
        directNote,
        `phases of the median cold sample: ${phaseNotes(medianCold.phases)}`,
        "the original mr-redis took 14.3 s for 1+50 on its cluster",
      ],
    },
    {
      name: `create ${what}, warm: executors running`,
      goal: "≤ 1.2× the parallel direct start",
      unit: "s",
      baselineName,
      baseline: parallel,
      measured: warm,
      ratio: warmRatio,
      met: warmRatio <= 1.2,
      notes: [
        `samples ${list(warm)} s; ${
          fmt(median(warm) / median(daemonized), 2)
        }× the daemonized start`,
      ],
    },
    {
      name: `create ${what}, cold, every fsync of the scheduler 20 ms slower`,
      goal: "≤ 1.5× the cold create on the normal disk",
      unit: "s",
      baselineName: "the cold create above (normal disk)",
      baseline: coldSeconds,
      measured: slow,
      ratio: slowRatio,
      met: slowRatio <= 1.5,
      notes: [
        `samples ${
          list(slow)
        } s; an LD_PRELOAD shim built with cc sleeps 20 ms in fsync/fdatasync (one SQLite commit took ${
          fmt(shimMs, 1)
        } ms under it); the store writes of one event are one commit`,
      ],
    },
    {
      name: "executor start-up: spawn → first SUBSCRIBE at the agent",
      goal: "< 100 ms more than a bare Deno program making the same request",
      unit: "ms",
      baselineName: "a Deno program that only POSTs to the agent endpoint",
      baseline: start.bare,
      measured: start.executor,
      ratio: median(start.executor) / median(start.bare),
      met: execOwn < 100,
      notes: [
        `samples ${list(start.executor, 0)} ms against ${
          list(start.bare, 0)
        } ms: the executor's own start-up ${
          fmt(execOwn, 0)
        } ms (JSON codec, no npm package loaded; bench/executor_startup.ts)`,
      ],
    },
  ];
}

/** The failover seen through `mrr proxy`, `runs` times, as result rows. */
async function proxyFailoverRows(mr: MrRedis, runs: number): Promise<Result[]> {
  const got: ProxyFailoverSample[] = [];
  for (let i = 0; i < runs; i++) {
    got.push(await proxyFailover(mr, `pf${i}`));
    const g = got.at(-1)!;
    log(
      `failover through mrr proxy: first write ${
        fmt(g.firstWriteMs, 0)
      } ms after SIGKILL (${g.reconnects} reconnect), new master in STATUS at ${
        fmt(g.promotedMs, 0)
      } ms, last old connection closed at ${fmt(g.lastOldClosedMs, 0)} ms`,
    );
  }
  const first = got.map((g) => g.firstWriteMs / 1000);
  return [{
    name:
      "failover through mrr proxy: SIGKILL of the master → first successful write through the proxy",
    goal: "< 1 s, at most one reconnect",
    unit: "s",
    baselineName: "the new master in STATUS (polled every 10 ms)",
    baseline: got.map((g) => g.promotedMs / 1000),
    measured: first,
    ratio: median(first) / median(got.map((g) => g.promotedMs / 1000)),
    met: median(first) < 1 && got.every((g) => g.reconnects <= 1),
    notes: [
      `samples ${first.map((x) => fmt(x)).join(", ")} s; reconnects ${
        got.map((g) => g.reconnects).join(", ")
      }`,
      `SIGKILL → last of 20 idle connections through the proxy closed: ${
        got.map((g) => fmt(g.lastOldClosedMs, 0)).join(", ")
      } ms, against the promotion visible in STATUS at ${
        got.map((g) => fmt(g.promotedMs, 0)).join(", ")
      } ms: the proxy closes them when the old master's connection drops, before the promotion; when the scheduler names a new master while the old one still answers, setMaster closes them at once (tests/proxy_test.ts)`,
    ],
  }];
}

/** Replaces the proxy section of RESULTS.md (or appends it) with `md`. */
async function updateProxySection(md: string): Promise<void> {
  const file = `${OUT}RESULTS.md`;
  const current = await Deno.readTextFile(file).catch(() => "# Benchmark results\n");
  const marker = "\n## Proxy (deno task bench --only proxy)\n";
  const at = current.indexOf(marker);
  const before = at >= 0 ? current.slice(0, at) : current.trimEnd() + "\n";
  const section = md.replace(/^# Benchmark results\n/, "").replace(
    "Every sample is in `bench/results.json`.",
    "Every sample is in the notes above.",
  );
  await Deno.writeTextFile(file, `${before}${marker}\n${section}`);
}

/** Runs every benchmark; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      only: { type: "string" },
    },
  });
  if (values.only !== undefined && values.only !== "proxy" && values.only !== "create") {
    console.error(`Option "--only" must be "proxy" or "create", but got "${values.only}"`);
    return 2;
  }
  const quick = values.quick!;
  const runs = values.runs ? Number(values.runs) : quick ? 1 : 3;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`Option "--runs" must be a whole number above 0, but got "${values.runs}"`);
    return 2;
  }
  const size = quick
    ? { slaves: 10, distribution: 4, singles: 10, keys: 100, api: 20, scale: 30, loadMs: 2000 }
    : { slaves: 50, distribution: 20, singles: 70, keys: 500, api: 100, scale: 200, loadMs: 5000 };
  const results: Result[] = [];

  if (values.only === "create") {
    const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-" });
    const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
    try {
      results.push(...await createBenchmarks(mr, size, runs));
    } finally {
      await mr.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    const md = markdown(results, quick, runs);
    await Deno.writeTextFile(`${OUT}RESULTS.create${quick ? ".quick" : ""}.md`, md);
    console.log(md);
    return 0;
  }

  // Proxy throughput first, on a quiet machine (no cluster running yet).
  log("proxy throughput: direct, nutcracker, HAProxy, mr-redis proxy");
  results.push(
    ...await proxyThroughput({ runs, requests: quick ? 20_000 : 100_000, log }),
  );
  if (values.only === "proxy") {
    const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-" });
    log(`starting the scheduler and a local cluster in ${dir}`);
    const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
    try {
      results.push(...await proxyFailoverRows(mr, runs));
    } finally {
      await mr.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
    const md = markdown(results, quick, runs);
    if (quick) await Deno.writeTextFile(`${OUT}RESULTS.proxy.quick.md`, md);
    else await updateProxySection(md);
    console.log(md);
    return 0;
  }

  let failure: string | undefined;
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-" });
  log(`starting the scheduler and a local cluster in ${dir}`);
  const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
  try {
    // 1. 1 master + N slaves: warm, cold, on a slow disk, against direct starts.
    results.push(...await createBenchmarks(mr, size, runs));
    // 2. N singles at once.
    {
      const base: number[] = [];
      const got: number[] = [];
      for (let i = 0; i < runs; i++) {
        base.push(await baselineSingles(size.singles));
        got.push(await mrCreateSingles(mr, `s${i}x`, size.singles));
        log(
          `${size.singles} singles: baseline ${fmt(base.at(-1)!)} s, mr-redis ${
            fmt(got.at(-1)!)
          } s`,
        );
      }
      const ratio = ratioOf(got, base);
      results.push({
        name: `create ${size.singles} single instances at once`,
        goal: "≤ 1.5× baseline",
        unit: "s",
        baselineName: `${size.singles} redis-servers started directly`,
        baseline: base,
        measured: got,
        ratio,
        met: ratio <= 1.5,
        notes: [
          `samples ${got.map((x) => fmt(x)).join(", ")} s against ${
            base.map((x) => fmt(x)).join(", ")
          } s`,
        ],
      });
    }
    // 3. Failover.
    {
      const base: FailoverSample[] = [];
      const got: FailoverSample[] = [];
      for (let i = 0; i < runs; i++) {
        base.push(await baselineSentinelFailover(size.keys));
        got.push(await mrFailover(mr, `fo${i}`, size.keys));
        log(
          `failover: sentinel ${fmt(base.at(-1)!.seconds)} s, mr-redis ${
            fmt(got.at(-1)!.seconds)
          } s, lost ${got.at(-1)!.lost}`,
        );
      }
      const seconds = got.map((s) => s.seconds);
      const ratio = ratioOf(seconds, base.map((s) => s.seconds));
      const lost = got.reduce((n, s) => n + s.lost, 0);
      results.push({
        name: "failover: SIGKILL of the master redis-server → first write on the new master",
        goal: "< 1 s, ≤ 0.5× Sentinel, 0 acknowledged writes lost",
        unit: "s",
        baselineName: "redis-sentinel, down-after 1000 ms, quorum 1",
        baseline: base.map((s) => s.seconds),
        measured: seconds,
        ratio,
        met: median(seconds) < 1 && ratio <= 0.5 && lost === 0,
        notes: [
          `samples ${seconds.map((x) => fmt(x)).join(", ")} s against Sentinel's ${
            base.map((x) => fmt(x.seconds)).join(", ")
          } s`,
          `WAIT-acknowledged writes lost: mr-redis ${lost} of ${
            got.reduce((n, s) => n + s.acked, 0)
          }; Sentinel ${base.reduce((n, s) => n + s.lost, 0)} of ${
            base.reduce((n, s) => n + s.acked, 0)
          }`,
        ],
      });
    }
    // 3b. Failover seen through mrr proxy.
    results.push(...await proxyFailoverRows(mr, runs));
    // 4. API with N instances.
    {
      const names = Array.from({ length: size.api }, (_, i) => `api${i}`);
      await Promise.all(names.map((n) => create(mr.api, n, 10, 0)));
      await until(
        "API instances RUNNING",
        async () => {
          const list: { Status: string }[] = await (await fetch(`${mr.api}/v1/STATUS`)).json();
          return list.filter((i) => i.Status === "RUNNING").length >= size.api;
        },
        300_000,
        200,
      );
      const one = await load(`${mr.api}/v1/STATUS/api0`, 16, size.loadMs);
      const all = await load(`${mr.api}/v1/STATUS`, 16, size.loadMs);
      const oneBody = await (await fetch(`${mr.api}/v1/STATUS/api0`)).text();
      const allBody = await (await fetch(`${mr.api}/v1/STATUS`)).text();
      const s1 = await staticServer(oneBody);
      const baseOne = await load(s1.url, 16, size.loadMs);
      await s1.stop();
      const s2 = await staticServer(allBody);
      const baseAll = await load(s2.url, 16, size.loadMs);
      await s2.stop();
      for (
        const [label, m, b] of [["GET /v1/STATUS/{name}", one, baseOne], [
          "GET /v1/STATUS",
          all,
          baseAll,
        ]] as const
      ) {
        const ratio = m.rps / b.rps;
        results.push({
          name: `${label} with ${size.api} instances (16 connections)`,
          goal: "≥ 0.25× the static baseline's requests/s, no errors",
          unit: "req/s",
          baselineName: "a Deno.serve process answering the same bytes (wrk, same settings)",
          baseline: [b.rps],
          measured: [m.rps],
          ratio,
          met: ratio >= 0.25 && m.errors === 0,
          notes: [
            `latency p50 ${fmt(m.p50, 2)} ms, p99 ${fmt(m.p99, 2)} ms (baseline p50 ${
              fmt(b.p50, 2)
            } ms, p99 ${fmt(b.p99, 2)} ms); errors ${m.errors}`,
          ],
        });
      }
      // 5. Scale: grow to the scale size and measure memory and latency.
      const extra = Array.from({ length: size.scale - size.api }, (_, i) => `scale${i}`);
      for (let i = 0; i < extra.length; i += 50) {
        await Promise.all(extra.slice(i, i + 50).map((n) => create(mr.api, n, 10, 0)));
      }
      await until(
        "scale instances RUNNING",
        async () => {
          const list: { Status: string }[] = await (await fetch(`${mr.api}/v1/STATUS`)).json();
          return list.filter((i) => i.Status === "RUNNING").length >= size.scale;
        },
        600_000,
        500,
      );
      await sleep(3000);
      const rss = rssBytes(mr.schedPid);
      const lat = await load(`${mr.api}/v1/STATUS`, 4, size.loadMs);
      const idle = new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "Deno.serve({port: 0, onListen() {}}, () => new Response('ok')); await new Promise(() => {})",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await sleep(1500);
      const idleRss = rssBytes(idle.pid);
      idle.kill("SIGKILL");
      await idle.status;
      results.push({
        name: `scheduler memory (RSS) with ${size.scale} single instances`,
        goal: "≤ 4× an idle Deno HTTP server",
        unit: "MiB",
        baselineName: "an idle Deno.serve process",
        baseline: [idleRss / 1048576],
        measured: [rss / 1048576],
        ratio: rss / idleRss,
        met: rss / idleRss <= 4,
        notes: [
          `GET /v1/STATUS with ${size.scale} instances: p50 ${fmt(lat.p50, 2)} ms, p99 ${
            fmt(lat.p99, 2)
          } ms, ${fmt(lat.rps, 0)} req/s (4 connections)`,
        ],
      });
      await Promise.all([...names, ...extra].map((n) => destroy(mr.api, n)));
    }
  } catch (error) {
    // Keep what was measured: the figures so far are written, with the failure.
    failure = (error as Error).message;
    log(`benchmark failed: ${failure}`);
  } finally {
    await mr.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  let md = markdown(results, quick, runs);
  if (failure) {
    md +=
      `\n**The run stopped early**: ${failure}. The figures above are the ones measured before.\n`;
  }
  const suffix = quick ? ".quick" : "";
  await Deno.writeTextFile(`${OUT}RESULTS${suffix}.md`, md);
  await Deno.writeTextFile(
    `${OUT}results${suffix}.json`,
    JSON.stringify({ machine: machine(), quick, runs, results }, null, 2) + "\n",
  );
  console.log(md);
  return failure ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
