/**
 * Proxy throughput: redis-benchmark (50 clients, `-t set,get`, pipelines 1
 * and 16) against one redis-server reached directly, through nutcracker
 * (twemproxy, `redis: true`), through HAProxy in TCP mode and through the
 * mr-redis proxy (a process of its own), side by side in one run with the
 * order rotated each round.
 *
 * @module
 */
import { freePort, median, sleep, startRedis, until } from "./_harness.ts";

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
  /** Rounds per pipeline depth (each round measures every target once). */
  runs: number;
  /** Requests per redis-benchmark test at pipeline 1 (16 gets 4×). */
  requests: number;
  log: (line: string) => void;
}

type Target = "direct" | "nutcracker" | "haproxy" | "proxy";
const TARGETS: Target[] = ["direct", "nutcracker", "haproxy", "proxy"];

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

/** Runs the throughput comparison; returns the rows for RESULTS.md. */
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
      const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).spawn();
      stops.push(async () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
        await child.status;
      });
      return child;
    };
    spawn("nutcracker", ["-c", `${dir}/nutcracker.yml`, "-o", `${dir}/nutcracker.log`]);
    spawn("haproxy", ["-f", `${dir}/haproxy.cfg`, "-db"]);
    spawn(Deno.execPath(), [
      "run",
      "-A",
      "--unstable-net",
      new URL("../cmd/mrr.ts", import.meta.url).pathname,
      "proxy",
      "--threads",
      "2",
      "--master",
      `127.0.0.1:${redisPort}`,
      "-l",
      `127.0.0.1:${ports.proxy}`,
    ]);
    for (const t of TARGETS) await waitPort(t, ports[t]);
    await sleep(500);

    const rows: ProxyBenchRow[] = [];
    for (const pipeline of [1, 16]) {
      const samples: Record<Target, number[]> = {
        direct: [],
        nutcracker: [],
        haproxy: [],
        proxy: [],
      };
      const requests = options.requests * (pipeline === 1 ? 1 : 4);
      for (let round = 0; round < options.runs; round++) {
        for (let k = 0; k < TARGETS.length; k++) {
          const t = TARGETS[(k + round) % TARGETS.length]!;
          samples[t].push(await redisBenchmark(ports[t], pipeline, requests));
        }
        options.log(
          `proxy throughput P${pipeline} round ${round + 1}: ${
            TARGETS.map((t) => `${t} ${Math.round(samples[t].at(-1)!)}`).join(", ")
          } req/s`,
        );
      }
      const m = (t: Target) => median(samples[t]);
      const direct = `direct ${Math.round(m("direct"))} req/s; proxy ${
        (m("proxy") / m("direct")).toFixed(2)
      }× direct, nutcracker ${(m("nutcracker") / m("direct")).toFixed(2)}×, HAProxy ${
        (m("haproxy") / m("direct")).toFixed(2)
      }×`;
      for (
        const [other, label] of [["nutcracker", "nutcracker"], ["haproxy", "HAProxy TCP"]] as const
      ) {
        const ratio = m("proxy") / m(other);
        rows.push({
          name: `proxy throughput, 50 clients, set+get, pipeline ${pipeline}, vs ${label}`,
          goal: `≥ 1.0× ${label}`,
          unit: "req/s",
          baselineName: label,
          baseline: samples[other],
          measured: samples.proxy,
          ratio,
          met: ratio >= 1,
          notes: [
            `${direct}; samples proxy ${samples.proxy.map(Math.round).join(", ")}, ${label} ${
              samples[other].map(Math.round).join(", ")
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
