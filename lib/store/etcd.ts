/**
 * The etcd v3 backend of {@linkcode Store}, on `npm:etcd3`.
 *
 * Versions are etcd `mod_revision`s; compare-and-set is a transaction on
 * `mod_revision` (or `create_revision == 0` to create). Watches resume from
 * the last revision seen after a reconnect. Locks are keys bound to a lease
 * that is kept alive while the process lives.
 *
 * @module
 */
import { Etcd3, type IKeyValue, type IOptions, isRecoverableError, type Lease } from "etcd3";
import {
  bounded,
  checkBatch,
  checkKey,
  delay,
  normalizePrefix,
  retryInBackground,
  underPrefix,
} from "./_util.ts";
import {
  type BatchResult,
  type BatchWrite,
  type Entry,
  type Lock,
  type Store,
  StoreUnavailableError,
  type Watch,
  type WatchEvent,
} from "./store.ts";
import { DEFAULT_TIMEOUT_MS } from "./_util.ts";

/** Options for {@linkcode EtcdStore}. */
export interface EtcdStoreOptions {
  /** Comma-separated `host:port` list (an `http://` prefix is allowed). */
  endpoints: string;
  /** Bound for each operation in milliseconds (default 5000). */
  timeoutMs?: number;
}

/** How long a release that failed is retried in the background, ms. */
const RETRY_FOR_MS = 10 * 60_000;

/** Keys of locks live outside the `/`-rooted key space so lists never see them. */
const LOCK_PREFIX = "mr-redis-lock:";

type FaultHandling = NonNullable<IOptions["faultHandling"]>;

/** Raised by {@linkcode hostPolicy} for a host that failed a moment ago. */
class EndpointDownError extends Error {
  constructor() {
    super("Endpoint failed less than a second ago");
    this.name = "EndpointDownError";
  }
}

/**
 * Per-host policy: after a connection failure the host is skipped for a
 * second, so calls go to the other endpoints (or fail fast when none is up).
 * It replaces etcd3's default circuit breaker, which keeps failing for five
 * seconds after the server is back.
 */
function hostPolicy(hostCount: number): NonNullable<FaultHandling["global"]> {
  let downUntil = 0;
  return {
    execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | PromiseLike<T>) {
      // With one endpoint there is nowhere else to go: always try it.
      if (hostCount > 1 && Date.now() < downUntil) {
        return Promise.reject(new EndpointDownError());
      }
      return Promise.resolve()
        .then(() => fn({ signal: new AbortController().signal, attempt: 0 }))
        .catch((error) => {
          if (isRecoverableError(error)) downUntil = Date.now() + 1_000;
          throw error;
        });
    },
  } as unknown as NonNullable<FaultHandling["global"]>;
}

/** Global policy: retry a connection failure on the next endpoint, a few times. */
const retryPolicy = {
  async execute<T>(fn: (context: { signal: AbortSignal; attempt: number }) => T | PromiseLike<T>) {
    for (let attempt = 0;; attempt++) {
      try {
        return await fn({ signal: new AbortController().signal, attempt });
      } catch (error) {
        const retry = error instanceof EndpointDownError || isRecoverableError(error as Error);
        if (attempt >= 6 || !retry) throw error;
        await delay(50);
      }
    }
  },
} as unknown as NonNullable<FaultHandling["global"]>;

/** Reconnect watch streams every half second while etcd is away. */
const watchBackoff = {
  duration: 500,
  next() {
    return watchBackoff;
  },
} as unknown as FaultHandling["watchBackoff"];

function toEntry(kv: IKeyValue): Entry {
  return { key: kv.key.toString(), value: kv.value.toString(), version: String(kv.mod_revision) };
}

/** {@linkcode Store} on an etcd v3 cluster. */
export class EtcdStore implements Store {
  /** `etcd at host:port,...`. */
  readonly description: string;
  readonly #client: Etcd3;
  readonly #timeoutMs: number;
  #closed = false;
  readonly #closers = new Set<() => Promise<void>>();

