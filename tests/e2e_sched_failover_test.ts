/**
 * End to end failover basics on the local cluster: a killed redis-server of a
 * single instance is relaunched; a killed master of an MS instance is replaced
 * by its most up-to-date slave, the other slave follows it, and a new slave
 * is launched.
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  create,
  deleteAndWait,
  redisPids,
  startSched,
  status,
  waitRunning,
  withRedis,
} from "./_sched.ts";

Deno.test({
  name: "a killed redis-server is relaunched, and a killed master is replaced by a slave",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-failover");
    const sched = await startSched({ dir, dbType: "embedded" });
    try {
      await t.step("single instance: redis-server killed, relaunched", async () => {
        assertEquals((await create(sched, "solo", 20, 0)).status, 201);
        const before = await waitRunning(sched, "solo");
        const [pid] = await redisPids(before.Master!.Port);
        assert(pid, "redis-server pid");
        Deno.kill(pid, "SIGKILL");
        await waitFor(
          "solo to notice",
          async () => (await status(sched, "solo"))?.Status !== "RUNNING",
          {
            timeoutMs: 15_000,
            intervalMs: 50,
          },
        ).catch(() => {}); // it may come back faster than we look
        const after = await waitRunning(sched, "solo", 60_000);
        await withRedis(after.Master!, async (r) => assertEquals(await r.ping(), "PONG"));
        await deleteAndWait(sched, "solo");
      });
      await t.step(
        "MS instance: master killed, a slave promoted, the other re-pointed",
        async () => {
          assertEquals((await create(sched, "pair", 20, 2)).status, 201);
          const before = await waitRunning(sched, "pair");
          await withRedis(before.Master!, (r) => r.set("k", "kept"));
          for (const s of before.Slaves) {
            await withRedis(
              s,
              (r) =>
                waitFor("replicated", async () => (await r.get("k")) === "kept", {
                  timeoutMs: 10_000,
                }),
            );
          }
          const [pid] = await redisPids(before.Master!.Port);
          assert(pid, "master pid");
          Deno.kill(pid, "SIGKILL");
          const slavePorts = before.Slaves.map((s) => s.Port);
          const promoted = await waitFor("a slave to become master", async () => {
            const v = await status(sched, "pair");
            return v?.Master && slavePorts.includes(v.Master.Port) ? v : undefined;
          }, { timeoutMs: 30_000, intervalMs: 100 });
          const after = await waitRunning(sched, "pair", 60_000);
          assertEquals(after.Master!.Port, promoted.Master!.Port);
          assertEquals(after.Slaves.length, 2);
          await withRedis(after.Master!, async (r) => {
            assertEquals(await r.get("k"), "kept");
            const info = await r.info("replication");
            assert(/role:master/.test(info), info);
            assert(/connected_slaves:2/.test(info), info);
            await r.set("k2", "new");
          });
          for (const s of after.Slaves) {
            await withRedis(
              s,
              (r) =>
                waitFor(
                  "replicated from the new master",
                  async () => (await r.get("k2")) === "new",
                  {
                    timeoutMs: 10_000,
                  },
                ),
            );
          }
          await deleteAndWait(sched, "pair");
        },
      );
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
