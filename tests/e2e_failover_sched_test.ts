/**
 * End to end: the scheduler is SIGKILLed in the middle of a failover (right
 * after the master redis-server is killed, and a little later) and started
 * again. It finishes the failover from the store's record: exactly one
 * promotion per failure (epoch), one master, no acknowledged write lost.
 */
import { killMasterRedis, masterFailoverScenario, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a scheduler killed during a failover finishes it after its restart, with one master",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-sched");
    try {
      const delays = [0, 60];
      let round = 0;
      await masterFailoverScenario(env, "fsr", async (view) => {
        const delay = delays[round++] ?? 0;
        await killMasterRedis(view, "SIGKILL");
        if (delay) await new Promise((r) => setTimeout(r, delay));
        await env.restartSched("kill");
      }, delays.length);
    } finally {
      await env.close();
    }
  },
});
