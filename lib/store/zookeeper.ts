/**
 * The ZooKeeper backend of {@linkcode Store}, on `npm:node-zookeeper-client`.
 *
 * Keys are znode paths. A znode is a key when it holds data; parents created
 * on the way (and lock nodes) hold none, so they never show up in `list`,
 * `get` or watches. Deleting a key that still has children empties its data
 * instead. Values are stored as UTF-8; the empty string and values that start
 * with NUL are stored behind a NUL escape byte, so that "no data" stays
 * distinct from `""`.
 *
 * Versions are the znode's `stat.version`; compare-and-set is
 * `setData(path, data, version)` or `create` (`NODE_EXISTS` means conflict).
 * Note the ZooKeeper quirk: a znode deleted and created again starts again
 * at version 0.
 *
 * Watches re-arm ZooKeeper's one-shot watches and diff the subtree after
 * each notification, ordering the events by the zxid of each change; a
 * key written several times between two scans is reported once with its
 * latest value. When the session expires, the store opens a new one and
 * re-scans, reporting as puts and deletes whatever changed meanwhile.
 *
 * Locks follow the ephemeral-sequential recipe under `/mr-redis-locks/{name}`;
 * a lock is lost when the session expires, or when the client stays
 * disconnected for a whole session timeout.
 *
 * @module
 */
