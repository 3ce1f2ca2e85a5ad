/**
 * End to end: the executor hosting the master of a 1+2 instance freezes
 * (SIGSTOP), so Mesos can neither hear from it nor kill its redis-server —
 * the shape of a partitioned host. The scheduler sees the stats go silent,
 * promotes a slave and re-points the other; the old master, still alive and
 * still reachable by clients, must refuse writes (its `min-replicas-to-write`
 * self-fence), so clients never have two writable masters. When the executor
 * thaws, the stale master is killed.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { redisPids, status, withRedis } from "./_sched.ts";
import {
  assertKeys,
  createRunning,
  logTail,
  parentPid,
  pidOfPort,
  startFailoverEnv,
  waitHealed,
  writeAcked,
} from "./_failover.ts";

Deno.test({
  name: "an old master cut off from Mesos refuses writes once a slave is promoted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-failover-partition");
    let frozen: number | undefined;
    try {
      const before = await createRunning(env.sched, "fp", 2);
      const values = await writeAcked(before, 200, "p");
      const oldMaster = before.Master!;
      frozen = await parentPid(await pidOfPort(oldMaster.Port));
      Deno.kill(frozen, "SIGSTOP");

      // Stats silence (10 s) → the master is declared lost and a slave promoted.
      const promoted = await waitFor(`a new master of fp after the freeze`, async () => {
        const v = await status(env.sched, "fp");
        return v?.Master && v.Master.Port !== oldMaster.Port ? v : undefined;
      }, { timeoutMs: 45_000, intervalMs: 200 }).catch((error) => {
        throw new Error(`${(error as Error).message}${logTail(env.sched)}`);
      });
      await withRedis(promoted.Master!, (r) => r.set("after-promotion", "1"));

      // The old master still runs and answers, but takes no writes.
      assertEquals((await redisPids(oldMaster.Port)).length, 1, "the old master still runs");
      const refusal = await waitFor("the old master to refuse writes", async () => {
        try {
          await withRedis(oldMaster, (r) => r.set("split-brain", "1"));
          return undefined;
        } catch (error) {
          return (error as Error).message;
        }
      }, { timeoutMs: 10_000, intervalMs: 100 });
      assertMatch(refusal, /NOREPLICAS/);

      // Thawed, its executor obeys the kill: the stale master goes away and
      // the instance is whole again with every acknowledged key.
      Deno.kill(frozen, "SIGCONT");
      frozen = undefined;
      await waitFor(
        `the stale master on port ${oldMaster.Port} to be gone or a slave`,
        async () => {
          if ((await redisPids(oldMaster.Port)).length === 0) return true;
          const role = await withRedis(oldMaster, (r) => r.call("ROLE")).catch(() => undefined);
          return Array.isArray(role) && role[0] !== "master";
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      const healed = await waitHealed(env.sched, "fp", oldMaster.Port, 2);
      assert(healed.Epoch! >= 1, "the promotion bumped the epoch");
      await assertKeys(healed.Master!, values);
    } finally {
      if (frozen !== undefined) Deno.kill(frozen, "SIGCONT");
      await env.close();
    }
  },
});
