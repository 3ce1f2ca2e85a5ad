/**
 * End to end with the embedded store: the real sched process on the local Mesos
 * cluster creates, serves, deletes and re-creates S and MS instances.
 */
import { tempDir } from "./_util.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  basicScenario,
  create,
  deleteAndWait,
  list,
  startSched,
  waitRunning,
  withRedis,
} from "./_sched.ts";
import { openStore } from "../lib/store/mod.ts";

Deno.test({
  name: "sched with the embedded store creates, deletes and re-creates S and MS instances",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-embedded");
    const sched = await startSched({ dir, dbType: "embedded" });
    try {
      await basicScenario(t, sched);
      await sched.stop();
      // The embedded store has one owner: look at it once sched is gone.
      const store = await openStore({ type: "embedded", endpoints: `${dir}/store/state.db` });
      try {
        const keys = (await store.list(sched.prefix)).map((e) => e.key);
        assert(keys.every((k) => !k.includes("/instances/")), `store keys left: ${keys}`);
        assert(keys.some((k) => k.endsWith("/framework_id")), "the framework id is kept");
      } finally {
        await store.close();
      }
    } finally {
      await sched.stop();

      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "sched restarted on its local cluster finds the instances running, nothing relaunched",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-local-restart");
    let sched = await startSched({ dir, dbType: "embedded" });
    try {
      assertEquals((await create(sched, "back", 20, 1)).status, 201);
      // One long poll waits for RUNNING (no client-side polling).
      const polled = await sched.api("/v1/STATUS/back?wait=60s&status=RUNNING");
      assertEquals(polled.status, 200);
      assertEquals((await polled.json()).Status, "RUNNING");
      const before = await waitRunning(sched, "back");
      await withRedis(before.Master!, async (r) => assertEquals(await r.set("k", "v"), "OK"));
      await sched.terminate!("SIGTERM"); // the local cluster keeps running, and so do the tasks
      sched = await startSched({
        ...sched.options,
        prefix: sched.prefix,
        httpPort: sched.httpPort,
        artifactPort: sched.artifactPort,
      });
      assertEquals((await list(sched)).map((v) => v.Name), ["back"]);
      const view = await waitRunning(sched, "back");
      assertEquals(view.Master!.Port, before.Master!.Port);
      await withRedis(view.Master!, async (r) => assertEquals(await r.get("k"), "v"));
      assert(/Using the running local Mesos cluster/.test(sched.log()), "the cluster was reused");
      assert(!/Launching back\.p\d\.2/.test(sched.log()), "nothing relaunched");
      await deleteAndWait(sched, "back");
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
