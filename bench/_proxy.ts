/**
 * Proxy throughput: redis-benchmark (50 clients, `-t set,get`, pipelines 1
 * and 16) against one redis-server reached directly, through nutcracker
 * (twemproxy, `redis: true`), through HAProxy in TCP mode and through the
 * mr-redis proxy (`mrr proxy`, a process of its own, one thread; also on two
 * threads, for the notes), side by side in one run with the order rotated
 * each round; requests/s and CPU per request of each process.
 *
 * @module
 */
import {
  cpuSeconds,
  create,
  credentials,
  destroy,
  freePort,
  median,
  type MrRedis,
  redisPidsOnPort,
  sleep,
  startRedis,
  status,
  until,
} from "./_harness.ts";

/** One row of the results table (the shape bench/run.ts prints). */
export interface ProxyBenchRow {
  name: string;
  goal: string;
  unit: string;
  baselineName: string;
  baseline: number[];
  measured: number[];
  ratio: number;
  met: boolean;
  notes: string[];
}

/** Options of {@linkcode proxyThroughput}. */
export interface ProxyBenchOptions {
  /** Rounds per pipeline depth (each round measures every target once, in a rotated order). */
  runs: number;
  /** Requests per redis-benchmark test at pipeline 1 (16 gets 4×). */
  requests: number;
  log: (line: string) => void;
}

/**
 * What is measured: redis directly, the two proxies people use, this proxy
 * as the benchmark's figure (one thread) and, for the thread-count choice,
 * this proxy on two threads (its figure goes to the notes only).
 */
type Target = "direct" | "nutcracker" | "haproxy" | "proxy" | "proxy2";
const TARGETS: Target[] = ["direct", "nutcracker", "haproxy", "proxy", "proxy2"];
const LABEL: Record<Target, string> = {
  direct: "direct",
  nutcracker: "nutcracker",
  haproxy: "HAProxy",
  proxy: "proxy",
  proxy2: "proxy 2 threads",
};

async function waitPort(what: string, port: number): Promise<void> {
  await until(
    what,
    async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    },
    30_000,
    50,
  );
}

