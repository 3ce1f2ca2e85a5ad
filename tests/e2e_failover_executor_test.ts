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
      let redisPid = 0;
      const [result] = await masterFailoverScenario(env, "fe", async (view) => {
        port = view.Master!.Port;
        redisPid = await pidOfPort(port);
        const executor = await parentPid(redisPid);
        Deno.kill(executor, "SIGKILL");
      });
      console.log(
        `first write on the new master ${result!.firstWriteMs} ms after the executor SIGKILL`,
      );
      // The process itself (its port may be taken again: the old master is
      // relaunched as a slave on its agent and, being free, its old port).
      await waitFor(
        `the redis-server of the dead executor (port ${port}, pid ${redisPid}) to be gone`,
        async () => !(await redisPids(port)).includes(redisPid),
        { timeoutMs: 15_000 },
      );
    } finally {
      await env.close();
    }
  },
});
