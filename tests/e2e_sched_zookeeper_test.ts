/**
 * End to end with the ZooKeeper store: the real sched process on the local
 * Mesos cluster creates, serves, deletes and re-creates S and MS instances.
 */
import { externalStoreScenario } from "./_sched.ts";
import { startZooKeeper } from "./_services.ts";

Deno.test({
  name: "sched with the ZooKeeper store creates, deletes and re-creates S and MS instances",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) => externalStoreScenario(t, "zookeeper", startZooKeeper),
});
