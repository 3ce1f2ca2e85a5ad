/**
 * How long the clients of a running instance wait while another instance is
 * created on the same agents: a `PING` loop through the running instance's
 * proxy and another one straight to its master, first idle, then during a
 * create of 1 master + N slaves. The proxy runs in an executor that also
 * starts some of the new redis-servers. On the executor's own thread, which
 * each spawn holds, it waited up to 0.5–1.25 s on this 2-core machine
 * (bench/RESULTS.md, round 16); on the proxy thread it waits about as long as
 * a request straight to the master (lib/proxy/README.md, "Proxy tasks").
 *
 *     deno run -A bench/proxy_stall.ts [slaves] [distribution]
 *
 * Not a benchmark (no baseline, no goal): a diagnosis to read next to it.
 *
 * @module
 */
import {
  create,
  credentials,
  destroy,
  startMrRedis,
  type Status,
  waitStatusRunning,
} from "./_harness.ts";
import { RedisClient } from "../lib/redis/client.ts";

/** PINGs `client` one after another until `stop.done`; the latency of each, in ms. */
async function pingLoop(client: RedisClient, stop: { done: boolean }): Promise<number[]> {
  const latencies: number[] = [];
  while (!stop.done) {
    const started = performance.now();
    await client.call("PING", [], 5000);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

function summary(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
  return `n=${sorted.length} p50 ${at(0.5).toFixed(2)} p99 ${at(0.99).toFixed(1)} max ${
    sorted.at(-1)!.toFixed(1)
  } ms`;
}

if (import.meta.main) {
  const slaves = Number(Deno.args[0] ?? 50);
  const distribution = Number(Deno.args[1] ?? 20);
  const dir = await Deno.makeTempDir({ prefix: "mr-redis-proxy-stall-" });
  const mr = await startMrRedis(dir, { agents: 3, cpus: 64, memMB: 65536 });
  try {
    // The running instance: a master, 2 slaves, proxies on the agents.
    await create(mr.api, "running", 10, 2, 1);
    await waitStatusRunning(mr.api, "running");
    const status = await (await fetch(`${mr.api}/v1/STATUS/running`)).json() as Status & {
      Proxies: { IP: string; Port: string }[];
    };
    const password = await credentials(mr.api, "running");
    const proxy = status.Proxies[0];
    if (!proxy || !status.Master) throw new Error("the running instance has no proxy or master");
    const viaProxy = new RedisClient({ host: proxy.IP, port: Number(proxy.Port), password });
    const toMaster = new RedisClient({
      host: status.Master.IP,
      port: Number(status.Master.Port),
      password,
    });
    try {
      for (const phase of ["idle for 1.5 s", `while 1+${slaves} is created`]) {
        const stop = { done: false };
        const loops = [pingLoop(viaProxy, stop), pingLoop(toMaster, stop)];
        if (phase.startsWith("idle")) {
          await new Promise((resolve) => setTimeout(resolve, 1500));
        } else {
          await create(mr.api, "new", 10, slaves, distribution);
          await waitStatusRunning(mr.api, "new");
        }
        stop.done = true;
        const [proxied, direct] = await Promise.all(loops);
        console.log(
          `${phase}: through the proxy ${summary(proxied!)}; straight to the master ${
            summary(direct!)
          }`,
        );
      }
    } finally {
      viaProxy.close();
      toMaster.close();
    }
    await destroy(mr.api, "new");
    await destroy(mr.api, "running");
  } finally {
    await mr.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
