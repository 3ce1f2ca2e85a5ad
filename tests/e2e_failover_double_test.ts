/**
 * End to end on the local cluster: a 1+1 instance loses its master and then,
 * while the slave is being promoted (its AOF being written for the first
 * time), the slave too. The promoted process's AOF may be unfinished: started
 * from it, it would come back empty and wipe the old master's data by a full
 * sync. The scheduler instead makes the master before it master again, from
 * its own data dir. Every acknowledged key must be there afterwards,
 * whichever way the race between the kill and the promotion went (the test
 * says which).
 */
import { assert, assertEquals } from "./_assert.ts";
import { assertKeys, logTail, pidOfPort, startFailoverEnv, writeAcked } from "./_failover.ts";
import { create, status, waitRunning, withRedis } from "./_sched.ts";
import { waitFor } from "./_util.ts";

/** Keys written before the failures: enough that the first AOF rewrite takes a while. */
const BULK = 600_000;
const BATCH = 50_000;

Deno.test({
  name: "master and promoted slave lost one after the other: no acknowledged key lost",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-double", 3);
    try {
      assertEquals((await create(env.sched, "dd", 300, 1)).status, 201);
      const view = await waitRunning(env.sched, "dd", 90_000);
      await withRedis(view.Master!, async (r) => {
        for (let done = 0; done < BULK; done += BATCH) {
          const pipe = r.pipeline();
          for (let i = done; i < done + BATCH; i++) pipe.set(`bulk:${i}`, `v${i}`);
          const results = await pipe.exec();
          assert(results?.every(([e]) => e === null), "every bulk SET succeeded");
        }
        // On a busy machine the slave may take a while to catch up with the bulk.
        await waitFor(
          "the bulk on the slave",
          async () => Number(await r.call("WAIT", "1", "5000")) === 1,
          { timeoutMs: 120_000, intervalMs: 100 },
        );
      });
      const acked = await writeAcked(view, 200, "acked");
      const masterPid = await pidOfPort(view.Master!.Port);
      const slavePid = await pidOfPort(view.Slaves[0]!.Port);

      Deno.kill(masterPid, "SIGKILL");
      // The slave dies as soon as its promotion starts.
      await waitFor(
        "the promotion to start",
        () => /Instance dd: promoting p\d/.test(env.sched.log()),
        { timeoutMs: 60_000, intervalMs: 5 },
      ).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      Deno.kill(slavePid, "SIGKILL");
      const reverted = await waitFor("the promotion to end either way", () => {
        const log = env.sched.log();
        if (/lost while being promoted/.test(log)) return "reverted";
        if (/Instance dd: p\d is the master/.test(log)) return "promoted";
        return undefined;
      }, { timeoutMs: 60_000, intervalMs: 20 }).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      console.log(
        reverted === "reverted"
          ? "the slave died mid-promotion: the old master is master again"
          : "the promotion ended before the slave died",
      );

      const after = await waitFor("dd RUNNING with its slave", async () => {
        const v = await status(env.sched, "dd");
        return v?.Status === "RUNNING" && v.Slaves.length === 1 ? v : undefined;
      }, { timeoutMs: 180_000, intervalMs: 250 }).catch((e) => {
        throw new Error(`${(e as Error).message}${logTail(env.sched)}`);
      });
      if (reverted === "reverted") {
        assertEquals(after.Master!.Port, view.Master!.Port, "the old master is back in place");
      }
      await assertKeys(after.Master!, acked);
      await withRedis(after.Master!, async (r) => {
        const size = Number(await r.dbsize());
        assert(size >= BULK + acked.size, `${size} keys on the master, want ${BULK + acked.size}`);
      });
    } finally {
      await env.close();
    }
  },
});
