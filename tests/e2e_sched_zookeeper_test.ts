/**
 * End to end with the zookeeper store: the real sched process on the local Mesos
 * cluster creates, serves, deletes and re-creates S and MS instances.
 */
import { tempDir } from "./_util.ts";
import { basicScenario, startSched } from "./_sched.ts";
import { openStore } from "../lib/store/mod.ts";
import { startZooKeeper } from "./_services.ts";

Deno.test({
  name: "sched with the zookeeper store creates, deletes and re-creates S and MS instances",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-zookeeper");
    const svc = await startZooKeeper();
    const sched = await startSched({
      dir,
      dbType: "zookeeper",
      localPortsBase: 15000,
      dbEndpoint: svc.endpoint,
    });
    const storeKeys = async (prefix: string) => {
      const store = await openStore({ type: "zookeeper", endpoints: svc.endpoint });
      try {
        return (await store.list(prefix)).map((e) => e.key);
      } finally {
        await store.close();
      }
    };
    try {
      await basicScenario(t, sched, storeKeys);
    } finally {
      await sched.stop();
      await svc.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