import zookeeper from "node-zookeeper-client";
import { Buffer } from "node:buffer";
import {
  bounded,
  checkBatch,
  checkKey,
  compareKeys,
  DEFAULT_TIMEOUT_MS,
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

/** Options for {@linkcode ZooKeeperStore}. */
export interface ZooKeeperStoreOptions {
  /** Comma-separated `host:port` list. */
  endpoints: string;
  /** Bound for each operation in milliseconds (default 5000). */
  timeoutMs?: number;
  /** ZooKeeper session timeout in milliseconds (default 10000); locks live as long as the session. */
  sessionTimeoutMs?: number;
}

type Client = ReturnType<typeof zookeeper.createClient>;

interface Stat {
  version: number;
  mzxid: Buffer;
  pzxid: Buffer;
}

/** One op of a ZooKeeper multi, for the write of a batch at `index`. */
type MultiOp =
  | { op: "create"; index: number; path: string; data: Buffer }
  | { op: "set"; index: number; path: string; data: Buffer; version: number }
  | { op: "remove"; index: number; path: string };

/** A transaction builder of node-zookeeper-client (its API is untyped). */
interface ZkTransaction {
  ops: { version?: number }[];
  create(path: string, data: Buffer, mode: number): ZkTransaction;
  setData(path: string, data: Buffer, version: number): ZkTransaction;
  remove(path: string, version: number): ZkTransaction;
  commit(
    cb: (error: unknown, results: { type: number; stat?: Stat; err?: number }[]) => void,
  ): void;
}

/** A batch write whose condition fails: the batch is refused without writing. */
class BatchConflict {
  constructor(readonly index: number) {}
}

interface ZkError {
  code?: number;
  getCode?: () => number;
}

const { Exception, CreateMode } = zookeeper;

/** How long a release that failed is retried in the background, ms. */
const RETRY_FOR_MS = 10 * 60_000;

/** Where lock nodes live; they hold no data, so they are not keys. */
const LOCK_ROOT = "/mr-redis-locks";

function codeOf(error: unknown): number | undefined {
  const e = error as ZkError | null;
  return typeof e?.getCode === "function" ? e.getCode() : e?.code;
}

function encode(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  return value === "" || value.startsWith("\u0000")
    ? Buffer.concat([Buffer.from([0]), bytes])
    : bytes;
}

/** Decodes znode data; `undefined` when the znode holds no value (is not a key). */
function decode(data: Buffer | null | undefined): string | undefined {
  if (!data || data.length === 0) return undefined;
  return data[0] === 0 ? data.subarray(1).toString("utf8") : data.toString("utf8");
}

function zxid(buf: Buffer | undefined): bigint {
  return buf ? buf.readBigUInt64BE(0) : 0n;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function join(parent: string, child: string): string {
  return parent === "/" ? `/${child}` : `${parent}/${child}`;
}

interface Snapshot {
  /** Keys (znodes with data) with value, version and modification zxid. */
  keys: Map<string, { value: string; version: string; mzxid: bigint }>;
  /** pzxid of every znode seen, for ordering deletes. */
  pzxids: Map<string, bigint>;
  maxZxid: bigint;
}

/** {@linkcode Store} on a ZooKeeper ensemble. */
export class ZooKeeperStore implements Store {
  /** `ZooKeeper at host:port,...`. */
  readonly description: string;
  readonly #endpoints: string;
  readonly #timeoutMs: number;
  readonly #sessionTimeoutMs: number;
  #client!: Client;
  #closed = false;
  /** Called when the session is gone (expired, replaced or closed). */
  readonly #sessionListeners = new Set<() => void>();
  readonly #watches = new Set<ZkWatch>();
  #disconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #timeouts = 0;
  /** Whether the current client is connected (its last state event said so). */
  #connected = false;
  /** Calls waiting for the current (or a next) client to connect. */
  readonly #waiters = new Set<() => void>();

  /** Creates the client and starts connecting (use {@linkcode ZooKeeperStore.ping} to check). */
  constructor(options: ZooKeeperStoreOptions) {
    const hosts = options.endpoints.split(",").map((h) => h.trim()).filter((h) => h !== "");
    if (hosts.length === 0) {
      throw new TypeError(`Cannot open ZooKeeper store: no endpoint in "${options.endpoints}"`);
    }
    this.#endpoints = hosts.join(",");
    this.description = `ZooKeeper at ${this.#endpoints}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
    this.#connect();
  }

  #connect(): void {
    const client = zookeeper.createClient(this.#endpoints, {
      sessionTimeout: this.#sessionTimeoutMs,
      spinDelay: 200,
      retries: 0,
    });
    this.#client = client;
    this.#connected = false;
    // The client library emits no "error" events today; a listener keeps a
    // future one from killing the process.
    client.on("error", (error: unknown) => {
      console.error(`${this.description}: client error:`, error);
    });
    client.on("state", (state: { name: string }) => {
      if (client !== this.#client || this.#closed) return;
      if (state.name === "SYNC_CONNECTED" || state.name === "CONNECTED_READ_ONLY") {
        clearTimeout(this.#disconnectTimer);
        this.#disconnectTimer = undefined;
        this.#connected = true;
        const waiters = [...this.#waiters];
        this.#waiters.clear();
        for (const wake of waiters) wake();
      } else if (state.name === "DISCONNECTED") {
        this.#connected = false;
        // The server expires the session after this long without us; treat
        // locks as lost then, even before we can hear it from the server.
        if (this.#disconnectTimer === undefined) {
          this.#disconnectTimer = setTimeout(() => {
            this.#disconnectTimer = undefined;
            this.#sessionGone();
          }, this.#sessionTimeoutMs);
        }
      } else if (state.name === "EXPIRED") {
        this.#connected = false;
        this.#renewSession();
      }
    });
    client.connect();
  }

  /** Tells session-bound holders (locks) that the session is gone. */
  #sessionGone(): void {
    const listeners = [...this.#sessionListeners];
    this.#sessionListeners.clear();
    for (const listener of listeners) listener();
  }

  /** Replaces an expired session by a new client and re-arms every watch. */
  #renewSession(): void {
    clearTimeout(this.#disconnectTimer);
    this.#disconnectTimer = undefined;
    this.#sessionGone();
    const old = this.#client;
    this.#connect();
    try {
      old.close();
    } catch {
      // Already closed.
    }
    for (const watch of this.#watches) watch.rearm();
  }

  /** Runs one client call with a callback, bounded in time. */
  #call<T>(
    op: string,
    fn: (client: Client, done: (error: unknown, result?: T) => void) => void,
  ): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new StoreUnavailableError(`Cannot ${op} on ${this.description}: the store is closed`),
      );
    }
    // While disconnected a call waits for a connected client instead of
    // being queued in one: after a session expiry the store replaces the
    // client, and what was queued in the old one would never complete.
    let client: Client | undefined;
    let gaveUp = false;
    const promise = (async () => {
      while (!this.#connected && !this.#closed) {
        await new Promise<void>((resolve) => this.#waiters.add(resolve));
      }
      // Timed out while waiting: never issue it late (a write or a lock node
      // nobody waits for any more).
      if (gaveUp) throw new Error("gave up before connecting");
      client = this.#client;
      return await new Promise<T>((resolve, reject) => {
        try {
          fn(client!, (error, result) => error ? reject(error) : resolve(result as T));
        } catch (error) {
          reject(error);
        }
      });
    })();
    return bounded(`${this.description}: ${op}`, this.#timeoutMs, promise).then(
      (result) => {
        if (client === this.#client) this.#timeouts = 0;
        return result;
      },
      (error) => {
        gaveUp = true;
        // node-zookeeper-client can stay wedged after a server restart: the
        // socket reconnects but requests never complete (or it never says it
        // connected). Two time-outs in a row on the same client: start over
        // with a new client and session.
        if (
          (client === undefined || client === this.#client) && !this.#closed &&
          /timed out/.test(String(error)) && ++this.#timeouts >= 2
        ) {
          this.#timeouts = 0;
          this.#renewSession();
        }
        throw error;
      },
    );
  }

  /** Like {@linkcode #call}, but a ZooKeeper error code in `accept` resolves to `undefined`. */
  async #tolerant<T>(
    op: string,
    accept: number[],
    fn: (client: Client, done: (error: unknown, result?: T) => void) => void,
  ): Promise<T | undefined> {
    try {
      return await this.#call(op, fn);
    } catch (error) {
      const code = codeOf((error as Error).cause ?? error);
      if (code !== undefined && accept.includes(code)) return undefined;
      throw error;
    }
  }

  #getData(path: string, watcher?: (event: unknown) => void) {
    return this.#tolerant<{ data: Buffer | null; stat: Stat }>(
      `get "${path}"`,
      [Exception.NO_NODE],
      (c, done) => {
        const cb = (e: unknown, data: Buffer, stat: Stat) => done(e, { data, stat });
        if (watcher) c.getData(path, watcher, cb);
        else c.getData(path, cb);
      },
    );
  }

  #getChildren(path: string, watcher?: (event: unknown) => void) {
    return this.#tolerant<{ children: string[]; stat: Stat }>(
      `list children of "${path}"`,
      [Exception.NO_NODE],
      (c, done) => {
        const cb = (e: unknown, children: string[], stat: Stat) => done(e, { children, stat });
        if (watcher) c.getChildren(path, watcher, cb);
        else c.getChildren(path, cb);
      },
    );
  }

  /** Creates every missing ancestor of `path` (without data). */
  async #mkParents(path: string): Promise<void> {
    const parts = path.split("/").filter((p) => p !== "");
    let current = "";
    for (const part of parts.slice(0, -1)) {
      current += `/${part}`;
      await this.#tolerant<string>(
        `create "${current}"`,
        [Exception.NODE_EXISTS],
        (c, done) => c.create(current, null, CreateMode.PERSISTENT, done),
      );
    }
  }

  /** Checks that ZooKeeper answers; throws {@linkcode StoreUnavailableError} otherwise. */
  async ping(): Promise<void> {
    await this.#call<unknown>("ping", (c, done) => c.exists("/", done));
  }

  /** @inheritdoc */
  async get(key: string): Promise<Entry | undefined> {
    checkKey(key);
    const res = await this.#getData(key);
    const value = decode(res?.data);
    return res && value !== undefined
      ? { key, value, version: String(res.stat.version) }
      : undefined;
  }

  /** @inheritdoc */
  async put(key: string, value: string): Promise<string> {
    checkKey(key);
    const data = encode(value);
    for (let attempt = 0;; attempt++) {
      const stat = await this.#tolerant<Stat>(
        `put "${key}"`,
        [Exception.NO_NODE],
        (c, done) => c.setData(key, data, -1, done),
      );
      if (stat) return String(stat.version);
      await this.#mkParents(key);
      const created = await this.#tolerant<string>(
        `put "${key}"`,
        [Exception.NODE_EXISTS],
        (c, done) => c.create(key, data, CreateMode.PERSISTENT, done),
      );
      if (created !== undefined) return "0";
      if (attempt > 10) {
        throw new StoreUnavailableError(
          `Cannot put "${key}" on ${this.description}: too much contention`,
        );
      }
    }
  }

  /** @inheritdoc */
  async cas(key: string, value: string, version: string | null): Promise<string | undefined> {
    checkKey(key);
    const data = encode(value);
    if (version !== null) {
      const n = Number(version);
      if (!Number.isInteger(n) || n < 0) return undefined;
      const stat = await this.#tolerant<Stat>(
        `cas "${key}"`,
        [Exception.NO_NODE, Exception.BAD_VERSION],
        (c, done) => c.setData(key, data, n, done),
      );
      return stat ? String(stat.version) : undefined;
    }
    await this.#mkParents(key);
    const created = await this.#tolerant<string>(
      `cas "${key}"`,
      [Exception.NODE_EXISTS],
      (c, done) => c.create(key, data, CreateMode.PERSISTENT, done),
    );
    if (created !== undefined) return "0";
    // The znode exists; it is still "absent" as a key if it holds no data.
    const current = await this.#getData(key);
    if (!current || decode(current.data) !== undefined) return undefined;
    const stat = await this.#tolerant<Stat>(
      `cas "${key}"`,
      [Exception.NO_NODE, Exception.BAD_VERSION],
      (c, done) => c.setData(key, data, current.stat.version, done),
    );
    return stat ? String(stat.version) : undefined;
  }

  /**
   * The ops of one multi for `writes`, read from the current tree: a put is
   * a `create` (parents made first, outside the multi: empty parents are no
   * keys) or a `setData` on the version asked for (`-1` when unconditional);
   * a delete is a `remove`, or empties the data of a znode with children.
   */
  async #planMulti(writes: BatchWrite[]): Promise<MultiOp[] | BatchConflict> {
    // Parents first, for every put: a key of the batch may be the parent of another.
    for (const w of writes) if (!("delete" in w)) await this.#mkParents(w.key);
    const ops: MultiOp[] = [];
    for (const [index, w] of writes.entries()) {
      if ("delete" in w) {
        const children = await this.#getChildren(w.key);
        if (!children) continue;
        if (children.children.length === 0) {
          ops.push({ op: "remove", index, path: w.key });
          continue;
        }
        const current = await this.#getData(w.key);
        if (current && decode(current.data) !== undefined) {
          ops.push({ op: "set", index, path: w.key, data: Buffer.alloc(0), version: -1 });
        }
        continue;
      }
      const data = encode(w.value);
      if (typeof w.version === "string") {
        const n = Number(w.version);
        if (!Number.isInteger(n) || n < 0) return new BatchConflict(index);
        ops.push({ op: "set", index, path: w.key, data, version: n });
        continue;
      }
      const current = await this.#getData(w.key);
      if (!current) {
        ops.push({ op: "create", index, path: w.key, data });
      } else if (w.version === null && decode(current.data) !== undefined) {
        return new BatchConflict(index);
      } else {
        // An empty parent is an absent key: create-if-absent sets its data.
        ops.push({
          op: "set",
          index,
          path: w.key,
          data,
          version: w.version === null ? current.stat.version : -1,
        });
      }
    }
    return ops;
  }

  /**
   * @inheritdoc
   *
   * One ZooKeeper multi. A write that is not conditional may still meet a
   * concurrent change of the tree (a key created or removed since it was
   * read): the batch is then planned and tried again, a few times.
   */
  async batch(writes: BatchWrite[]): Promise<BatchResult> {
    checkBatch(writes);
    if (writes.length === 0) return { ok: true, versions: [] };
    const what = `batch of ${writes.length} write(s)`;
    for (let attempt = 0;; attempt++) {
      const ops = await this.#planMulti(writes);
      if (ops instanceof BatchConflict) return { ok: false, conflict: ops.index };
      const versions: (string | undefined)[] = writes.map(() => undefined);
      if (ops.length === 0) return { ok: true, versions };
      const outcome = await this.#call<
        { results: { type: number; stat?: Stat; err?: number }[]; failed?: number }
      >(what, (c, done) => {
        const tx = (c as unknown as { transaction(): ZkTransaction }).transaction();
        for (const op of ops) {
          if (op.op === "create") tx.create(op.path, op.data, CreateMode.PERSISTENT);
          else if (op.op === "set") {
            tx.setData(op.path, op.data, op.version);
            // The library turns version 0 into -1 (any version): put it back.
            tx.ops[tx.ops.length - 1]!.version = op.version;
          } else tx.remove(op.path, -1);
        }
        tx.commit((error, results) => {
          if (!error) return done(null, { results });
          const failed = (results ?? []).findIndex((r) =>
            r.err !== undefined && r.err !== 0 && r.err !== Exception.RUNTIME_INCONSISTENCY
          );
          if (failed < 0) return done(error);
          done(null, { results, failed });
        });
      });
      if (outcome.failed === undefined) {
        ops.forEach((op, i) => {
          if (op.op === "create") versions[op.index] = "0";
          else if (op.op === "set") {
            versions[op.index] = String(outcome.results[i]?.stat?.version ?? "");
          }
        });
        for (const [i, w] of writes.entries()) if ("delete" in w) versions[i] = undefined;
        return { ok: true, versions };
      }
      const op = ops[outcome.failed]!;
      const write = writes[op.index]!;
      if (!("delete" in write) && write.version !== undefined) {
        return { ok: false, conflict: op.index };
      }
      if (attempt >= 5) {
        throw new StoreUnavailableError(
          `Cannot make the ${what} on ${this.description}: the keys keep changing`,
        );
      }
    }
  }

  /** @inheritdoc */
  async delete(key: string): Promise<void> {
    checkKey(key);
    const removed = await this.#tolerant<unknown>(
      `delete "${key}"`,
      [Exception.NO_NODE, Exception.NOT_EMPTY],
      (c, done) => c.remove(key, -1, (e: unknown) => done(e, e ? undefined : true)),
    );
    if (removed) return;
    // Still there with children: keep the znode as a parent, drop its value.
    const current = await this.#getData(key);
    if (!current || decode(current.data) === undefined) return;
    await this.#tolerant<Stat>(
      `delete "${key}"`,
      [Exception.NO_NODE],
      (c, done) => c.setData(key, Buffer.alloc(0), -1, done),
    );
  }

  /** Every znode path under `root` (itself included when it exists), parents first. */
  async #walk(root: string): Promise<string[]> {
    const out: string[] = [];
    let level = [root];
    while (level.length > 0) {
      const results = await Promise.all(level.map((p) => this.#getChildren(p)));
      const next: string[] = [];
      results.forEach((res, i) => {
        const path = level[i]!;
        if (!res) return;
        if (path !== "/") out.push(path);
        for (const child of res.children) {
          if (path === "/" && child === "zookeeper") continue;
          next.push(join(path, child));
        }
      });
      level = next;
    }
    return out;
  }

  /** @inheritdoc */
  async deletePrefix(prefix: string): Promise<void> {
    const p = normalizePrefix(prefix) || "/";
    for (let attempt = 0;; attempt++) {
      const paths = (await this.#walk(p)).filter((path) =>
        !underPrefix(path, LOCK_ROOT) || underPrefix(p, LOCK_ROOT)
      );
      if (paths.length === 0) return;
      let retry = false;
      // Deepest first, so parents are empty when their turn comes.
      for (const path of paths.reverse()) {
        const res = await this.#tolerant<unknown>(
          `delete prefix "${prefix}"`,
          [Exception.NO_NODE, Exception.NOT_EMPTY],
          (c, done) => c.remove(path, -1, (e: unknown) => done(e, e ? undefined : true)),
        );
        if (res === undefined) retry = true;
      }
      if (!retry) return;
      if (attempt > 10) {
        throw new StoreUnavailableError(
          `Cannot delete prefix "${prefix}" on ${this.description}: keys keep being added`,
        );
      }
    }
  }

  /**
   * Reads the subtree under `prefix` (normalised), arming `watcher` on each
   * node (data and children) that `armed` does not yet hold.
   */
  async scan(
    prefix: string,
    watcher?: (event: unknown) => void,
    armed?: Set<string>,
  ): Promise<Snapshot> {
    const snapshot: Snapshot = { keys: new Map(), pzxids: new Map(), maxZxid: 0n };
    const root = prefix || "/";
    const arm = (kind: string, path: string) => {
      if (!watcher || !armed || armed.has(`${kind}${path}`)) return undefined;
      armed.add(`${kind}${path}`);
      return watcher;
    };
    if (watcher && armed && !armed.has(`e${root}`)) {
      // Hear about the creation of the prefix node itself.
      armed.add(`e${root}`);
      await this.#call<unknown>(`watch "${root}"`, (c, done) => c.exists(root, watcher, done));
    }
    let level = [root];
    while (level.length > 0) {
      const next: string[] = [];
      await Promise.all(level.map(async (path) => {
        const [data, children] = await Promise.all([
          path === "/" ? Promise.resolve(undefined) : this.#getData(path, arm("d", path)),
          this.#getChildren(path, arm("c", path)),
        ]);
        if (data) {
          const value = decode(data.data);
          const mzxid = zxid(data.stat.mzxid);
          if (mzxid > snapshot.maxZxid) snapshot.maxZxid = mzxid;
          if (value !== undefined && !underPrefix(path, LOCK_ROOT)) {
            snapshot.keys.set(path, { value, version: String(data.stat.version), mzxid });
          }
        }
        if (children) {
          const pz = zxid(children.stat.pzxid);
          snapshot.pzxids.set(path, pz);
          if (pz > snapshot.maxZxid) snapshot.maxZxid = pz;
          for (const child of children.children) {
            if (path === "/" && child === "zookeeper") continue;
            next.push(join(path, child));
          }
        }
      }));
      level = next;
    }
    return snapshot;
  }

  /** @inheritdoc */
  async list(prefix: string): Promise<Entry[]> {
    const p = normalizePrefix(prefix);
    const snapshot = await this.scan(p);
    return [...snapshot.keys].map(([key, e]) => ({ key, value: e.value, version: e.version }))
      .sort((a, b) => compareKeys(a.key, b.key));
  }

  /** @inheritdoc */
  async watch(prefix: string, onEvent: (event: WatchEvent) => void): Promise<Watch> {
    const p = normalizePrefix(prefix);
    const watch = new ZkWatch(this, p, onEvent, () => this.#watches.delete(watch));
    await watch.start();
    this.#watches.add(watch);
    return watch;
  }

  /** @inheritdoc */
  async lock(
    name: string,
    options: { ttlSeconds?: number; timeoutMs?: number } = {},
  ): Promise<Lock> {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
      throw new TypeError(
        `Cannot take lock "${name}": a lock name may hold letters, digits, ".", "-" and "_"`,
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const deadline = Date.now() + timeoutMs;
    const dir = `${LOCK_ROOT}/${name}`;
    let lostResolve!: () => void;
    const lost = new Promise<void>((resolve) => lostResolve = resolve);
    let released = false;
    const onSessionGone = () => {
      if (!released) lostResolve();
    };
    this.#sessionListeners.add(onSessionGone);
    // Each attempt names its node, so that a node whose creation answer was
    // lost can still be found and removed.
    const attempt = crypto.randomUUID().slice(0, 8);
    const removeAttempt = async () => {
      const res = await this.#getChildren(dir);
      for (const child of res?.children ?? []) {
        if (!child.startsWith(`lock-${attempt}-`)) continue;
        await this.#tolerant<unknown>(
          `release lock "${name}"`,
          [Exception.NO_NODE],
          (c, done) => c.remove(`${dir}/${child}`, -1, (e: unknown) => done(e, true)),
        );
      }
    };
    let mine: string;
    try {
      await this.#mkParents(`${dir}/x`);
      mine = await this.#call<string>(
        `lock "${name}"`,
        (c, done) =>
          c.create(`${dir}/lock-${attempt}-`, null, CreateMode.EPHEMERAL_SEQUENTIAL, done),
      );
    } catch (error) {
      released = true;
      this.#sessionListeners.delete(onSessionGone);
      this.#retryInBackground(removeAttempt);
      throw error;
    }
    const myName = mine.slice(dir.length + 1);
    const removeMine = () =>
      this.#tolerant<unknown>(
        `release lock "${name}"`,
        [Exception.NO_NODE],
        (c, done) => c.remove(mine, -1, (e: unknown) => done(e, true)),
      );
    try {
      while (true) {
        const res = await this.#getChildren(dir);
        // In line by the sequence number ZooKeeper appended (the last 10 digits).
        const children = (res?.children ?? []).sort((a, b) =>
          compareKeys(a.slice(-10), b.slice(-10))
        );
        const index = children.indexOf(myName);
        if (index < 0) {
          throw new StoreUnavailableError(
            `Cannot lock "${name}" on ${this.description}: the lock node vanished (session lost)`,
          );
        }
        if (index === 0) break;
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          throw new StoreUnavailableError(
            `Timed out after ${timeoutMs} ms waiting for lock "${name}" on ${this.description}`,
          );
        }
        const predecessor = `${dir}/${children[index - 1]}`;
        let wake!: () => void;
        const woken = new Promise<void>((resolve) => wake = resolve);
        const exists = await this.#call<unknown>(
          `lock "${name}"`,
          (c, done) => c.exists(predecessor, () => wake(), done),
        );
        if (exists) await Promise.race([woken, delay(Math.min(remaining, 1_000))]);
      }
    } catch (error) {
      released = true;
      this.#sessionListeners.delete(onSessionGone);
      // Left behind, the node would queue every later attempt behind it for
      // as long as the session lives (ZooKeeper restores sessions).
      await removeMine().catch(() => this.#retryInBackground(() => removeMine().then(() => {})));
      throw error;
    }
    return {
      lost,
      release: async () => {
        if (released) return;
        released = true;
        this.#sessionListeners.delete(onSessionGone);
        try {
          await removeMine();
        } catch (error) {
          // ZooKeeper is away: its session (and the lock node) may live on
          // when it returns. Remove the node as soon as it answers again.
          this.#retryInBackground(() => removeMine().then(() => {}));
          throw error;
        }
      },
    } satisfies Lock;
  }

  /** {@linkcode retryInBackground} until this store is closed or `RETRY_FOR_MS` passed. */
  #retryInBackground(fn: () => Promise<void>): void {
    retryInBackground(fn, () => this.#closed, RETRY_FOR_MS);
  }

  /** @inheritdoc */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    clearTimeout(this.#disconnectTimer);
    for (const watch of this.#watches) watch.stop();
    this.#watches.clear();
    this.#sessionGone();
    try {
      this.#client.close();
    } catch {
      // Already closed.
    }
    return Promise.resolve();
  }
}

/** One watch: re-arms one-shot ZooKeeper watches and diffs the subtree. */
class ZkWatch implements Watch {
  #snapshot: Snapshot | undefined;
  #armed = new Set<string>();
  #scanning = false;
  #dirty = false;
  #stopped = false;

  constructor(
    readonly store: ZooKeeperStore,
    readonly prefix: string,
    readonly onEvent: (event: WatchEvent) => void,
    readonly onClose: () => void,
  ) {}

  /** One function for every ZooKeeper watch of this Watch (the client dedupes it). */
  readonly #trigger = (event: unknown) => {
    const e = event as { getPath?: () => string; getType?: () => number } | undefined;
    const path = e?.getPath?.();
    if (path !== undefined) {
      // The fired watch is gone; forget it so the next scan arms it again.
      for (const kind of ["d", "c", "e"]) this.#armed.delete(`${kind}${path}`);
    }
    this.#kick();
  };

  async start(): Promise<void> {
    this.#snapshot = await this.store.scan(this.prefix, this.#trigger, this.#armed);
  }

  /** After a new session: every ZooKeeper watch is gone; scan again. */
  rearm(): void {
    this.#armed = new Set();
    this.#kick();
  }

  stop(): void {
    this.#stopped = true;
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#scanning) {
      this.#dirty = true;
      return;
    }
    this.#scanning = true;
    (async () => {
      try {
        do {
          this.#dirty = false;
          let snapshot: Snapshot | undefined;
          while (!this.#stopped) {
            try {
              snapshot = await this.store.scan(this.prefix, this.#trigger, this.#armed);
              break;
            } catch {
              // Store away: armed marks may be stale; retry until it is back.
              this.#armed = new Set();
              await delay(500);
            }
          }
          if (this.#stopped || !snapshot) return;
          this.#diff(snapshot);
        } while (this.#dirty && !this.#stopped);
      } finally {
        this.#scanning = false;
      }
    })();
  }

  #diff(next: Snapshot): void {
    const prev = this.#snapshot;
    this.#snapshot = next;
    if (!prev) return;
    const events: { order: bigint; depth: number; event: WatchEvent }[] = [];
    for (const [key, e] of next.keys) {
      const old = prev.keys.get(key);
      if (old && old.version === e.version && old.mzxid === e.mzxid) continue;
      events.push({
        order: e.mzxid,
        depth: 0,
        event: { type: "put", key, value: e.value, version: e.version },
      });
    }
    for (const key of prev.keys.keys()) {
      if (next.keys.has(key)) continue;
      // A delete happened at or before its parent's last child change.
      const order = next.pzxids.get(parentOf(key)) ?? next.maxZxid + 1n;
      events.push({ order, depth: key.split("/").length, event: { type: "delete", key } });
    }
    events.sort((a, b) =>
      a.order < b.order ? -1 : a.order > b.order ? 1 : b.depth - a.depth ||
        compareKeys(a.event.key, b.event.key)
    );
    for (const { event } of events) {
      if (this.#stopped) return;
      try {
        this.onEvent(event);
      } catch (error) {
        console.error(`Watch callback on ${this.store.description} failed:`, error);
      }
    }
  }

  close(): Promise<void> {
    this.stop();
    this.onClose();
    return Promise.resolve();
  }
}
