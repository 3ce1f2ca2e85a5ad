/**
 * End to end: a single instance. Its redis-server SIGKILLed on a live agent
 * is restarted in place (same agent, same data dir), so a key written before
 * is still there; when its agent is lost it is launched elsewhere and STATUS
 * says the data could not be kept.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { status, type View, waitRunning, withRedis } from "./_sched.ts";
import { killMasterRedis, logTail, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a single redis restarts in place with its data; on a lost agent it moves and says so",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const env = await startFailoverEnv("e2e-failover-single");
    try {
      const res = await fetch(`${env.sched.url}/v1/CREATE/solo/20/1/0`, { method: "POST" });
      assertEquals(res.status, 201, await res.text());
      let view = await waitRunning(env.sched, "solo");

      await t.step("SIGKILL of redis-server: restarted in place, the data kept", async () => {
        await withRedis(view.Master!, (r) => r.set("kept", "yes"));
        const agent = env.agentOfPort(view.Master!.Port);
        await killMasterRedis(view, "SIGKILL");
        await waitFor("solo to notice", async () => {
          const v = await status(env.sched, "solo");
          return v?.Status !== "RUNNING" || v.Master?.Port !== view.Master!.Port;
        }, { timeoutMs: 15_000, intervalMs: 20 }).catch(() => {});
        view = await waitFor("solo RUNNING again and answering", async () => {
          const v = await waitRunning(env.sched, "solo", 30_000);
          await withRedis(v.Master!, (r) => r.ping());
          return v;
        }, { timeoutMs: 45_000, intervalMs: 200 });
        assertEquals(env.agentOfPort(view.Master!.Port), agent, "same agent");
        await withRedis(view.Master!, async (r) => assertEquals(await r.get("kept"), "yes"));
      });

      await t.step("agent lost: launched elsewhere, STATUS says the data is lost", async () => {
        const agent = env.agentOfPort(view.Master!.Port);
        await env.cluster.stopAgent(agent);
        let moved: View | undefined;
        try {
          moved = await waitFor("solo RUNNING on another agent", async () => {
            const v = await status(env.sched, "solo");
            if (v?.Status !== "RUNNING" || !v.Master) return undefined;
            return env.agentOfPort(v.Master.Port) !== agent ? v : undefined;
          }, { timeoutMs: 45_000, intervalMs: 200 });
        } catch (error) {
          throw new Error(`${(error as Error).message}${logTail(env.sched)}`);
        }
        assertMatch(moved.LastEvent ?? "", /could not be kept/);
        await withRedis(moved.Master!, async (r) => {
          assertEquals(await r.get("kept"), null, "a fresh server");
          assert(await r.set("new", "1"));
        });
      });
    } finally {
      await env.close();
    }
  },
});