  /** Creates the client; it connects lazily (use {@linkcode EtcdStore.ping} to check). */
  constructor(options: EtcdStoreOptions) {
    const hosts = options.endpoints.split(",").map((h) => h.trim()).filter((h) => h !== "");
    if (hosts.length === 0) {
      throw new TypeError(`Cannot open etcd store: no endpoint in "${options.endpoints}"`);
    }
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.description = `etcd at ${hosts.join(",")}`;
    const timeoutMs = this.#timeoutMs;
    this.#client = new Etcd3({
      hosts: hosts.map((h) => h.includes("://") ? h : `http://${h}`),
      dialTimeout: timeoutMs,
      defaultCallOptions: (context) => context.isStream ? {} : { deadline: Date.now() + timeoutMs },
      faultHandling: { host: () => hostPolicy(hosts.length), global: retryPolicy, watchBackoff },
      grpcOptions: {
        "grpc.initial_reconnect_backoff_ms": 200,
        "grpc.max_reconnect_backoff_ms": 1000,
      },
    });
  }

  #run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new StoreUnavailableError(`Cannot ${op} on ${this.description}: the store is closed`),
      );
    }
    return bounded(`${this.description}: ${op}`, this.#timeoutMs, fn());
  }

  /** Checks that etcd answers; throws {@linkcode StoreUnavailableError} otherwise. */
  async ping(): Promise<void> {
    await this.#run("ping", () => this.#client.get("mr-redis-ping").exec());
  }

  /** @inheritdoc */
  async get(key: string): Promise<Entry | undefined> {
    checkKey(key);
    const res = await this.#run(`get "${key}"`, () => this.#client.get(key).exec());
    const kv = res.kvs[0];
    return kv ? toEntry(kv) : undefined;
  }

  /** @inheritdoc */
  async put(key: string, value: string): Promise<string> {
    checkKey(key);
    const res = await this.#run(`put "${key}"`, () => this.#client.put(key).value(value).exec());
    return String(res.header.revision);
  }

  /** @inheritdoc */
  async cas(key: string, value: string, version: string | null): Promise<string | undefined> {
    checkKey(key);
    const res = await this.#run(`cas "${key}"`, () => {
      const cmp = version === null
        ? this.#client.if(key, "Create", "==", 0)
        : this.#client.if(key, "Mod", "==", version);
      return cmp.then(this.#client.put(key).value(value)).commit();
    });
    return res.succeeded ? String(res.header.revision) : undefined;
  }

  /**
   * @inheritdoc
   *
   * One etcd txn: every condition a compare, every write an op of its
   * success branch. On failure a second read (in the same call) finds the
   * write whose condition failed.
   */
  async batch(writes: BatchWrite[]): Promise<BatchResult> {
    checkBatch(writes);
    if (writes.length === 0) return { ok: true, versions: [] };
    const ops = writes.map((w) =>
      "delete" in w ? this.#client.delete().key(w.key) : this.#client.put(w.key).value(w.value)
    );
    const conditional = writes.flatMap((w, i) =>
      "delete" in w || w.version === undefined ? [] : [{ i, key: w.key, version: w.version }]
    );
    const res = await this.#run(`batch of ${writes.length} write(s)`, () => {
      // A compare that always holds (mod_revision > -1) starts the txn.
      let txn = this.#client.if(writes[0]!.key, "Mod", ">", -1);
      for (const c of conditional) {
        txn = c.version === null
          ? txn.and(c.key, "Create", "==", 0)
          : txn.and(c.key, "Mod", "==", c.version);
      }
      return txn.then(...ops).commit();
    });
    if (res.succeeded) {
      const version = String(res.header.revision);
      return { ok: true, versions: writes.map((w) => "delete" in w ? undefined : version) };
    }
    // Which condition failed: read the keys (the first that does not hold now).
    for (const c of conditional) {
      const current = await this.get(c.key);
      const holds = c.version === null ? current === undefined : current?.version === c.version;
      if (!holds) return { ok: false, conflict: c.i };
    }
    return { ok: false, conflict: conditional[0]?.i ?? 0 };
  }

  /** @inheritdoc */
  async delete(key: string): Promise<void> {
    checkKey(key);
    await this.#run(`delete "${key}"`, () => this.#client.delete().key(key).exec());
  }

  /** @inheritdoc */
  async deletePrefix(prefix: string): Promise<void> {
    const p = normalizePrefix(prefix);
    await this.#run(`delete prefix "${prefix}"`, async () => {
      if (p !== "") await this.#client.delete().key(p).exec();
      await this.#client.delete().prefix(`${p}/`).exec();
    });
  }

  /** @inheritdoc */
  async list(prefix: string): Promise<Entry[]> {
    const p = normalizePrefix(prefix);
    const [self, under] = await this.#run(`list "${prefix}"`, () =>
      Promise.all([
        p === "" ? Promise.resolve(undefined) : this.#client.get(p).exec(),
        this.#client.getAll().prefix(`${p}/`).sort("Key", "Ascend").exec(),
      ]));
    return [...(self?.kvs ?? []), ...under.kvs].map(toEntry);
  }

  /** @inheritdoc */
  async watch(prefix: string, onEvent: (event: WatchEvent) => void): Promise<Watch> {
    const p = normalizePrefix(prefix);
    const watcher = await this.#run(
      `watch "${prefix}"`,
      () => this.#client.watch().prefix(p === "" ? "/" : p).create(),
    );
    const deliver = (event: WatchEvent) => {
      if (!underPrefix(event.key, p) && p !== "") return;
      try {
        onEvent(event);
      } catch (error) {
        console.error(`Watch callback on ${this.description} failed:`, error);
      }
    };
    watcher.on("data", (res) => {
      for (const ev of res.events) {
        const key = ev.kv.key.toString();
        if (ev.type === "Put") {
          deliver({
            type: "put",
            key,
            value: ev.kv.value.toString(),
            version: String(ev.kv.mod_revision),
          });
        } else {
          deliver({ type: "delete", key });
        }
      }
    });
    // Cancellations (e.g. compaction) and stream errors must not crash the process.
    watcher.on("error", (error) => {
      console.error(`Watch of "${prefix}" on ${this.description} failed:`, error);
    });
    const close = async () => {
      this.#closers.delete(close);
      await bounded(`${this.description}: cancel watch`, this.#timeoutMs, watcher.cancel())
        .catch(() => {});
    };
    this.#closers.add(close);
    return { close };
  }

  /** @inheritdoc */
  async lock(
    name: string,
    options: { ttlSeconds?: number; timeoutMs?: number } = {},
  ): Promise<Lock> {
    const ttl = Math.max(1, Math.ceil(options.ttlSeconds ?? 10));
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const key = `${LOCK_PREFIX}${name}`;
    const lease: Lease = this.#client.lease(ttl);
    let lostResolve!: () => void;
    const lost = new Promise<void>((resolve) => lostResolve = resolve);
    let released = false;
    lease.on("lost", () => {
      if (!released) lostResolve();
    });
    const revoke = () =>
      bounded(`${this.description}: revoke lease`, this.#timeoutMs, lease.revoke());
    try {
      const id = await this.#run(`grant lease for lock "${name}"`, () => lease.grant());
      while (true) {
        const res = await this.#run(
          `take lock "${name}"`,
          () =>
            this.#client.if(key, "Create", "==", 0).then(
              this.#client.put(key).value(id).lease(id),
            ).commit(),
        );
        if (res.succeeded) break;
        if (Date.now() >= deadline) {
          throw new StoreUnavailableError(
            `Timed out after ${timeoutMs} ms waiting for lock "${name}" on ${this.description}`,
          );
        }
        await delay(Math.min(100, Math.max(0, deadline - Date.now())));
      }
    } catch (error) {
      released = true;
      // The lock key may have been written though the answer was lost.
      await revoke().catch(() => {
        lease.release();
        this.#retryInBackground(() => revoke().then(() => {}));
      });
      throw error;
    }
    const lock: Lock = {
      lost,
      release: async () => {
        if (released) return;
        released = true;
        this.#closers.delete(lock.release);
        try {
          await revoke();
        } catch (error) {
          // etcd is away: it keeps the lease (and the lock) for a full ttl
          // after it returns. Revoke as soon as it answers again instead.
          this.#retryInBackground(() => revoke().then(() => {}));
          throw error;
        } finally {
          lease.release();
        }
      },
    };
    this.#closers.add(lock.release);
    return lock;
  }

  /** {@linkcode retryInBackground} until this store is closed or `RETRY_FOR_MS` passed. */
  #retryInBackground(fn: () => Promise<void>): void {
    retryInBackground(fn, () => this.#closed, RETRY_FOR_MS);
  }

  /** @inheritdoc */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#closers].map((c) => c().catch(() => {})));
    this.#closed = true;
    this.#client.close();
  }
}
