/**
 * End to end: every redis-server of a 1+2 instance SIGKILLed at once. No
 * slave can take over, so the master is relaunched (in place, from its AOF,
 * when its agent offers in time) and the slaves after it; the instance is
 * back to 1+2 RUNNING and no two processes ever answer as master.
 */
import { assertEquals } from "./_assert.ts";
import {
  createRunning,
  logTail,
  MasterSampler,
  pidOfPort,
  startFailoverEnv,
  writeAcked,
} from "./_failover.ts";
import { status, waitRunning, withRedis } from "./_sched.ts";
import { waitFor } from "./_util.ts";

Deno.test({
  name: "an instance whose processes all die at once comes back with a master and its slaves",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-all");
    let sampler: MasterSampler | undefined;
    try {
      const before = await createRunning(env.sched, "fall", 2);
      sampler = new MasterSampler(env, "fall");
      await writeAcked(before, 100, "all");
      const pids = await Promise.all(
        [before.Master!, ...before.Slaves].map((p) => pidOfPort(p.Port)),
      );
      for (const pid of pids) Deno.kill(pid, "SIGKILL");
      await waitFor("fall to notice", async () => {
        return (await status(env.sched, "fall"))?.Status !== "RUNNING";
      }, { timeoutMs: 15_000, intervalMs: 20 }).catch(() => {});
      const after = await waitRunning(env.sched, "fall", 60_000).catch((error) => {
        throw new Error(`${(error as Error).message}${logTail(env.sched)}`);
      });
      assertEquals(after.Slaves.length, 2);
      await withRedis(after.Master!, async (r) => {
        assertEquals(await r.set("after", "1"), "OK");
        console.log(`key written before: ${await r.get("all:k0") ?? "(lost)"}`);
      });
      await sampler.stopAndCheck();
      sampler = undefined;
    } finally {
      await sampler?.stopAndCheck().catch(() => {});
      await env.close();
    }
  },
});