/** Mean of SET and GET requests/s of one redis-benchmark run. */
async function redisBenchmark(port: number, pipeline: number, requests: number): Promise<number> {
  const out = await new Deno.Command("redis-benchmark", {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-c",
      "50",
      "-n",
      String(requests),
      "-P",
      String(pipeline),
      "-t",
      "set,get",
      "--csv",
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rates = [...text.matchAll(/^"(SET|GET)","([\d.]+)"/gm)].map((m) => Number(m[2]));
  if (!out.success || rates.length !== 2) {
    throw new Error(`redis-benchmark on port ${port} failed: ${text.slice(0, 200)}`);
  }
  return (rates[0]! + rates[1]!) / 2;
}

/** One sample: requests/s, and µs of CPU per request of the target's process and of redis-server. */
interface Sample {
  rps: number;
  cpuUs: number;
  redisUs: number;
}

/**
 * Runs the throughput comparison; returns the rows for RESULTS.md. Every
 * round measures every target once, the order rotated by one each round, so
 * a change of the machine's load during the run falls on all of them alike;
 * the figures are medians.
 */
export async function proxyThroughput(options: ProxyBenchOptions): Promise<ProxyBenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-bench-proxy-" });
  const redisPort = freePort();
  const redis = startRedis(dir, redisPort);
  const stops: (() => Promise<void>)[] = [];
  try {
    await waitPort("redis-server", redisPort);
    const ports: Record<Target, number> = {
      direct: redisPort,
      nutcracker: freePort(),
      haproxy: freePort(),
      proxy: freePort(),
      proxy2: freePort(),
    };
    await Deno.writeTextFile(
      `${dir}/nutcracker.yml`,
      [
        "mrr:",
        `  listen: 127.0.0.1:${ports.nutcracker}`,
        "  redis: true",
        "  hash: fnv1a_64",
        "  distribution: ketama",
        "  server_connections: 1",
        "  servers:",
        `   - 127.0.0.1:${redisPort}:1`,
        "",
      ].join("\n"),
    );
    // HAProxy's defaults: nbthread is the number of CPUs.
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      [
        "global",
        "  maxconn 4096",
        "defaults",
        "  mode tcp",
        "  timeout connect 5s",
        "  timeout client 1h",
        "  timeout server 1h",
        "listen redis",
        `  bind 127.0.0.1:${ports.haproxy}`,
        `  server r1 127.0.0.1:${redisPort}`,
        "",
      ].join("\n"),
    );
    const spawn = (cmd: string, args: string[]) => {
      const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
      stops.push(async () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
        await child.status;
      });
      return child.pid;
    };
    const mrrProxy = (threads: number, port: number) =>
      spawn(Deno.execPath(), [
        "run",
        "-A",
        "--unstable-net",
        new URL("../cmd/mrr.ts", import.meta.url).pathname,
        "proxy",
        "--threads",
        String(threads),
        "--master",
        `127.0.0.1:${redisPort}`,
        "-l",
        `127.0.0.1:${port}`,
      ]);
    const pids: Record<Target, number> = {
      direct: redis.process.pid,
      // Its stats server would take port 22222 by default: a free one instead.
      nutcracker: spawn("nutcracker", [
        "-c",
        `${dir}/nutcracker.yml`,
        "-o",
        `${dir}/nutcracker.log`,
        "-s",
        String(freePort()),
      ]),
      haproxy: spawn("haproxy", ["-f", `${dir}/haproxy.cfg`, "-db"]),
      proxy: mrrProxy(1, ports.proxy),
      proxy2: mrrProxy(2, ports.proxy2),
    };
    for (const t of TARGETS) await waitPort(t, ports[t]);
    await sleep(500);

    const rows: ProxyBenchRow[] = [];
    for (const pipeline of [1, 16]) {
      const samples = Object.fromEntries(TARGETS.map((t) => [t, [] as Sample[]])) as Record<
        Target,
        Sample[]
      >;
      const requests = options.requests * (pipeline === 1 ? 1 : 4);
      // A short warm-up of every target (JIT, connections), not counted.
      for (const t of TARGETS) await redisBenchmark(ports[t], pipeline, 10_000);
      for (let round = 0; round < options.runs; round++) {
        for (let k = 0; k < TARGETS.length; k++) {
          const t = TARGETS[(k + round) % TARGETS.length]!;
          const cpu0 = cpuSeconds(pids[t]);
          const redis0 = cpuSeconds(pids.direct);
          const rps = await redisBenchmark(ports[t], pipeline, requests);
          const perRequest = (s: number) => (s * 1e6) / (2 * requests);
          samples[t].push({
            rps,
            cpuUs: perRequest(cpuSeconds(pids[t]) - cpu0),
            redisUs: perRequest(cpuSeconds(pids.direct) - redis0),
          });
        }
        options.log(
          `proxy throughput P${pipeline} round ${round + 1}: ${
            TARGETS.map((t) => `${LABEL[t]} ${Math.round(samples[t].at(-1)!.rps)}`).join(", ")
          } req/s (load ${Deno.loadavg()[0]!.toFixed(1)})`,
        );
      }
      const rps = (t: Target) => samples[t].map((s) => s.rps);
      const m = (t: Target) => median(rps(t));
      const cpu = (t: Target) => median(samples[t].map((s) => s.cpuUs)).toFixed(1);
      const redisCpu = (t: Target) => median(samples[t].map((s) => s.redisUs)).toFixed(1);
      const summary = [
        `${options.runs} rounds, ${2 * requests} requests per sample`,
        `medians: ${
          TARGETS.map((t) =>
            `${LABEL[t]} ${Math.round(m(t))} req/s (${(m(t) / m("direct")).toFixed(2)}× direct)`
          )
            .join(", ")
        }`,
        `CPU per request, medians (the process, then redis-server): ${
          TARGETS.filter((t) => t !== "direct").map((t) =>
            `${LABEL[t]} ${cpu(t)} µs + redis ${redisCpu(t)} µs`
          ).join(", ")
        }, redis directly ${cpu("direct")} µs`,
        `this proxy on 2 threads: ${(m("proxy2") / m("proxy")).toFixed(2)}× its 1-thread figure`,
      ].join("; ");
      for (
        const [other, label] of [["nutcracker", "nutcracker"], ["haproxy", "HAProxy TCP"]] as const
      ) {
        const ratio = m("proxy") / m(other);
        rows.push({
          name: `proxy throughput, 50 clients, set+get, pipeline ${pipeline}, vs ${label}`,
          goal: `≥ 1.0× ${label}`,
          unit: "req/s",
          baselineName: label,
          baseline: rps(other),
          measured: rps("proxy"),
          ratio,
          met: ratio >= 1,
          notes: [
            `${summary}; samples proxy ${rps("proxy").map(Math.round).join(", ")}, ${label} ${
              rps(other).map(Math.round).join(", ")
            }, proxy 2 threads ${rps("proxy2").map(Math.round).join(", ")}, direct ${
              rps("direct").map(Math.round).join(", ")
            }`,
          ],
        });
      }
    }
    return rows;
  } finally {
    for (const stop of stops) await stop();
    redis.kill();
    await redis.process.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Timings of one failover seen through `mrr proxy`. */
export interface ProxyFailoverSample {
  /** SIGKILL of the master redis-server → first successful SET through the proxy, ms. */
  firstWriteMs: number;
  /** Reconnects the writing client needed. */
  reconnects: number;
  /** SIGKILL → the new master in STATUS (polled every 10 ms), ms. */
  promotedMs: number;
  /** SIGKILL → the last of 20 idle connections through the proxy closed, ms. */
  lastOldClosedMs: number;
}

/** A connection through the proxy: resolves `closed` when the proxy closes it. */
async function idleConnection(port: number): Promise<{ closed: Promise<number>; conn: Deno.Conn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("*1\r\n$4\r\nPING\r\n"));
  const buf = new Uint8Array(64);
  await conn.read(buf);
  const closed = (async () => {
    while ((await conn.read(buf).catch(() => null)) !== null) {
      // replies are not expected
    }
    return performance.now();
  })();
  return { closed, conn };
}

