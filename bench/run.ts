/**
 * The benchmarks: creation, failover, API and scale, each against a baseline
 * measured in the same run. Writes `bench/RESULTS.md` and `bench/results.json`.
 *
 *     deno task bench            # the full run (several minutes)
 *     deno task bench --quick    # a smoke run with small sizes and one sample
 *     deno task bench --only proxy   # only the proxy figures (their section of RESULTS.md)
 *     deno task bench --only create,failover   # some steps (RESULTS.create+failover.md)
 *
 * Steps: proxy, create, hosts, singles, failover, proxy-failover, cluster, api, scale. A
 * failed sample is left out of its row and named in the notes; a failed
 * step is a row saying why; the run goes on either way.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  baselineDaemonized,
  baselineMasterSlaves,
  baselineMasterSlavesMeasured,
  buildSlowFsyncShim,
  checkShim,
  coldCreate,
  type CreatePhases,
  executorStartup,
  type Measured,
  mrCreateMasterSlaves,
  mrCreateMasterSlavesMeasured,
  openRunningCluster,
} from "./_create.ts";
import { CpuGroup } from "./_cpu.ts";
import { floorStart } from "./_floor.ts";
import {
  baselineSentinelFailover,
  type FailoverPhases,
  type FailoverSample,
  mrFailover,
  type MrFailoverSample,
} from "./_failover.ts";
import {
  command,
  create,
  destroy,
  freePort,
  median,
  type MrRedis,
  portBlock,
  rssBytes,
  sleep,
  startMrRedis,
  startRedis,
  until,
} from "./_harness.ts";
import { proxyFailover, type ProxyFailoverSample, proxyThroughput } from "./_proxy.ts";
import { executorsUnder, hostsBenchUnavailable, startMrRedisOnHosts } from "./_hosts.ts";
import {
  directClusterCreate,
  directClusterFailover,
  mrClusterCreate,
  mrClusterFailover,
} from "./_cluster.ts";

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

/**
 * Baseline: `count` single servers started directly, until each answers
 * PING; with their CPU-seconds where a control group can be made.
 */
export async function baselineSingles(count: number): Promise<Measured> {
  const block = portBlock(count);
  const cpu = CpuGroup.open();
  return await withTempDir("singles", async (dir) => {
    const started = performance.now();
    const start = () => block.ports.map((port) => startRedis(dir, port, ["--maxmemory", "10mb"]));
    const servers = cpu ? cpu.startInside(start) : start();
    try {
      await Promise.all(
        servers.map((s) => until(`server ${s.port}`, () => command(s.port, ["PING"]))),
      );
      const seconds = (performance.now() - started) / 1000;
      return cpu ? { seconds, cpuSeconds: cpu.seconds() } : { seconds };
    } finally {
      for (const s of servers) s.kill();
      await Promise.allSettled(servers.map((s) => s.process.status));
    }
  }).finally(() => {
    cpu?.close();
    block.release();
  });
}

/** `count` singles created at once on `mr`, until all are RUNNING; deleted after. */
async function mrCreateSingles(mr: MrRedis, prefix: string, count: number): Promise<Measured> {
  const cpuBefore = mr.cpu?.seconds();
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
  const cpuSeconds = cpuBefore === undefined ? undefined : mr.cpu!.seconds() - cpuBefore;
  await Promise.all(names.map((n) => destroy(mr.api, n)));
  return cpuSeconds === undefined ? { seconds } : { seconds, cpuSeconds };
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

/** A figure to 3 (or `digits`) decimals; "—" when there is none (every sample failed). */
function fmt(n: number, digits = 3): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "—";
}

function withUnit(n: number, unit: string): string {
  return Number.isFinite(n) ? `${fmt(n)} ${unit}` : "— (no sample)";
}

