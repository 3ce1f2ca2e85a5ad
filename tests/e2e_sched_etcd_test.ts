/**
 * End to end with the etcd store: the real sched process on the local Mesos
 * cluster creates, serves, deletes and re-creates S and MS instances.
 */
import { tempDir } from "./_util.ts";
import { basicScenario, startSched } from "./_sched.ts";
import { openStore } from "../lib/store/mod.ts";
import { startEtcd } from "./_services.ts";

Deno.test({
  name: "sched with the etcd store creates, deletes and re-creates S and MS instances",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-etcd");
    const svc = await startEtcd();
    const sched = await startSched({
      dir,
      dbType: "etcd",
      localPortsBase: 13000,
      dbEndpoint: svc.endpoint,
    });
    const storeKeys = async (prefix: string) => {
      const store = await openStore({ type: "etcd", endpoints: svc.endpoint });
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
