/**
 * End to end: etcd stopped for 15 s right after a CREATE was accepted, before
 * its processes ran. The scheduler does not exit, refuses new CREATEs with 503
 * while etcd is away (at once, no hanging request), accepts CREATE again
 * within about 2 s of etcd's return, and the interrupted instance ends
 * RUNNING with one redis-server per process.
 */
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { startEtcd } from "./_services.ts";
import { create, deleteAndWait, redisPids, waitRunning } from "./_sched.ts";
import { writeAcked } from "./_failover.ts";
import { assertAlive, createWhenBack, startOutageEnv, step, tail, waitReady } from "./_outage.ts";
import { assertKeys } from "./_failover.ts";

Deno.test({
  name: "etcd stopped for 15 s during a CREATE: no exit, the instance ends RUNNING",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const env = await startOutageEnv("e2e-outage-etcd-create", "etcd", startEtcd);
    try {
      const sched = await env.spawn("a");
      await waitReady(sched);

      let stoppedAt = 0;
      await step(t, env, "CREATE accepted, then etcd stops at once", async () => {
        assertEquals((await create(sched, "mid", 30, 1)).status, 201);
        await env.store.kill();
        stoppedAt = Date.now();
      });

      await step(
        t,
        env,
        "while etcd is away CREATE answers 503 and the process runs on",
        async () => {
          await waitFor("the step-down", () => /Lost leadership: /.test(sched.log()), {
            timeoutMs: 30_000,
          });
          const started = Date.now();
          const post = await create(sched, "refused", 20, 0);
          assertEquals(post.status, 503, post.text);
          console.log(`  CREATE refused in ${Date.now() - started} ms while etcd is away`);
          const res = await fetch(`${sched.url}/v1/STATUS`);
          assertEquals(res.status, 200);
          const views = await res.json() as { Name: string; Stale?: boolean }[];
          assertEquals(views.map((v) => v.Name), ["mid"]);
          assert(views.every((v) => v.Stale === true), JSON.stringify(views));
          assertAlive(sched);
        },
      );

      await step(
        t,
        env,
        "etcd back after 15 s: CREATE accepted again, the instance runs",
        async () => {
          const wait = 15_000 - (Date.now() - stoppedAt);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          await env.store.restart();
          const backAt = Date.now();
          const took = await createWhenBack(sched, "after", backAt);
          console.log(`  CREATE accepted ${took} ms after etcd answered again`);
          const mid = await waitRunning(sched, "mid", 90_000);
          for (const p of [mid.Master!, ...mid.Slaves]) {
            assertEquals((await redisPids(p.Port)).length, 1, `one redis-server on ${p.Port}`);
          }
          const values = await writeAcked(mid, 100, "mid");
          await assertKeys(mid.Master!, values);
          await waitRunning(sched, "after", 60_000);
          assertAlive(sched);
          assert(!/exiting with code/.test(sched.log()), `no exit${tail(sched)}`);
        },
      );

      await step(t, env, "clean up", async () => {
        await deleteAndWait(sched, "after");
        await deleteAndWait(sched, "mid");
      });
    } finally {
      await env.close();
    }
  },
});
