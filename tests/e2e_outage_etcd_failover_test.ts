/**
 * End to end: etcd stopped for 15 s while a master redis-server dies. The
 * leader steps down without exiting, promotes nothing it cannot persist,
 * answers STATUS from its last view marked stale, and once etcd is back leads
 * again: CREATE is accepted within about 2 s, the failover that waited
 * finishes, and no write a replica acknowledged is lost.
 */
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { startEtcd } from "./_services.ts";
import { create, deleteAndWait, redisPids, waitRunning, withRedis } from "./_sched.ts";
import { assertKeys, waitHealed } from "./_failover.ts";
import {
  AckedWriter,
  assertAlive,
  createWhenBack,
  health,
  startOutageEnv,
  step,
  tail,
  waitReady,
} from "./_outage.ts";

Deno.test({
  name: "etcd stopped for 15 s during a failover: no exit, no write lost, CREATE soon after",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const env = await startOutageEnv("e2e-outage-etcd-fo", "etcd", startEtcd);
    try {
      const sched = await env.spawn("a");
      await waitReady(sched);
      assertEquals((await create(sched, "fo", 30, 2)).status, 201);
      const before = await waitRunning(sched, "fo", 60_000);
      const writer = new AckedWriter(sched, "fo", "fo");
      await waitFor("some acknowledged writes", () => writer.acked.size >= 50);

      let stoppedAt = 0;
      await step(
        t,
        env,
        "etcd stops: the leader steps down, serving STATUS marked stale",
        async () => {
          const offset = sched.log().length;
          await env.store.kill();
          stoppedAt = Date.now();
          await waitFor(
            "the step-down",
            () => /Lost leadership: /.test(sched.log().slice(offset)),
            { timeoutMs: 30_000 },
          );
          const res = await fetch(`${sched.url}/v1/STATUS/fo`);
          assertEquals(res.status, 200);
          const view = await res.json();
          assertEquals(view.Stale, true, JSON.stringify(view));
          assert(typeof view.StaleSeconds === "number", "StaleSeconds");
          assert(res.headers.get("x-mrr-stale") !== null, "X-Mrr-Stale header");
          const h = await health(sched);
          assertEquals(h.status, 503);
          assertEquals(h.body.Role, "standby");
          assert(h.body.Store.startsWith("unreachable"), h.body.Store);
          const post = await create(sched, "refused", 20, 0);
          assertEquals(post.status, 503, post.text);
        },
      );

      let oldPort = "";
      await step(t, env, "the master dies while etcd is down: nobody is promoted", async () => {
        oldPort = before.Master!.Port;
        const [pid] = await redisPids(oldPort);
        assert(pid, `a redis-server on ${oldPort}`);
        Deno.kill(pid, "SIGKILL");
        await waitFor("the old master gone", async () => (await redisPids(oldPort)).length === 0);
        // Give a (wrong) promotion time to happen; none may, for none can be persisted.
        await new Promise((r) => setTimeout(r, 3_000));
        for (const s of before.Slaves) {
          const role = await withRedis(s, (r) => r.call("ROLE") as Promise<unknown[]>);
          assertEquals(role[0], "slave", `${s.Port} still a slave while etcd is down`);
        }
        assertAlive(sched);
      });

      await step(
        t,
        env,
        "etcd back after 15 s: CREATE accepted, the failover finishes",
        async () => {
          const wait = 15_000 - (Date.now() - stoppedAt);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          await env.store.restart();
          const backAt = Date.now();
          console.log(`  etcd was down ${backAt - stoppedAt} ms`);
          const took = await createWhenBack(sched, "after", backAt);
          console.log(`  CREATE accepted ${took} ms after etcd answered again`);
          const healed = await waitHealed(sched, "fo", oldPort, 2, 90_000);
          assert(healed.Epoch! > (before.Epoch ?? 0), "a new epoch");
          await waitFor("writes on the new master", () => writer.acked.size > 0);
          const ackedBefore = writer.acked.size;
          await waitFor(
            "more acknowledged writes on the new master",
            () => writer.acked.size > ackedBefore + 20,
            { timeoutMs: 30_000 },
          );
          await writer.stop();
          await assertKeys(healed.Master!, writer.acked);
          console.log(`  ${writer.acked.size} acknowledged writes, none lost`);
          await waitRunning(sched, "after", 60_000);
          assertAlive(sched);
          assert(!/exiting with code/.test(sched.log()), `no exit${tail(sched)}`);
        },
      ).finally(() => writer.stop());

      await step(t, env, "clean up", async () => {
        await deleteAndWait(sched, "after");
        await deleteAndWait(sched, "fo");
      });
    } finally {
      await env.close();
    }
  },
});
