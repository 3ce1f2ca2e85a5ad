/**
 * End to end: ZooKeeper stopped for 15 s under two schedulers. The leader
 * steps down without exiting (STATUS from its last view, marked stale), the
 * standby never names itself as the leader, and once ZooKeeper is back one of
 * them leads again: CREATE is accepted through it, the other names it, and
 * the instance made before the outage still runs with its data.
 */
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { startZooKeeper } from "./_services.ts";
import { create, deleteAndWait, type Sched, status, waitRunning } from "./_sched.ts";
import { assertKeys, writeAcked } from "./_failover.ts";
import {
  assertAlive,
  createWhenBack,
  health,
  type OutageSched,
  startOutageEnv,
  step,
  tail,
  waitReady,
} from "./_outage.ts";

/** The leader a standby names for a refused DELETE (header `X-Mrr-Leader`), or "". */
async function named(sched: Sched): Promise<string> {
  const res = await fetch(`${sched.url}/v1/DELETE/no-such-instance`, {
    method: "DELETE",
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return res.status === 503 ? res.headers.get("x-mrr-leader") ?? "" : "(leads)";
}

Deno.test({
  name: "ZooKeeper stopped for 15 s: the leader steps down, then one scheduler leads again",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const env = await startOutageEnv("e2e-outage-zk", "zookeeper", startZooKeeper);
    try {
      const a = await env.spawn("a", { ttlSeconds: 10 });
      await waitReady(a);
      const b = await env.spawn("b", { ttlSeconds: 10 });
      await waitFor("B to name A", async () => (await named(b)) === a.url, { timeoutMs: 20_000 });
      assertEquals((await create(a, "zk", 30, 1)).status, 201);
      const before = await waitRunning(a, "zk", 60_000);
      const values = await writeAcked(before, 100, "zk");

      let stoppedAt = 0;
      await step(
        t,
        env,
        "ZooKeeper stops: A steps down and serves STATUS marked stale",
        async () => {
          await env.store.kill();
          stoppedAt = Date.now();
          await waitFor("A's step-down", () => /Lost leadership: /.test(a.log()), {
            timeoutMs: 40_000,
          });
          const res = await fetch(`${a.url}/v1/STATUS/zk`);
          assertEquals(res.status, 200);
          const view = await res.json();
          assertEquals(view.Stale, true, JSON.stringify(view));
          assertEquals((await health(a)).status, 503);
          for (const s of [a, b]) {
            const leader = await named(s);
            assert(leader !== s.url, `${s.url} names itself as the leader`);
          }
          assertAlive(a);
          assertAlive(b);
        },
      );

      let leader!: OutageSched;
      let other!: OutageSched;
      await step(t, env, "ZooKeeper back after 15 s: one leads, the other names it", async () => {
        const wait = 15_000 - (Date.now() - stoppedAt);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await env.store.restart();
        const backAt = Date.now();
        leader = await waitFor("a leader", async () => {
          for (const s of [a, b]) {
            assertAlive(s);
            if ((await health(s).catch(() => undefined))?.status === 200) return s;
          }
          return undefined;
        }, { timeoutMs: 60_000 });
        other = leader === a ? b : a;
        console.log(
          `  ${leader === a ? "A" : "B"} leads ${Date.now() - backAt} ms after ZooKeeper returned`,
        );
        const took = await createWhenBack(leader, "after", backAt);
        console.log(`  CREATE accepted ${took} ms after ZooKeeper answered again`);
        await waitFor(
          "the other to name the leader",
          async () => (await named(other)) === leader.url,
          { timeoutMs: 30_000 },
        );
        assertEquals((await health(other)).status, 503);
        const zk = await waitRunning(leader, "zk", 60_000);
        assertEquals(zk.Master!.Port, before.Master!.Port, "the same master");
        await assertKeys(zk.Master!, values);
        await waitRunning(leader, "after", 60_000);
        assertEquals((await status(other, "zk"))?.Name, "zk");
        for (const s of [a, b]) {
          assertAlive(s);
          assert(!/exiting with code/.test(s.log()), `no exit${tail(s)}`);
        }
      });

      await step(t, env, "clean up", async () => {
        await deleteAndWait(leader, "after");
        await deleteAndWait(leader, "zk");
      });
    } finally {
      await env.close();
    }
  },
});
