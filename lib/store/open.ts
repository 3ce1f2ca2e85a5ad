/**
 * {@linkcode openStore}: opens the backend the config names. The etcd and
 * ZooKeeper clients (npm packages with their own dependencies: etcd3 brings
 * gRPC and protobufjs) are loaded only when their backend is asked for, so a
 * scheduler on the embedded store does not pay for them at start-up.
 *
 * @module
 */
import { EmbeddedStore } from "./embedded.ts";
import type { EtcdStore } from "./etcd.ts";
import { type Store, StoreUnavailableError } from "./store.ts";
import type { ZooKeeperStore } from "./zookeeper.ts";
import { DEFAULT_TIMEOUT_MS } from "./_util.ts";
import { parseEndpoints } from "./endpoints.ts";

/** Options for {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** Which backend. */
  type: "etcd" | "zookeeper" | "embedded";
  /**
   * Comma-separated `host:port` list for etcd and ZooKeeper; the SQLite file
   * path for the embedded store.
   */
  endpoints: string;
  /** Bound for connecting and for every later operation, in ms (default 5000). */
  timeoutMs?: number;
  /**
   * Whether to check at once that the store answers (default true). With
   * `false`, an etcd or ZooKeeper store that is down is returned all the
   * same: its calls fail with {@linkcode StoreUnavailableError} until it is
   * back (the embedded store is always opened, and checked, at once).
   */
  check?: boolean;
}

/**
 * Opens a store and (unless `check` is false) checks that it answers within
 * `timeoutMs`. Throws {@linkcode StoreUnavailableError} naming the endpoint
 * when it does not, and `TypeError` for an unknown type or an endpoint list
 * that cannot be right (see {@linkcode parseEndpoints}).
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`Option "timeoutMs" must be a positive number, but got ${timeoutMs}`);
  }
  if (typeof options.endpoints !== "string" || options.endpoints.trim() === "") {
    throw new TypeError(`Cannot open ${options.type} store: no endpoint given`);
  }
  let store: EtcdStore | ZooKeeperStore | EmbeddedStore;
  switch (options.type) {
    case "etcd":
      parseEndpoints("etcd", options.endpoints);
      store = new (await import("./etcd.ts")).EtcdStore({
        endpoints: options.endpoints,
        timeoutMs,
      });
      break;
    case "zookeeper":
      parseEndpoints("zookeeper", options.endpoints);
      store = new (await import("./zookeeper.ts")).ZooKeeperStore({
        endpoints: options.endpoints,
        timeoutMs,
      });
      break;
    case "embedded":
      store = new EmbeddedStore({ path: options.endpoints });
      break;
    default:
      throw new TypeError(
        `Cannot open store of type "${(options as { type: unknown }).type}": ` +
          `expected "etcd", "zookeeper" or "embedded"`,
      );
  }
  if (options.check === false && !(store instanceof EmbeddedStore)) return store;
  try {
    await store.ping();
  } catch (error) {
    await store.close().catch(() => {});
    if (error instanceof StoreUnavailableError) {
      throw new StoreUnavailableError(`Cannot reach ${store.description}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  return store;
}
