/**
 * End to end: SIGSTOP of the master redis-server of a 1+2 instance. The
 * executor declares the hang (PING/INFO timeouts), SIGKILLs the stopped
 * process so it can never come back as a master, and a slave takes over
 * with every write acknowledged by `WAIT 2`.
 */
import { assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { redisPids } from "./_sched.ts";
import { masterFailoverScenario, pidOfPort, startFailoverEnv } from "./_failover.ts";

Deno.test({
  name: "a SIGSTOPped master is killed and replaced by a slave without losing acked writes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-stop");
    let stopped: { pid: number; port: string } | undefined;
    try {
      const [result] = await masterFailoverScenario(env, "fs", async (view) => {
        const pid = await pidOfPort(view.Master!.Port);
        Deno.kill(pid, "SIGSTOP");
        stopped = { pid, port: view.Master!.Port };
      });
      console.log(`first write on the new master ${result!.firstWriteMs} ms after the SIGSTOP`);
      await waitFor(
        "the stopped master to be gone for good",
        async () => (await redisPids(stopped!.port)).every((p) => p !== stopped!.pid),
        { timeoutMs: 15_000 },
      );
      assertEquals((await redisPids(stopped!.port)).includes(stopped!.pid), false);
      stopped = undefined;
    } finally {
      if (stopped) {
        try {
          Deno.kill(stopped.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await env.close();
    }
  },
});
