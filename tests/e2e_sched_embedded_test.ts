/**
 * End to end with the embedded store: the real sched process on the local Mesos
 * cluster creates, serves, deletes and re-creates S and MS instances.
 */
import { tempDir } from "./_util.ts";
import { assert } from "./_assert.ts";
import { basicScenario, startSched } from "./_sched.ts";
import { openStore } from "../lib/store/mod.ts";

Deno.test({
  name: "sched with the embedded store creates, deletes and re-creates S and MS instances",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-embedded");
    const sched = await startSched({ dir, dbType: "embedded", localPortsBase: 11000 });
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
