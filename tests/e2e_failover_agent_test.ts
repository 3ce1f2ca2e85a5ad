/**
 * End to end: the agent hosting the master of a 1+2 instance stops (a lost
 * host). The master declares the agent unreachable after its ping timeout
 * (2 s here); the scheduler fences the old master and promotes a slave, with
 * every write acknowledged by `WAIT 2`; the replacement slave goes to the
 * agent left.
 */
import { masterFailoverScenario, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a stopped agent's master is replaced by a slave without losing acked writes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Four agents: the three processes keep Distribution 1 after one is lost.
    const env = await startFailoverEnv("e2e-failover-agent", 4);
    try {
      const [result] = await masterFailoverScenario(env, "fa", async (view) => {
        await env.cluster.stopAgent(env.agentOfPort(view.Master!.Port));
      });
      console.log(
        `first write on the new master ${result!.firstWriteMs} ms after the agent stopped`,
      );
    } finally {
      await env.close();
    }
  },
});
