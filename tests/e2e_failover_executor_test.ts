/**
 * End to end: SIGKILL of the executor hosting the master of a 1+2 instance.
 * The agent kills the executor's redis-servers with it (as a Mesos container
 * would) and reports TASK_FAILED; a slave takes over with every write
 * acknowledged by `WAIT 2`.
 */
import { waitFor } from "./_util.ts";
import { redisPids } from "./_sched.ts";
import { masterFailoverScenario, parentPid, pidOfPort, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a SIGKILLed executor takes its master down with it and a slave takes over",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-executor");
    try {
      let port = "";
      const [result] = await masterFailoverScenario(env, "fe", async (view) => {
        port = view.Master!.Port;
        const executor = await parentPid(await pidOfPort(port));
        Deno.kill(executor, "SIGKILL");
      });
      console.log(
        `first write on the new master ${result!.firstWriteMs} ms after the executor SIGKILL`,
      );
      await waitFor(
        `the redis-server of the dead executor (port ${port}) to be gone`,
        async () => (await redisPids(port)).length === 0,
        { timeoutMs: 15_000 },
      );
    } finally {
      await env.close();
    }
  },
});