function markdown(
  results: Result[],
  quick: boolean,
  runs: number,
  loadBefore: number[],
  proxyRounds?: number,
): string {
  const loads = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(", ");
  const lines = [
    "# Benchmark results",
    "",
    `Run: ${new Date().toISOString()}${
      quick ? " (quick mode: small sizes, not the committed figures)" : ""
    }; ${runs} run(s) per figure${
      proxyRounds === undefined ? "" : ` (proxy throughput: ${proxyRounds} rounds)`
    }, medians.`,
    `Machine: ${machine()}; load average at the start ${loads(loadBefore)}, at the end ${
      loads(Deno.loadavg())
    } (1, 5, 15 min; the machine may be shared).`,
    "",
    "| benchmark | baseline | baseline median | mr-redis median | ratio | goal | met |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const r of results) {
    lines.push(
      `| ${r.name} | ${r.baselineName} | ${withUnit(median(r.baseline), r.unit)} | ${
        withUnit(median(r.measured), r.unit)
      } | ${fmt(r.ratio, 2)} | ${r.goal} | ${r.met ? "yes" : "**no**"} |`,
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

/** Runs `fn`; on failure logs it, adds it to `failures` and returns undefined (a failed sample). */
async function attempt<T>(
  what: string,
  failures: string[],
  fn: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    const line = `${what} failed: ${(error as Error).message}`;
    log(line);
    failures.push(line);
    return undefined;
  }
}

/**
 * The note giving a row's CPU-seconds (bench/_cpu.ts): the median of
 * `measured` against that of `baseline`, their ratio and the samples, or why
 * there are none.
 */
function cpuSecondsNote(
  what: string,
  measured: number[],
  baseline: number[],
  baselineName: string,
): string {
  if (measured.length === 0 || baseline.length === 0) {
    return `CPU-seconds not measured: ${CpuGroup.unavailable || "no sample had them"}`;
  }
  return `CPU-seconds from the kernel's accounting of a control group (bench/_cpu.ts; redis-servers, and for mr-redis the sched, local cluster and executors; exited processes included): ${what} ${
    fmt(median(measured), 2)
  } against ${fmt(median(baseline), 2)} for ${baselineName} (${
    fmt(median(measured) / median(baseline), 2)
  }×; medians; samples ${list(measured, 2)} against ${list(baseline, 2)})`;
}

/** The samples of a row as a list, failed ones said. */
function list(xs: number[], digits = 3): string {
  return xs.length === 0 ? "none (every sample failed)" : xs.map((x) => fmt(x, digits)).join(", ");
}

/**
 * 1 master + N slaves: warm creates on `mr` (its executors already up),
 * cold creates (a fresh sched and cluster per sample), cold creates with a
 * slow fsync, and the executor start-up, against direct starts in this run;
 * with the floor of a Deno process per agent, warm and cold, in the notes.
 * A sample that fails is left out of its row and named in its notes.
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
  const failed: string[] = [];
  const push = (to: number[], x: number | undefined) => x !== undefined && to.push(x);
  // CPU-seconds of the same samples (where a control group can be made).
  const cpu = { parallel: [] as number[], warm: [] as number[], cold: [] as number[] };
  // The floor of a Deno process per agent (bench/_floor.ts): what any Deno
  // executor would cost on these cores, with nothing of Mesos.
  const floor = {
    warm: [] as number[],
    cold: [] as number[],
    warmCpu: [] as number[],
    coldCpu: [] as number[],
  };
  const pushMeasured = (to: number[], cpuTo: number[], x: Measured | undefined) => {
    if (x === undefined) return;
    to.push(x.seconds);
    if (x.cpuSeconds !== undefined) cpuTo.push(x.cpuSeconds);
  };
  // A first create starts the executors; the warm samples follow it closely
  // (executors leave after 30 s without a task).
  const warmup = await attempt(
    "warm-up create",
    failed,
    () => mrCreateMasterSlaves(mr, "warmup", n, size.distribution),
  );
  log(`warm-up create of 1+${n}: ${fmt(warmup ?? NaN)} s`);
  // Every round takes each kind of sample once, one after another, so a
  // change of load over the run (a busy neighbour, the machine warming up)
  // falls on every kind alike instead of on whichever came last; each cold
  // sample has a direct start of its own next to it. At least 5 rounds: the
  // samples of one kind spread by up to 0.4 s on a busy 2-core machine
  // (a quick smoke run keeps its one).
  const rounds = runs === 1 ? 1 : Math.max(runs, 5);
  const cold: { seconds: number; phases: CreatePhases }[] = [];
  // Cold as on a cluster whose Mesos is already up: the local cluster is not
  // started with each sched, as a real master and agents would not be.
  const coldUp: Measured[] = [];
  const running = await attempt(
    "a running cluster for cold creates",
    failed,
    () => openRunningCluster(n, size.distribution),
  );
  for (let i = 0; i < rounds; i++) {
    pushMeasured(
      parallel,
      cpu.parallel,
      await attempt(`direct parallel ${i + 1}`, failed, () => baselineMasterSlavesMeasured(n)),
    );
    pushMeasured(
      warm,
      cpu.warm,
      await attempt(
        `warm create ${i + 1}`,
        failed,
        () => mrCreateMasterSlavesMeasured(mr, `ms${i}`, n, size.distribution),
      ),
    );
    push(
      daemonized,
      await attempt(`direct daemonized ${i + 1}`, failed, () => baselineDaemonized(n)),
    );
    pushMeasured(
      parallel,
      cpu.parallel,
      await attempt(`direct parallel ${i + 1}b`, failed, () => baselineMasterSlavesMeasured(n)),
    );
    const c = await attempt(`cold create ${i + 1}`, failed, () => coldCreate(n, size.distribution));
    if (c) cold.push(c);
    if (c?.cpuSeconds !== undefined) cpu.cold.push(c.cpuSeconds);
    const up = running &&
      await attempt(`cold create on the running cluster ${i + 1}`, failed, () => running.sample());
    if (up) coldUp.push(up);
    for (const kind of ["warm", "cold"] as const) {
      const f = await attempt(
        `floor ${kind} ${i + 1}`,
        failed,
        () => floorStart(n, { cold: kind === "cold" }),
      );
      if (f) {
        floor[kind].push(f.seconds);
        floor[kind === "cold" ? "coldCpu" : "warmCpu"].push(f.cpuSeconds);
      }
    }
    log(
      `1+${n}: direct parallel ${list(parallel.slice(-2))} s, daemonized ${
        fmt(daemonized.at(-1) ?? NaN)
      } s, warm ${fmt(warm.at(-1) ?? NaN)} s, cold ${fmt(c?.seconds ?? NaN)} s (cluster up ${
        fmt(up ? up.seconds : NaN)
      } s); floor warm ${fmt(floor.warm.at(-1) ?? NaN)} s, cold ${fmt(floor.cold.at(-1) ?? NaN)} s`,
    );
  }
  await running?.close();
  const shimDir = await Deno.makeTempDir({ prefix: "mr-redis-bench-shim-" });
  const slow: number[] = [];
  let shimMs = NaN;
  try {
    const shim = await buildSlowFsyncShim(shimDir);
    shimMs = await checkShim(shim, 20);
    log(`slow-disk shim: one SQLite commit takes ${fmt(shimMs, 1)} ms under it`);
    for (let i = 0; i < runs; i++) {
      const c = await attempt(
        `cold create on the slow disk ${i + 1}`,
        failed,
        () =>
          coldCreate(n, size.distribution, {
            schedEnv: { LD_PRELOAD: shim, SLOW_FSYNC_MS: "20" },
          }),
      );
      if (c) slow.push(c.seconds);
      log(`1+${n} cold, slow fsync: ${fmt(c?.seconds ?? NaN)} s`);
    }
  } catch (error) {
    failed.push(`slow-disk shim: ${(error as Error).message}`);
  } finally {
    await Deno.remove(shimDir, { recursive: true }).catch(() => {});
  }
  const start = await attempt(
    "executor start-up",
    failed,
    () => executorStartup(Math.max(5, runs)),
  ) ?? { executor: [], bare: [] };
  log(
    `executor start-up: ${fmt(median(start.executor), 0)} ms (bare Deno ${
      fmt(median(start.bare), 0)
    } ms)`,
  );

  const coldSeconds = cold.map((c) => c.seconds);
  const bySpeed = [...cold].sort((a, b) => a.seconds - b.seconds);
  const medianCold = bySpeed[Math.floor(bySpeed.length / 2)];
  const baselineName = `${
    n + 1
  } redis-servers started directly in parallel (no --daemonize; the replicas once the master listens), until in sync`;
  const directNote = `direct starts in this run: parallel ${list(parallel)} s (median ${
    fmt(median(parallel))
  }); daemonized one after another ${list(daemonized)} s (median ${fmt(median(daemonized))})`;
  const coldRatio = ratioOf(coldSeconds, parallel);
  const warmRatio = ratioOf(warm, parallel);
  const slowRatio = median(slow) / median(coldSeconds);
  const execOwn = median(start.executor) - median(start.bare);
  const failedNotes = failed.length ? [`failed samples: ${failed.join("; ")}`] : [];
  const cpuNote = (kind: "cold" | "warm") =>
    cpuSecondsNote(kind, cpu[kind], cpu.parallel, "the parallel direct start");
  const floorNote = (kind: "cold" | "warm", measured: number[]) => {
    const samples = floor[kind];
    if (samples.length === 0) return "the floor of a Deno process per agent: every sample failed";
    return `the floor of a Deno process per agent (bench/_floor.ts: three Deno processes, one per agent, start the same servers with their output piped and watch it, nothing of Mesos${
      kind === "cold" ? "; their start counted" : ""
    }): ${fmt(median(samples))} s, ${
      fmt(ratioOf(samples, parallel), 2)
    }× the parallel direct start (samples ${list(samples)} s; their CPU ${
      fmt(median(floor[`${kind}Cpu`]), 2)
    } s); this ${kind} create is ${fmt(ratioOf(measured, samples), 2)}× that floor`;
  };
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
        ...(medianCold
          ? [`phases of the median cold sample: ${phaseNotes(medianCold.phases)}`]
          : []),
        cpuNote("cold"),
        floorNote("cold", coldSeconds),
        coldUp.length === 0
          ? "cold with the local cluster already up: every sample failed"
          : `cold with the local cluster already up (one local cluster for these samples, used by another framework first, as a real Mesos master and agents would have been; a fresh sched each, no executor running; one per round): samples ${
            list(coldUp.map((m) => m.seconds))
          } s, median ${fmt(median(coldUp.map((m) => m.seconds)))} s, ${
            fmt(ratioOf(coldUp.map((m) => m.seconds), parallel), 2)
          }× the parallel direct start`,
        "the original mr-redis took 14.3 s for 1+50 on its cluster",
        ...failedNotes,
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
        }× the daemonized start; the warm-up create (the executors starting) took ${
          fmt(warmup ?? NaN)
        } s`,
        cpuNote("warm"),
        floorNote("warm", warm),
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

/**
 * 1 master + N slaves on 3 agents that are hosts of their own (network
 * namespaces, `LocalNetwork`), run by the release's sched, whose agents fetch
 * the release's executor and Deno runtime: per run a fresh scheduler and
 * cluster (cold: the executors fetched and started), then a warm create,
 * then, once the executors have idled out (30 s without a task), a create
 * that starts them again from the agents' fetcher caches; against the
 * parallel direct start measured in the same run. Root only.
 */
async function hostsBenchmark(
  size: { slaves: number; distribution: number },
  runs: number,
): Promise<Result[]> {
  if (hostsBenchUnavailable) {
    throw new Error(`agents as hosts of their own cannot run here: ${hostsBenchUnavailable}`);
  }
  const n = size.slaves;
  const what = `1 master + ${n} slaves (Distribution ${size.distribution}) on 3 agent hosts`;
  const parallel: number[] = [];
  const cold: number[] = [];
  const warm: number[] = [];
  const again: number[] = [];
  const failed: string[] = [];
  const push = (to: number[], x: number | undefined) => x !== undefined && to.push(x);
  for (let i = 0; i < runs; i++) {
    push(
      parallel,
      await attempt(`direct parallel ${i + 1}`, failed, () => baselineMasterSlaves(n)),
    );
    await withTempDir("hosts", async (dir) => {
      const mr = await attempt(`agent hosts ${i + 1}`, failed, () => startMrRedisOnHosts(dir));
      if (!mr) return;
      try {
        push(
          cold,
          await attempt(
            `cold create on agent hosts ${i + 1}`,
            failed,
            () => mrCreateMasterSlaves(mr, `hc${i}`, n, size.distribution),
          ),
        );
        push(
          warm,
          await attempt(
            `warm create on agent hosts ${i + 1}`,
            failed,
            () => mrCreateMasterSlaves(mr, `hw${i}`, n, size.distribution),
          ),
        );
        push(
          again,
          await attempt(
            `create on agent hosts ${i + 1} after the executors idled out`,
            failed,
            async () => {
              await until(
                "the executors to idle out",
                () => executorsUnder(dir) === 0,
                90_000,
                500,
              );
              return await mrCreateMasterSlaves(mr, `ha${i}`, n, size.distribution);
            },
          ),
        );
      } finally {
        await mr.stop();
      }
    });
    log(
      `1+${n} on agent hosts: direct parallel ${fmt(parallel.at(-1) ?? NaN)} s, cold ${
        fmt(cold.at(-1) ?? NaN)
      } s, warm ${fmt(warm.at(-1) ?? NaN)} s, after the executors idled out ${
        fmt(again.at(-1) ?? NaN)
      } s`,
    );
  }
  const baselineName = `${n + 1} redis-servers started directly in parallel, until in sync`;
  const failedNotes = failed.length ? [`failed samples: ${failed.join("; ")}`] : [];
  const coldRatio = ratioOf(cold, parallel);
  const warmRatio = ratioOf(warm, parallel);
  const againRatio = ratioOf(again, parallel);
  return [
    {
      name: `create ${what}, release artifacts, cold: a fresh sched and cluster`,
      goal: "≤ 1.5× the parallel direct start",
      unit: "s",
      baselineName,
      baseline: parallel,
      measured: cold,
      ratio: coldRatio,
      met: coldRatio <= 1.5,
      notes: [
        `samples ${
          list(cold)
        } s; each agent fetched the executor bundle and the Deno runtime (95 MB) over its own link`,
        ...failedNotes,
      ],
    },
    {
      name: `create ${what}, release artifacts, warm: executors running`,
      goal: "≤ 1.2× the parallel direct start",
      unit: "s",
      baselineName,
      baseline: parallel,
      measured: warm,
      ratio: warmRatio,
      met: warmRatio <= 1.2,
      notes: [`samples ${list(warm)} s`],
    },
    {
      name:
        `create ${what}, release artifacts, cold again: the executors idled out, the agents' fetcher caches hold the artifacts`,
      goal: "≤ 1.5× the parallel direct start",
      unit: "s",
      baselineName,
      baseline: parallel,
      measured: again,
      ratio: againRatio,
      met: againRatio <= 1.5,
      notes: [
        `samples ${
          list(again)
        } s; the executors started again 30 s after their last task ended, each agent's fetcher copying the runtime from its cache into the new sandbox`,
      ],
    },
  ];
}

/**
 * N single instances at once against N redis-servers started directly, each
 * mr-redis sample right after a direct one. Warm: when the executors are not
 * running yet (`--only singles`), an untimed create of a few singles starts
 * them first, so that the figure means the same as in a whole run (where the
 * create step has started them). At least 5 rounds, as for the 1+50 create.
 */
async function singlesBenchmark(mr: MrRedis, count: number, runs: number): Promise<Result> {
  const base: number[] = [];
  const got: number[] = [];
  const baseCpu: number[] = [];
  const gotCpu: number[] = [];
  const failed: string[] = [];
  const warmUp = Math.min(count, 6);
  await attempt("warm-up singles", failed, () => mrCreateSingles(mr, "warmup", warmUp));
  const rounds = runs === 1 ? 1 : Math.max(runs, 5);
  for (let i = 0; i < rounds; i++) {
    const b = await attempt(`direct singles ${i + 1}`, failed, () => baselineSingles(count));
    if (b !== undefined) base.push(b.seconds);
    if (b?.cpuSeconds !== undefined) baseCpu.push(b.cpuSeconds);
    const m = await attempt(
      `mr-redis singles ${i + 1}`,
      failed,
      () => mrCreateSingles(mr, `s${i}x`, count),
    );
    if (m !== undefined) got.push(m.seconds);
    if (m?.cpuSeconds !== undefined) gotCpu.push(m.cpuSeconds);
    log(
      `${count} singles: baseline ${fmt(b?.seconds ?? NaN)} s, mr-redis ${
        fmt(m?.seconds ?? NaN)
      } s`,
    );
  }
  const ratio = ratioOf(got, base);
  const cpuNote = cpuSecondsNote("mr-redis", gotCpu, baseCpu, "the direct start");
  return {
    name: `create ${count} single instances at once`,
    goal: "≤ 1.5× baseline",
    unit: "s",
    baselineName: `${count} redis-servers started directly`,
    baseline: base,
    measured: got,
    ratio,
    met: ratio <= 1.5,
    notes: [
      `samples ${list(got)} s against ${list(base)} s`,
      cpuNote,
      ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
    ],
  };
}

/**
 * The same N singles at once with every fsync of the scheduler 20 ms slower
 * (an LD_PRELOAD shim, as for the cold create), on a scheduler and local
 * cluster of their own, against the normal disk's figure: the CREATEs that
 * arrive together share store batches (one commit each would be N × 20 ms
 * before the last is answered).
 */
async function slowDiskSinglesBenchmark(
  count: number,
  runs: number,
  normal: number[],
): Promise<Result> {
  const got: number[] = [];
  const failed: string[] = [];
  const answered: number[] = [];
  let shimMs = NaN;
  const shimDir = await Deno.makeTempDir({ prefix: "mr-redis-bench-shim-" });
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-slow-singles-" });
  let mr: MrRedis | undefined;
  try {
    const shim = await buildSlowFsyncShim(shimDir);
    shimMs = await checkShim(shim, 20);
    mr = await startMrRedis(dir, {
      agents: 3,
      cpus: 64,
      memMB: 65536,
      schedEnv: { LD_PRELOAD: shim, SLOW_FSYNC_MS: "20" },
    });
    const m = mr;
    await attempt("warm-up singles, slow disk", failed, () => mrCreateSingles(m, "slowup", 6));
    for (let i = 0; i < Math.max(runs, 3); i++) {
      const sample = await attempt(
        `mr-redis singles on the slow disk ${i + 1}`,
        failed,
        () => mrCreateSingles(m, `slow${i}x`, count),
      );
      if (sample !== undefined) got.push(sample.seconds);
      log(`${count} singles, slow fsync: ${fmt(sample?.seconds ?? NaN)} s`);
    }
    // How long the last of N CREATEs waits for its answer (its records stored).
    const names = Array.from({ length: count }, (_, i) => `slowpost${i}`);
    const started = performance.now();
    await Promise.all(names.map((n) => create(m.api, n, 10, 0)));
    answered.push((performance.now() - started) / 1000);
    await Promise.all(names.map((n) => destroy(m.api, n)));
  } catch (error) {
    failed.push(`slow disk: ${(error as Error).message}`);
  } finally {
    await mr?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(shimDir, { recursive: true }).catch(() => {});
  }
  const ratio = ratioOf(got, normal);
  return {
    name: `create ${count} single instances at once, every fsync of the scheduler 20 ms slower`,
    goal: "≤ 1.5× the same on the normal disk",
    unit: "s",
    baselineName: `${count} singles on the normal disk (above)`,
    baseline: normal,
    measured: got,
    ratio,
    met: got.length > 0 && ratio <= 1.5,
    notes: [
      `samples ${
        list(got)
      } s; an LD_PRELOAD shim sleeps 20 ms in fsync/fdatasync (one SQLite commit took ${
        fmt(shimMs, 1)
      } ms under it); the last of ${count} CREATEs sent at once was answered after ${
        list(answered)
      } s (one commit per CREATE would take ${fmt(count * 0.02, 1)} s)`,
      ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
    ],
  };
}

/** The phases of one failover, as a line for the notes. */
function failoverPhaseNote(p: FailoverPhases): string {
  return [
    `lost ${fmt(p.lost, 0)}`,
    `promote sent ${fmt(p.promoting, 0)}`,
    `promoted ${fmt(p.promoted, 0)} (AOF switch ${fmt(p.aofMs, 0)})`,
    `result at the scheduler ${fmt(p.promoteDone, 0)}`,
    `in STATUS ${fmt(p.inStatus, 0)}`,
    `slave re-pointed ${fmt(p.repointed, 0)}`,
    `first write ${fmt(p.firstWrite, 0)} (after ${p.noreplicas} NOREPLICAS)`,
  ].join(", ");
}

/** SIGKILL of a master → first write, against Sentinel, with the phases of each sample. */
async function failoverBenchmark(mr: MrRedis, keys: number, runs: number): Promise<Result> {
  const base: FailoverSample[] = [];
  const got: MrFailoverSample[] = [];
  const failed: string[] = [];
  for (let i = 0; i < runs; i++) {
    const b = await attempt(
      `sentinel failover ${i + 1}`,
      failed,
      () => baselineSentinelFailover(keys),
    );
    if (b) base.push(b);
    const m = await attempt(
      `mr-redis failover ${i + 1}`,
      failed,
      () => mrFailover(mr, `fo${i}`, keys),
    );
    if (m) got.push(m);
    log(
      `failover: sentinel ${fmt(b?.seconds ?? NaN)} s, mr-redis ${fmt(m?.seconds ?? NaN)} s, lost ${
        m?.lost ?? "?"
      }${m ? `; phases (ms after SIGKILL): ${failoverPhaseNote(m.phases)}` : ""}`,
    );
  }
  const seconds = got.map((s) => s.seconds);
  const ratio = ratioOf(seconds, base.map((s) => s.seconds));
  const lost = got.reduce((n, s) => n + s.lost, 0);
  return {
    name: "failover: SIGKILL of the master redis-server → first write on the new master",
    goal: "< 1 s, ≤ 0.5× Sentinel, 0 acknowledged writes lost",
    unit: "s",
    baselineName: "redis-sentinel, down-after 1000 ms, quorum 1",
    baseline: base.map((s) => s.seconds),
    measured: seconds,
    ratio,
    met: got.length === runs && median(seconds) < 1 && ratio <= 0.5 && lost === 0,
    notes: [
      `samples ${list(seconds)} s against Sentinel's ${list(base.map((x) => x.seconds))} s`,
      `WAIT-acknowledged writes lost: mr-redis ${lost} of ${
        got.reduce((n, s) => n + s.acked, 0)
      }; Sentinel ${base.reduce((n, s) => n + s.lost, 0)} of ${
        base.reduce((n, s) => n + s.acked, 0)
      }`,
      ...got.map((g, i) =>
        `phases of sample ${i + 1}, ms after the SIGKILL: ${failoverPhaseNote(g.phases)}`
      ),
      ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
    ],
  };
}

/**
 * Redis Cluster instances: creation of 3×1 and 10×2 until RUNNING against
 * the same nodes started and joined directly with `redis-cli --cluster
 * create` in this run (goal ≤ 3×), and a shard failover against the
 * cluster's own with `cluster-node-timeout 1000` (goal ≤ 0.5×).
 */
async function clusterBenchmarks(mr: MrRedis, runs: number): Promise<Result[]> {
  const rows: Result[] = [];
  for (const [masters, replicas] of [[3, 1], [10, 2]] as const) {
    const base: number[] = [];
    const got: number[] = [];
    const failed: string[] = [];
    for (let i = 0; i < runs; i++) {
      const b = await attempt(
        `direct cluster ${masters}x${replicas} ${i + 1}`,
        failed,
        () =>
          withTempDir("cluster", async (dir) => {
            const { seconds, cluster } = await directClusterCreate(dir, masters, replicas);
            await cluster.stop();
            return seconds;
          }),
      );
      if (b !== undefined) base.push(b);
      const m = await attempt(
        `mr-redis cluster ${masters}x${replicas} ${i + 1}`,
        failed,
        () => mrClusterCreate(mr, `rc${masters}x${replicas}n${i}`, masters, replicas),
      );
      if (m !== undefined) got.push(m);
      log(`cluster ${masters}x${replicas}: direct ${fmt(b ?? NaN)} s, mr-redis ${fmt(m ?? NaN)} s`);
    }
    const ratio = ratioOf(got, base);
    rows.push({
      name: `cluster create ${masters}×${replicas}: CREATE → RUNNING (cluster_state:ok everywhere)`,
      goal: "≤ 3× the direct start",
      unit: "s",
      baselineName: "the same nodes started directly + redis-cli --cluster create",
      baseline: base,
      measured: got,
      ratio,
      met: got.length === runs && ratio <= 3,
      notes: [
        `samples ${list(got)} s against ${list(base)} s`,
        ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
      ],
    });
  }
  const base: number[] = [];
  const got: number[] = [];
  const failed: string[] = [];
  for (let i = 0; i < runs; i++) {
    const b = await attempt(
      `cluster's own failover ${i + 1}`,
      failed,
      () => withTempDir("cluster-fo", (dir) => directClusterFailover(dir)),
    );
    if (b !== undefined) base.push(b);
    const m = await attempt(
      `mr-redis shard failover ${i + 1}`,
      failed,
      () => mrClusterFailover(mr, `rcfo${i}`),
    );
    if (m !== undefined) got.push(m);
    log(`shard failover: cluster's own ${fmt(b ?? NaN)} s, mr-redis ${fmt(m ?? NaN)} s`);
  }
  const ratio = ratioOf(got, base);
  rows.push({
    name: "cluster shard failover: SIGKILL of a shard master → its replica answers ROLE master",
    goal: "≤ 0.5× the cluster's own failover",
    unit: "s",
    baselineName: "Redis Cluster's own failover, cluster-node-timeout 1000",
    baseline: base,
    measured: got,
    ratio,
    met: got.length === runs && ratio <= 0.5,
    notes: [
      `samples ${list(got)} s against ${list(base)} s`,
      ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
    ],
  });
  return rows;
}

/** The failover seen through `mrr proxy`, `runs` times, as result rows. */
async function proxyFailoverRows(mr: MrRedis, runs: number): Promise<Result[]> {
  const got: ProxyFailoverSample[] = [];
  const failed: string[] = [];
  for (let i = 0; i < runs; i++) {
    const g = await attempt(
      `failover through mrr proxy ${i + 1}`,
      failed,
      () => proxyFailover(mr, `pf${i}`),
    );
    if (!g) continue;
    got.push(g);
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
    met: got.length === runs && median(first) < 1 && got.every((g) => g.reconnects <= 1),
    notes: [
      `samples ${list(first)} s; reconnects ${got.map((g) => g.reconnects).join(", ")}`,
      `SIGKILL → last of 20 idle connections through the proxy closed: ${
        got.map((g) => fmt(g.lastOldClosedMs, 0)).join(", ")
      } ms, against the promotion visible in STATUS at ${
        got.map((g) => fmt(g.promotedMs, 0)).join(", ")
      } ms: the proxy closes them when the old master's connection drops, before the promotion; when the scheduler names a new master while the old one still answers, setMaster closes them at once (tests/proxy_test.ts)`,
      ...(failed.length ? [`failed samples: ${failed.join("; ")}`] : []),
    ],
  }];
}

/** Instances RUNNING out of `names`, and why the others are not (their STATUS reason). */
async function runningOf(
  api: string,
  names: Set<string>,
): Promise<{ running: number; waiting: string[] }> {
  const all: { Name: string; Status: string; Reason?: string }[] =
    await (await fetch(`${api}/v1/STATUS`)).json();
  const mine = all.filter((i) => names.has(i.Name));
  const waiting = mine.filter((i) => i.Status !== "RUNNING").map((i) =>
    `${i.Name} ${i.Status}${i.Reason ? ` (${i.Reason})` : ""}`
  );
  return { running: mine.length - waiting.length, waiting };
}

/**
 * Creates those of `names` not there yet as single instances (at most 50
 * requests at once) and waits up to `timeoutMs` for every one to be
 * RUNNING; on time-out throws saying how many are and why the first few
 * are not. Returns how many it created and the ms from the first CREATE
 * to all RUNNING.
 */
async function createSingles(
  mr: MrRedis,
  names: string[],
  timeoutMs: number,
): Promise<{ created: number; ms: number }> {
  // Those the api step made already stay (scale grows to its size).
  const existing: { Name: string }[] = await (await fetch(`${mr.api}/v1/STATUS`)).json();
  const have = new Set(existing.map((i) => i.Name));
  const fresh = names.filter((n) => !have.has(n));
  const first = performance.now();
  for (let i = 0; i < fresh.length; i += 50) {
    await Promise.all(fresh.slice(i, i + 50).map((n) => create(mr.api, n, 10, 0)));
  }
  const want = new Set(names);
  const started = performance.now();
  let last = { running: 0, waiting: [] as string[] };
  let said = started;
  while (performance.now() - started < timeoutMs) {
    last = await runningOf(mr.api, want).catch(() => last);
    if (last.running >= names.length) {
      return { created: fresh.length, ms: performance.now() - first };
    }
    if (performance.now() - said > 30_000) {
      said = performance.now();
      log(
        `${last.running} of ${names.length} RUNNING; not yet: ${
          last.waiting.slice(0, 3).join(", ")
        }`,
      );
    }
    await sleep(500);
  }
  throw new Error(
    `only ${last.running} of ${names.length} instances RUNNING after ${
      Math.round(timeoutMs / 1000)
    } s (load average ${Deno.loadavg()[0]!.toFixed(1)}); not yet: ${
      last.waiting.slice(0, 5).join(", ")
    }${last.waiting.length > 5 ? ", ..." : ""}`,
  );
}

/** The REST API under wrk with `count` instances, against a static server answering the same bytes. */
async function apiBenchmark(mr: MrRedis, names: string[], loadMs: number): Promise<Result[]> {
  await createSingles(mr, names, 300_000);
  const first = names[0]!;
  const one = await load(`${mr.api}/v1/STATUS/${first}`, 16, loadMs);
  const all = await load(`${mr.api}/v1/STATUS`, 16, loadMs);
  const oneBody = await (await fetch(`${mr.api}/v1/STATUS/${first}`)).text();
  const allBody = await (await fetch(`${mr.api}/v1/STATUS`)).text();
  const s1 = await staticServer(oneBody);
  const baseOne = await load(s1.url, 16, loadMs).finally(() => s1.stop());
  const s2 = await staticServer(allBody);
  const baseAll = await load(s2.url, 16, loadMs).finally(() => s2.stop());
  const rows: Result[] = [];
  for (
    const [label, m, b] of [
      ["GET /v1/STATUS/{name}", one, baseOne],
      ["GET /v1/STATUS", all, baseAll],
    ] as const
  ) {
    const ratio = m.rps / b.rps;
    rows.push({
      name: `${label} with ${names.length} instances (16 connections)`,
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
  return rows;
}

/**
 * Redis processes and proxies (first launches) of `names` per agent, from
 * the scheduler's log, fewest redis processes first: e.g. "66+67 / 67+66 / 67+67".
 */
async function tasksPerAgent(mr: MrRedis, names: string[]): Promise<string> {
  const log = await Deno.readTextFile(`${mr.dir}/sched.log`).catch(() => "");
  const want = new Set(names);
  const seen = new Set<string>();
  const counts = new Map<string, { redis: number; proxies: number }>();
  for (const m of log.matchAll(/Launching (proxy )?(([\w-]+)\.[px]\d+)\.\d+ .* agent (\S+)$/gm)) {
    if (!want.has(m[3]!) || seen.has(m[2]!)) continue;
    seen.add(m[2]!);
    const c = counts.get(m[4]!) ?? { redis: 0, proxies: 0 };
    if (m[1]) c.proxies++;
    else c.redis++;
    counts.set(m[4]!, c);
  }
  return [...counts.values()].sort((a, b) => a.redis - b.redis)
    .map((c) => `${c.redis}+${c.proxies}`).join(" / ") || "none found";
}

/** Scale: `names` single instances in all; the scheduler's memory and STATUS latency. */
async function scaleBenchmark(mr: MrRedis, names: string[], loadMs: number): Promise<Result> {
  // Ten minutes is far more than 200 creates need on an idle machine; the
  // error says how far it got and why, instead of waiting forever.
  const loadBefore = Deno.loadavg()[0]!;
  const made = await createSingles(mr, names, 600_000);
  const spread = await tasksPerAgent(mr, names);
  await sleep(3000);
  const rss = rssBytes(mr.schedPid);
  const lat = await load(`${mr.api}/v1/STATUS`, 4, loadMs);
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
  return {
    name: `scheduler memory (RSS) with ${names.length} single instances`,
    goal: "≤ 4× an idle Deno HTTP server",
    unit: "MiB",
    baselineName: "an idle Deno.serve process",
    baseline: [idleRss / 1048576],
    measured: [rss / 1048576],
    ratio: rss / idleRss,
    met: rss / idleRss <= 4,
    notes: [
      `GET /v1/STATUS with ${names.length} instances: p50 ${fmt(lat.p50, 2)} ms, p99 ${
        fmt(lat.p99, 2)
      } ms, ${fmt(lat.rps, 0)} req/s (4 connections)`,
      `${made.created} singles created at once, all RUNNING ${
        fmt(made.ms / 1000, 1)
      } s after the first CREATE (load average ${
        fmt(loadBefore, 1)
      } before); redis processes + proxies per agent ${spread}`,
    ],
  };
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

/** The steps of a run, in order; `--only` picks some of them. */
const STEPS = [
  "proxy",
  "create",
  "hosts",
  "singles",
  "failover",
  "proxy-failover",
  "cluster",
  "api",
  "scale",
] as const;
type Step = typeof STEPS[number];

/** Parses `--only a,b`; returns the steps or a one-line error. */
export function parseSteps(only: string | undefined): Step[] | string {
  if (only === undefined) return [...STEPS];
  // The proxy figures: throughput and the failover through `mrr proxy`.
  if (only === "proxy") return ["proxy", "proxy-failover"];
  const picked = only.split(",").map((s) => s.trim());
  for (const s of picked) {
    if (!(STEPS as readonly string[]).includes(s)) {
      return `Option "--only" takes steps among ${
        STEPS.join(", ")
      } (comma-separated), but got "${s}"`;
    }
  }
  return STEPS.filter((s) => picked.includes(s));
}

/** A row saying a whole step failed (nothing was measured). */
function failedRow(step: string, reason: string): Result {
  return {
    name: `${step}: the step failed`,
    goal: "runs to the end",
    unit: "",
    baselineName: "-",
    baseline: [],
    measured: [],
    ratio: NaN,
    met: false,
    notes: [reason],
  };
}

/** Runs the benchmarks (every step, or those of `--only`); returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      runs: { type: "string" },
      only: { type: "string" },
    },
  });
  const steps = parseSteps(values.only);
  if (typeof steps === "string") {
    console.error(steps);
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
  // Last resort: an error no sample awaited (a client library's stray
  // rejection) is logged and noted, never the end of the run; the sample it
  // belonged to fails on its own time-out.
  const strays: string[] = [];
  const onStray = (event: PromiseRejectionEvent) => {
    event.preventDefault();
    const line = `unhandled error: ${(event.reason as Error)?.message ?? String(event.reason)}`;
    log(line);
    strays.push(line);
  };
  globalThis.addEventListener("unhandledrejection", onStray);
  const loadBefore = Deno.loadavg();
  const results: Result[] = [];
  const failures: string[] = [];
  const step = async (name: Step, fn: () => Promise<Result[]>) => {
    if (!steps.includes(name)) return;
    log(`step ${name}`);
    try {
      results.push(...await fn());
    } catch (error) {
      const reason = (error as Error).message;
      log(`step ${name} failed: ${reason}`);
      failures.push(`${name}: ${reason}`);
      results.push(failedRow(name, reason));
    }
  };

  // Proxy throughput first, on a quiet machine (no cluster running yet). Its
  // samples are short and noisy on a shared machine: at least 7 rounds.
  const proxyRounds = quick ? runs : Math.max(runs, 7);
  await step(
    "proxy",
    () =>
      proxyThroughput({
        runs: proxyRounds,
        requests: quick ? 20_000 : 50_000,
        log,
      }) as Promise<Result[]>,
  );
  await step("hosts", () => hostsBenchmark(size, runs));
  if (steps.some((s) => s !== "proxy" && s !== "hosts")) {
    const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-" });
    log(`starting the scheduler and a local cluster in ${dir}`);
    let mr: MrRedis | undefined;
    try {
      mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
      const m = mr;
      await step("create", () => createBenchmarks(m, size, runs));
      await step("singles", async () => {
        const normal = await singlesBenchmark(m, size.singles, runs);
        return [normal, await slowDiskSinglesBenchmark(size.singles, runs, normal.measured)];
      });
      await step("failover", async () => [await failoverBenchmark(m, size.keys, runs)]);
      await step("proxy-failover", () => proxyFailoverRows(m, runs));
      await step("cluster", () => clusterBenchmarks(m, runs));
      const apiNames = Array.from({ length: size.api }, (_, i) => `api${i}`);
      const scaleNames = [
        ...apiNames,
        ...Array.from({ length: size.scale - size.api }, (_, i) => `scale${i}`),
      ];
      await step("api", () => apiBenchmark(m, apiNames, size.loadMs));
      await step("scale", async () => [await scaleBenchmark(m, scaleNames, size.loadMs)]);
      if (steps.includes("api") || steps.includes("scale")) {
        await Promise.allSettled(scaleNames.map((n) => destroy(m.api, n)));
      }
    } catch (error) {
      const reason = (error as Error).message;
      log(`cannot start the scheduler: ${reason}`);
      failures.push(`the scheduler and local cluster: ${reason}`);
      results.push(failedRow("starting the scheduler and local cluster", reason));
    } finally {
      await mr?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  globalThis.removeEventListener("unhandledrejection", onStray);

  let md = markdown(
    results,
    quick,
    runs,
    loadBefore,
    steps.includes("proxy") ? proxyRounds : undefined,
  );
  if (failures.length) {
    md += `\n**Failed**: ${failures.join("; ")}. The other figures were measured.\n`;
  }
  if (strays.length) md += `\nErrors no sample awaited: ${strays.join("; ")}.\n`;
  console.log(md);
  const suffix = quick ? ".quick" : "";
  if (values.only === "proxy" && !quick) {
    await updateProxySection(md);
  } else if (values.only !== undefined) {
    // A partial run goes to its own file; RESULTS.md is the full run (or is
    // put together by hand from partial runs, saying so).
    const tag = steps.join("+");
    await Deno.writeTextFile(`${OUT}RESULTS.${tag}${suffix}.md`, md);
    await Deno.writeTextFile(
      `${OUT}results.${tag}${suffix}.json`,
      JSON.stringify({ machine: machine(), quick, runs, results }, null, 2) + "\n",
    );
  } else {
    await Deno.writeTextFile(`${OUT}RESULTS${suffix}.md`, md);
    await Deno.writeTextFile(
      `${OUT}results${suffix}.json`,
      JSON.stringify({ machine: machine(), quick, runs, results }, null, 2) + "\n",
    );
  }
  return failures.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