/**
 * A connection through the proxy, logged in with `password` (the proxy
 * passes AUTH on to redis); throws when the login is refused.
 */
async function connectAuthed(port: number, password: string | undefined): Promise<Deno.Conn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  if (password === undefined) return conn;
  try {
    const enc = new TextEncoder();
    const pw = enc.encode(password);
    await conn.write(enc.encode(`*2\r\n$4\r\nAUTH\r\n$${pw.length}\r\n${password}\r\n`));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    const answer = n === null ? "closed" : new TextDecoder().decode(buf.subarray(0, n)).trim();
    if (answer !== "+OK") throw new Error(`AUTH through the proxy: ${answer}`);
    return conn;
  } catch (error) {
    conn.close();
    throw error;
  }
}

/** One SET on a fresh connection through the proxy; true when it answered +OK. */
async function setOnce(port: number, key: string, password: string | undefined): Promise<boolean> {
  let conn: Deno.Conn | undefined;
  try {
    conn = await connectAuthed(port, password);
    await conn.write(
      new TextEncoder().encode(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$1\r\n1\r\n`),
    );
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+OK");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // closed
    }
  }
}

/**
 * Failover through `mrr proxy -n NAME`: a 1+2 instance, a client writing
 * through the proxy and 20 idle connections; SIGKILL of the master
 * redis-server; when the writer's first SET succeeds after reconnecting, when
 * STATUS shows the new master, when the last idle connection was closed.
 */
export async function proxyFailover(mr: MrRedis, name: string): Promise<ProxyFailoverSample> {
  await create(mr.api, name, 20, 2);
  const before = await until(
    `${name} RUNNING`,
    async () => {
      const s = await status(mr.api, name);
      return s?.Status === "RUNNING" && s.Master ? s : undefined;
    },
    120_000,
    50,
  );
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../cmd/mrr.ts", import.meta.url).pathname,
      "proxy",
      "-n",
      name,
      "-l",
      `127.0.0.1:${port}`,
      "--wait",
      "10s",
    ],
    env: { MRR_ENDPOINT: mr.api },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    // What mrr proxy says goes to a file: its last lines explain a proxy that never answers.
    const logFile = `${mr.dir}/mrr-proxy-${name}.log`;
    child.stderr.pipeTo(
      Deno.openSync(logFile, { create: true, write: true, truncate: true }).writable,
    ).catch(() => {});
    const password = await credentials(mr.api, name);
    await until("mrr proxy", () => setOnce(port, "warmup", password), 60_000, 50).catch(
      async (error) => {
        const said = (await Deno.readTextFile(logFile).catch(() => "")).trim().split("\n")
          .slice(-3).join(" | ");
        throw new Error(`${(error as Error).message}; mrr proxy said: ${said || "nothing"}`);
      },
    );
    const oldPort = Number(before.Master!.Port);
    const pids = await redisPidsOnPort(oldPort);
    if (pids.length !== 1) throw new Error(`Expected one redis-server on port ${oldPort}`);
    const idle = await Promise.all(Array.from({ length: 20 }, () => idleConnection(port)));
    let stop = false;
    let reconnects = 0;
    let firstWrite = 0;
    let killed = 0;
    // Connects again until it gets through (the proxy may refuse for a moment).
    const connect = async (): Promise<Deno.Conn | undefined> => {
      while (!stop) {
        try {
          return await connectAuthed(port, password);
        } catch {
          await sleep(5);
        }
      }
      return undefined;
    };
    const writer = (async () => {
      let conn = await connect();
      const buf = new Uint8Array(256);
      const set = new TextEncoder().encode("*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n1\r\n");
      while (!stop && conn) {
        let n: number | null = null;
        try {
          await conn.write(set);
          n = await conn.read(buf);
        } catch {
          n = null;
        }
        if (n !== null) {
          if (buf[0] === 43 && killed && reconnects > 0 && !firstWrite) {
            firstWrite = performance.now();
          }
          if (buf[0] !== 43) await sleep(5); // an error reply: try again
          continue;
        }
        reconnects++;
        try {
          conn.close();
        } catch {
          // closed
        }
        conn = await connect();
      }
      try {
        conn?.close();
      } catch {
        // closed
      }
    })();
    // Awaited at the end; never an unhandled rejection meanwhile.
    writer.catch(() => {});
    await sleep(300);
    killed = performance.now();
    Deno.kill(pids[0]!, "SIGKILL");
    await until(
      "a new master in STATUS",
      async () => {
        const s = await status(mr.api, name);
        return s?.Master && Number(s.Master.Port) !== oldPort;
      },
      60_000,
      10,
    );
    const promoted = performance.now();
    await until("a write through the proxy after the SIGKILL", () => firstWrite > 0, 60_000, 5);
    stop = true;
    await writer;
    const closedAt = await Promise.all(idle.map((c) => c.closed));
    for (const c of idle) {
      try {
        c.conn.close();
      } catch {
        // closed
      }
    }
    return {
      firstWriteMs: firstWrite - killed,
      reconnects,
      promotedMs: promoted - killed,
      lastOldClosedMs: Math.max(...closedAt) - killed,
    };
  } finally {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    await child.status;
    await destroy(mr.api, name);
  }
}
