/**
 * The state store interface shared by every backend (etcd, ZooKeeper, embedded).
 *
 * Keys are `/`-separated paths such as `/mr-redis/instances/cache1`. Values are
 * UTF-8 strings (JSON documents in practice). Every key carries a version that
 * changes on each write; compare-and-set uses it so that concurrent writers
 * cannot lose updates.
 *
 * @module
 */

/** A value read from the store with the version to use for compare-and-set. */
export interface Entry {
  /** The full key. */
  key: string;
  /** The value as written. */
  value: string;
  /** Opaque per-key version; changes on every write of the key. */
  version: string;
}

/** One change seen by {@linkcode Store.watch}. */
export interface WatchEvent {
  /** `put` for a create or update, `delete` for a removal. */
  type: "put" | "delete";
  /** The full key. */
  key: string;
  /** The new value, for `put`. */
  value?: string;
  /** The new version, for `put`. */
  version?: string;
}

/** A handle for a running watch. */
export interface Watch {
  /** Stops delivering events. */
  close(): Promise<void>;
}

/** A held lock/lease. Lost when its owner dies (session or lease expiry). */
export interface Lock {
  /** Releases the lock. */
  release(): Promise<void>;
  /** Resolves when the lock is lost without a release (session/lease expiry). */
  readonly lost: Promise<void>;
}

/**
 * Raised when the store cannot be reached in bounded time, or refused the request.
 * Callers catch it to retry; the message names the backend and endpoint.
 */
export class StoreUnavailableError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/**
 * One write of a {@linkcode Store.batch}: a put of `value` (with `version`, a
 * compare-and-set as in {@linkcode Store.cas}), or a delete.
 */
export type BatchWrite =
  | {
    /** The full key. */
    key: string;
    /** The value to write. */
    value: string;
    /**
     * Absent: write unconditionally. A version: only if it is current.
     * `null`: only if the key does not exist.
     */
    version?: string | null;
  }
  | {
    /** The full key. */
    key: string;
    /** Deletes the key (only the key: keys under it stay); an absent key is not an error. */
    delete: true;
  };

/** The outcome of a {@linkcode Store.batch}. */
export type BatchResult =
  /** Every write was made; `versions[i]` is the new version of put `i` (`undefined` for a delete). */
  | { ok: true; versions: (string | undefined)[] }
  /** The condition of write `conflict` failed (someone else wrote first); nothing was written. */
  | { ok: false; conflict: number };

/** The store interface. Every method may throw {@linkcode StoreUnavailableError}. */
export interface Store {
  /** Human-readable backend name and endpoint, for logs and errors. */
  readonly description: string;
  /** Reads one key; `undefined` when absent. */
  get(key: string): Promise<Entry | undefined>;
  /** Writes one key unconditionally (creating parents as the backend needs); returns the new version. */
  put(key: string, value: string): Promise<string>;
  /**
   * Writes a key only if its current version is `version`, or — when `version`
   * is `null` — only if the key does not exist. Returns the new version, or
   * `undefined` when the condition failed (someone else wrote first).
   */
  cas(key: string, value: string, version: string | null): Promise<string | undefined>;
  /**
   * Makes several writes in one transaction (an etcd txn, a ZooKeeper multi,
   * one SQLite transaction): all of them or none. Each conditional put is a
   * compare-and-set of its own key. Keys must be distinct (`TypeError`
   * otherwise); an empty batch is a no-op.
   */
  batch(writes: BatchWrite[]): Promise<BatchResult>;
  /** Deletes one key; absent keys are not an error. */
  delete(key: string): Promise<void>;
  /** Deletes every key under `prefix` (the prefix itself included). */
  deletePrefix(prefix: string): Promise<void>;
  /** Lists every key under `prefix`, sorted by key. */
  list(prefix: string): Promise<Entry[]>;
  /**
   * Watches every key under `prefix`; `onEvent` is called in the order the
   * changes were made. Survives reconnects of the underlying client.
   */
  watch(prefix: string, onEvent: (event: WatchEvent) => void): Promise<Watch>;
  /**
   * Takes the lock `name`, waiting up to `timeoutMs` (throws
   * {@linkcode StoreUnavailableError} naming the lock on time-out). The lock
   * is held by a lease/session that ends when this process dies.
   */
  lock(name: string, options?: { ttlSeconds?: number; timeoutMs?: number }): Promise<Lock>;
  /** Closes the client and its connections. */
  close(): Promise<void>;
}
