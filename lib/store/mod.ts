/**
 * The state store: one interface ({@linkcode Store}), three backends (etcd,
 * ZooKeeper, embedded SQLite), and {@linkcode openStore} to pick one from the
 * config's `DBType` / `DBEndPoint`.
 *
 * ```ts
 * const store = await openStore({ type: "etcd", endpoints: "127.0.0.1:2379" });
 * await store.put("/mr-redis/framework_id", "abc");
 * await store.close();
 * ```
 *
 * @module
 */
export * from "./store.ts";
export { EtcdStore, type EtcdStoreOptions } from "./etcd.ts";
export { ZooKeeperStore, type ZooKeeperStoreOptions } from "./zookeeper.ts";
export { EmbeddedStore, type EmbeddedStoreOptions } from "./embedded.ts";
export { type FencedStore, fencedStore } from "./fenced.ts";
export { endpointProblem, parseEndpoints } from "./endpoints.ts";
export { openStore, type OpenStoreOptions } from "./open.ts";
