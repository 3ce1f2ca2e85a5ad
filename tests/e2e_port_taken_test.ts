/**
 * End to end on the local cluster: Mesos offers ports it believes free, but
 * a process it does not know may hold one. redis-server then cannot listen
 * and its task fails at start; the relaunch must take another port, not try
 * the same one again and again (before, the instance stayed CREATING with a
 * growing backoff).
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { logTail, PORTS_PER_AGENT, startFailoverEnv } from "./_failover.ts";
import { create, waitRunning, withRedis } from "./_sched.ts";

Deno.test({
  name: "a port held by a process Mesos does not know: the task is relaunched on another port",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-port-taken", 3);
    const held: Deno.Listener[] = [];
    try {
      // The first ports of every agent's range: where a first task goes.
      for (let agent = 0; agent < env.agents; agent++) {
        for (let i = 0; i < 2; i++) {
          held.push(
            Deno.listen({
              hostname: "127.0.0.1",
              port: env.portsBase + agent * PORTS_PER_AGENT + i,
            }),
          );
        }
      }
      const taken = new Set(held.map((l) => (l.addr as Deno.NetAddr).port));
      assertEquals((await create(env.sched, "taken", 20, 0, { Proxies: 0 })).status, 201);
      const view = await waitRunning(env.sched, "taken", 90_000).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      assert(!taken.has(Number(view.Master!.Port)), `runs on ${view.Master!.Port}, a held port`);
      // It did meet a held port first (else this test proves nothing).
      assertMatch(env.sched.log(), /Task taken\.p1\.1 of taken lost: TASK_FAILED/);
      await withRedis(view.Master!, async (r) => {
        assertEquals(await r.set("k", "v"), "OK");
      });
    } finally {
      for (const l of held) l.close();
      await env.close();
    }
  },
});
