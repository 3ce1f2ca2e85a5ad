/**
 * End to end on the local cluster: a proxy task whose executor is frozen
 * (SIGSTOP). Mesos still says RUNNING and the kernel still accepts
 * connections on the proxy's port, but nothing answers them. The scheduler
 * hears nothing from that executor, PINGs the proxy itself, and once both
 * last it launches the proxy again on another agent; STATUS shows the new
 * address, which serves. When the executor is resumed the old proxy task is
 * killed and its port closes.
 */
import { Redis } from "ioredis";
import { assert, assertEquals, assertMatch, assertNotEquals } from "./_assert.ts";
import { logTail, startFailoverEnv } from "./_failover.ts";
import { listenerPid, listening } from "./_listeners.ts";
import { create, password, status, type View } from "./_sched.ts";
import { waitFor } from "./_util.ts";

interface ProxyStatus extends View {
  Proxies: { IP: string; Port: string; Id: string }[];
}

Deno.test({
  name: "proxy tasks: a proxy in a frozen executor is launched again elsewhere",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-proxy-stop", 3);
    let frozen: number | undefined;
    try {
      assertEquals((await create(env.sched, "pz", 20, 0, { Proxies: 2 })).status, 201);
      const running = await waitFor("pz RUNNING with 2 proxies", async () => {
        const v = await status(env.sched, "pz") as ProxyStatus | undefined;
        return v?.Status === "RUNNING" && v.Proxies.length === 2 ? v : undefined;
      }, { timeoutMs: 90_000, intervalMs: 250 });
      // A proxy on an agent without the redis-server: its executor hosts that proxy alone.
      const redisAgent = env.agentOfPort(running.Master!.Port);
      const victim = running.Proxies.find((p) => env.agentOfPort(p.Port) !== redisAgent)!;
      const frozenAgent = env.agentOfPort(victim.Port);
      const pid = listenerPid(Number(victim.Port));
      assert(pid !== undefined, `the process listening on ${victim.Port}`);
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
      assertMatch(cmdline, /executor/i, `${pid} is an executor: ${cmdline}`);

      Deno.kill(pid, "SIGSTOP");
      frozen = pid;
      const secret = await password(env.sched, "pz");
      const moved = await waitFor(
        `proxy ${victim.Id} launched off agent ${frozenAgent}`,
        async () => {
          const v = await status(env.sched, "pz") as ProxyStatus | undefined;
          const p = v?.Proxies.find((x) => x.Id === victim.Id);
          return p && p.Port !== victim.Port ? p : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      assertNotEquals(env.agentOfPort(moved.Port), frozenAgent, "the frozen agent is avoided");
      assertMatch(
        env.sched.log(),
        new RegExp(
          `Proxy task pz\\.${victim.Id}\\.1 of pz lost: No stats from its executor for \\d+ s and it does not answer the scheduler`,
        ),
      );
      // The redis-server next to the frozen executor was not touched: the instance kept its master.
      const after = await status(env.sched, "pz") as ProxyStatus;
      assertEquals(after.Master?.Port, running.Master!.Port);
      const r = new Redis({
        host: moved.IP,
        port: Number(moved.Port),
        ...(secret ? { password: secret } : {}),
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        commandTimeout: 10_000,
      });
      r.on("error", () => {});
      try {
        await r.connect();
        assertEquals(await r.set("through", "the new proxy"), "OK");
        assertEquals(await r.get("through"), "the new proxy");
      } finally {
        r.disconnect();
      }

      // Resumed, the executor gets the KILL of the old task: its port closes.
      Deno.kill(pid, "SIGCONT");
      frozen = undefined;
      await waitFor(
        `old proxy port ${victim.Port} closed`,
        async () => !(await listening(Number(victim.Port))),
        { timeoutMs: 60_000, intervalMs: 250 },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      const final = await status(env.sched, "pz") as ProxyStatus;
      assertEquals(final.Proxies.length, 2);
      assert(final.Proxies.every((p) => p.Port !== victim.Port), JSON.stringify(final.Proxies));
    } finally {
      if (frozen !== undefined) {
        try {
          Deno.kill(frozen, "SIGCONT");
        } catch { /* gone */ }
      }
      await env.close();
    }
  },
});
