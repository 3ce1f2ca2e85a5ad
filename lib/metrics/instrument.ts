/**
 * Wrappers that feed {@linkcode SchedulerCounters} without touching the code
 * they measure: a store that times every call, and a Mesos port that counts
 * declined offers.
 *
 * @module
 */
import type { Store } from "../store/store.ts";
import type { MesosPort } from "../scheduler/core.ts";
import type { SchedulerCounters } from "./counters.ts";

/** `store` with every call timed into `counters` (by operation: `batch`, `get`, `list`, ...). */
export function timedStore(store: Store, counters: SchedulerCounters): Store {
  const time = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    let failed = true;
    try {
      const result = await fn();
      failed = false;
      return result;
    } finally {
      counters.countStore(op, (performance.now() - start) / 1000, failed);
    }
  };
  return {
    get description() {
      return store.description;
    },
    get: (key) => time("get", () => store.get(key)),
    put: (key, value) => time("put", () => store.put(key, value)),
    cas: (key, value, version) => time("cas", () => store.cas(key, value, version)),
    batch: (writes) => time("batch", () => store.batch(writes)),
    delete: (key) => time("delete", () => store.delete(key)),
    deletePrefix: (prefix) => time("deletePrefix", () => store.deletePrefix(prefix)),
    list: (prefix) => time("list", () => store.list(prefix)),
    watch: (prefix, onEvent) => store.watch(prefix, onEvent),
    lock: (name, options) => store.lock(name, options),
    close: () => store.close(),
  };
}

/** `port` with the offers it declines counted into `counters`. */
export function countingMesos(port: MesosPort, counters: SchedulerCounters): MesosPort {
  return {
    launch: (offerId, tasks, refuseSeconds) => port.launch(offerId, tasks, refuseSeconds),
    decline: async (offerIds, refuseSeconds) => {
      await port.decline(offerIds, refuseSeconds);
      counters.offersDeclined += offerIds.length;
    },
    revive: () => port.revive(),
    suppress: () => port.suppress(),
    kill: (taskId, agentId) => port.kill(taskId, agentId),
    acknowledge: (agentId, taskId, uuid) => port.acknowledge(agentId, taskId, uuid),
    reconcile: (tasks) => port.reconcile(tasks),
    message: (agentId, executorId, data) => port.message(agentId, executorId, data),
  };
}
