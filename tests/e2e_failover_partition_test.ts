/**
 * End to end: the executor hosting the master of a 1+2 instance freezes
 * (SIGSTOP), so Mesos can neither hear from it nor kill its redis-server.
 *
 * While the master itself still answers, its executor's silence is only a
 * doubt: the scheduler checks it directly and keeps it (no promotion, however
 * long the silence). When the redis-server freezes too — the shape of a
 * partitioned host: neither the executor nor the process answers — the
 * scheduler promotes a slave and re-points the other; the old master, once
 * thawed and reachable by clients again, must refuse writes (its
 * `min-replicas-to-write` self-fence), so clients never have two writable
 * masters. When the executor thaws, the stale master is killed.
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
    let frozenRedis: number | undefined;
    try {
      const before = await createRunning(env.sched, "fp", 2);
      const values = await writeAcked(before, 200, "p");
      const oldMaster = before.Master!;
      const masterPid = await pidOfPort(oldMaster.Port);
      frozen = await parentPid(masterPid);
      Deno.kill(frozen, "SIGSTOP");

      // 14 s of stats silence (beyond the 10 s after which a silent process
      // that does not answer is lost): the master answers, so it stays.
      const silentUntil = Date.now() + 14_000;
      while (Date.now() < silentUntil) {
        const v = await status(env.sched, "fp");
        assertEquals(
          v?.Master?.Port,
          oldMaster.Port,
          `the answering master was replaced${logTail(env.sched)}`,
        );
        assertEquals(v?.Epoch ?? 0, 0, `a promotion started${logTail(env.sched)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      assertMatch(env.sched.log(), /Task fp\.p1\.1 of fp in doubt \(no stats from its executor/);
      // It takes writes all along (its replicas acknowledge them).
      await withRedis(oldMaster, async (r) => {
        await r.set("while-its-executor-is-frozen", "1");
        assertEquals(await r.call("WAIT", "2", "1000"), 2);
      });
      values.set("while-its-executor-is-frozen", "1");

      // The redis-server freezes too: it does not answer the scheduler either.
      Deno.kill(masterPid, "SIGSTOP");
      frozenRedis = masterPid;
      const promoted = await waitFor(`a new master of fp after the freeze`, async () => {
        const v = await status(env.sched, "fp");
        return v?.Master && v.Master.Port !== oldMaster.Port ? v : undefined;
      }, { timeoutMs: 45_000, intervalMs: 200 }).catch((error) => {
        throw new Error(`${(error as Error).message}${logTail(env.sched)}`);
      });
      await withRedis(promoted.Master!, (r) => r.set("after-promotion", "1"));

      // Thawed (its executor still frozen), the old master runs and answers, but takes no writes.
      Deno.kill(masterPid, "SIGCONT");
      frozenRedis = undefined;
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
      if (frozenRedis !== undefined) Deno.kill(frozenRedis, "SIGCONT");
      if (frozen !== undefined) Deno.kill(frozen, "SIGCONT");
      await env.close();
    }
  },
});
