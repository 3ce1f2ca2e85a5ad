/**
 * End to end: SIGKILL of the master redis-server of a 1+2 instance, once and
 * then five times in a row. A slave is promoted each time, every write
 * acknowledged by `WAIT 2` is on it, the other slave follows it, a
 * replacement slave is launched, and no two processes ever answer as master.
 */
import { killMasterRedis, masterFailoverScenario, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a SIGKILLed master is replaced by a slave five times in a row without losing acked writes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-kill");
    try {
      const results = await masterFailoverScenario(env, "fk", async (view) => {
        await killMasterRedis(view, "SIGKILL");
      }, 5);
      console.log(
        `first write on the new master after each SIGKILL: ${
          results.map((r) => r.firstWriteMs).join(", ")
        } ms`,
      );
    } finally {
      await env.close();
    }
  },
});
