/**
 * The embedded backend of {@linkcode Store}, for a scheduler on one machine.
 *
 * Why SQLite (`node:sqlite`, built into Deno): with its write-ahead log a
 * crash (even SIGKILL or power loss mid-write) cannot corrupt the file; it
 * ships inside the Deno binary, so the embedded store needs no extra
 * dependency, service or unstable flag.
 *
 * Durability: a write is answered once the log holds it on disk, as with
 * `synchronous=FULL`, but the log's fsync runs on a thread of the runtime's
 * pool instead of inside the commit: `node:sqlite` is synchronous, and with
 * the fsync in the commit every write stopped the scheduler's event loop for
 * as long as the disk took (20 ms a write on a slow disk, with nothing else
 * handled meanwhile). SQLite runs with `synchronous=NORMAL` (the log is
 * written at each commit and synced at checkpoints), and this store syncs
 * the log after each write before answering. A failed sync closes the store:
 * what the disk holds is no longer known.
 *
 * One process owns the file: the database runs in `locking_mode=EXCLUSIVE`
 * and takes its lock when opened, so a second process (or a second store in
 * the same process) gets a clear error instead of corrupting it. Versions are
 * a global revision that grows with every write. Watches and locks are
 * in-process, which is exact because no other process can write.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { checkBatch, checkKey, normalizePrefix, underPrefix } from "./_util.ts";
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

/** Options for {@linkcode EmbeddedStore}. */
export interface EmbeddedStoreOptions {
  /** Path of the SQLite file (created if missing). */
  path: string;
}

interface Row {
  key: string;
  value: string;
  version: number | bigint;
}

interface Waiter {
  resolve: () => void;
}

function toEntry(row: Row): Entry {
  return { key: row.key, value: row.value, version: String(row.version) };
}

/** {@linkcode Store} in a local SQLite file owned by this process. */
export class EmbeddedStore implements Store {
  /** `embedded store at PATH`. */
  readonly description: string;
  readonly #db: DatabaseSync;
  /** The write-ahead log, synced after each write (see the module doc). */
  readonly #wal: Deno.FsFile;
  readonly #stmt: Record<
    "get" | "upsert" | "insert" | "update" | "del" | "delUnder" | "list" | "listAll" | "bump",
    StatementSync
  >;
  readonly #watchers = new Set<{ prefix: string; onEvent: (event: WatchEvent) => void }>();
  readonly #locks = new Map<string, Waiter[]>();
  readonly #lost = new Set<() => void>();
  #closed = false;

  /**
   * Opens (creating if needed) the store file. Throws
   * {@linkcode StoreUnavailableError} when the file cannot be opened or
   * another process owns it.
   */
  constructor(options: EmbeddedStoreOptions) {
    this.description = `embedded store at ${options.path}`;
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(options.path);
      db.exec("PRAGMA busy_timeout = 0");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      // Take the exclusive lock now, so a second owner fails at open time.
      db.exec("BEGIN EXCLUSIVE");
      db.exec(`CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        version INTEGER NOT NULL
      ) WITHOUT ROWID`);
      db.exec(`CREATE TABLE IF NOT EXISTS meta (
        name TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
      ) WITHOUT ROWID`);
      db.exec("INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0)");
      db.exec("COMMIT");
      // The log exists from the first commit on, and stays while the database is open.
      this.#wal = Deno.openSync(`${options.path}-wal`, { read: true });
      this.#wal.syncDataSync();
    } catch (error) {
      try {
        db?.close();
      } catch {
        // Nothing to close.
      }
      const message = (error as Error)?.message ?? String(error);
      const locked = /locked|busy/i.test(message);
      throw new StoreUnavailableError(
        locked
          ? `Cannot open ${this.description}: another process owns it (${message})`
          : `Cannot open ${this.description}: ${message}`,
        { cause: error },
      );
    }
    this.#db = db;
    this.#stmt = {
      get: db.prepare("SELECT key, value, version FROM kv WHERE key = ?"),
      upsert: db.prepare(
        "INSERT INTO kv (key, value, version) VALUES (?, ?, ?) " +
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
      ),
      insert: db.prepare("INSERT OR IGNORE INTO kv (key, value, version) VALUES (?, ?, ?)"),
      update: db.prepare("UPDATE kv SET value = ?, version = ? WHERE key = ? AND version = ?"),
      del: db.prepare("DELETE FROM kv WHERE key = ? RETURNING key"),
      delUnder: db.prepare(
        "DELETE FROM kv WHERE key = ? OR (key >= ? AND key < ?) RETURNING key",
      ),
      list: db.prepare(
        "SELECT key, value, version FROM kv WHERE key = ? OR (key >= ? AND key < ?) ORDER BY key",
      ),
      listAll: db.prepare("SELECT key, value, version FROM kv ORDER BY key"),
      bump: db.prepare(
        "UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value",
      ),
    };
  }

  #check(op: string): void {
    if (this.#closed) {
      throw new StoreUnavailableError(`Cannot ${op} on ${this.description}: the store is closed`);
    }
  }

  /** Runs `fn` in one write transaction and returns its result. */
  #write<T>(op: string, fn: () => T): T {
    this.#check(op);
    try {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const result = fn();
        this.#db.exec("COMMIT");
        return result;
      } catch (error) {
        this.#db.exec("ROLLBACK");
        throw error;
      }
    } catch (error) {
      throw new StoreUnavailableError(
        `Cannot ${op} on ${this.description}: ${(error as Error)?.message ?? error}`,
        { cause: error },
      );
    }
  }

  /** Tells the watchers of a committed write, then waits until it is on disk (`#durable`). */
  #publish(op: string, events: WatchEvent[]): Promise<void> {
    this.#emit(events);
    return this.#durable(op);
  }

  /**
   * Resolves once the write-ahead log is on disk (what a write answered
   * after this holds). A failed sync closes the store and throws.
   */
  async #durable(op: string): Promise<void> {
    try {
      await this.#wal.syncData();
    } catch (error) {
      if (this.#closed) {
        throw new StoreUnavailableError(
          `Cannot ${op} on ${this.description}: the store was closed before it was on disk`,
          { cause: error },
        );
      }
      await this.close();
      throw new StoreUnavailableError(
        `Cannot ${op} on ${this.description}: syncing its log to disk failed (${
          (error as Error)?.message ?? error
        }); the store is closed`,
        { cause: error },
      );
    }
  }

  #revision(): number {
    const row = this.#stmt.bump.get() as { value: number | bigint };
    return Number(row.value);
  }

  #emit(events: WatchEvent[]): void {
    for (const event of events) {
      for (const watcher of this.#watchers) {
        if (watcher.prefix !== "" && !underPrefix(event.key, watcher.prefix)) continue;
        try {
          watcher.onEvent({ ...event });
        } catch (error) {
          console.error(`Watch callback on ${this.description} failed:`, error);
        }
      }
    }
  }

  /** Checks that the store is open; throws {@linkcode StoreUnavailableError} otherwise. */
  ping(): Promise<void> {
    this.#check("ping");
    return Promise.resolve();
  }

  /** @inheritdoc */
  get(key: string): Promise<Entry | undefined> {
    try {
      checkKey(key);
      this.#check(`get "${key}"`);
      const row = this.#stmt.get.get(key) as Row | undefined;
      return Promise.resolve(row ? toEntry(row) : undefined);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @inheritdoc */
  async put(key: string, value: string): Promise<string> {
    checkKey(key);
    const version = this.#write(`put "${key}"`, () => {
      const revision = this.#revision();
      this.#stmt.upsert.run(key, value, revision);
      return String(revision);
    });
    await this.#publish(`put "${key}"`, [{ type: "put", key, value, version }]);
    return version;
  }

  /** @inheritdoc */
  async cas(key: string, value: string, version: string | null): Promise<string | undefined> {
    checkKey(key);
    const result = this.#write(`cas "${key}"`, () => {
      const current = this.#stmt.get.get(key) as Row | undefined;
      if (version === null ? current !== undefined : String(current?.version) !== version) {
        return undefined;
      }
      const revision = this.#revision();
      if (version === null) this.#stmt.insert.run(key, value, revision);
      else this.#stmt.update.run(value, revision, key, current!.version);
      return String(revision);
    });
    if (result === undefined) return undefined;
    await this.#publish(`cas "${key}"`, [{ type: "put", key, value, version: result }]);
    return result;
  }

  /** @inheritdoc */
  async batch(writes: BatchWrite[]): Promise<BatchResult> {
    checkBatch(writes);
    if (writes.length === 0) return { ok: true, versions: [] };
    const events: WatchEvent[] = [];
    const result = this.#write(`batch of ${writes.length} write(s)`, (): BatchResult => {
      // Every condition is checked before anything is written (one transaction).
      for (const [i, w] of writes.entries()) {
        if ("delete" in w || w.version === undefined) continue;
        const current = this.#stmt.get.get(w.key) as Row | undefined;
        const holds = w.version === null
          ? current === undefined
          : current !== undefined && String(current.version) === w.version;
        if (!holds) return { ok: false, conflict: i };
      }
      const revision = this.#revision();
      const version = String(revision);
      const versions: (string | undefined)[] = [];
      for (const w of writes) {
        if ("delete" in w) {
          const rows = this.#stmt.del.all(w.key) as { key: string }[];
          for (const r of rows) events.push({ type: "delete", key: r.key });
          versions.push(undefined);
        } else {
          this.#stmt.upsert.run(w.key, w.value, revision);
          events.push({ type: "put", key: w.key, value: w.value, version });
          versions.push(version);
        }
      }
      return { ok: true, versions };
    });
    if (!result.ok) return result;
    await this.#publish(`batch of ${writes.length} write(s)`, events);
    return result;
  }

  /** @inheritdoc */
  async delete(key: string): Promise<void> {
    checkKey(key);
    const deleted = this.#write(`delete "${key}"`, () => {
      const rows = this.#stmt.del.all(key) as { key: string }[];
      if (rows.length > 0) this.#revision();
      return rows;
    });
    if (deleted.length === 0) return;
    await this.#publish(`delete "${key}"`, deleted.map((r) => ({ type: "delete", key: r.key })));
  }

  /** @inheritdoc */
  async deletePrefix(prefix: string): Promise<void> {
    const p = normalizePrefix(prefix);
    const deleted = this.#write(`delete prefix "${prefix}"`, () => {
      const rows = p === ""
        ? this.#db.prepare("DELETE FROM kv RETURNING key").all() as { key: string }[]
        : this.#stmt.delUnder.all(p, `${p}/`, `${p}0`) as { key: string }[];
      if (rows.length > 0) this.#revision();
      return rows.map((r) => r.key).sort();
    });
    if (deleted.length === 0) return;
    await this.#publish(
      `delete prefix "${prefix}"`,
      deleted.map((key) => ({ type: "delete", key })),
    );
  }

  /** @inheritdoc */
  list(prefix: string): Promise<Entry[]> {
    try {
      const p = normalizePrefix(prefix);
      this.#check(`list "${prefix}"`);
      const rows = p === ""
        ? this.#stmt.listAll.all() as unknown as Row[]
        : this.#stmt.list.all(p, `${p}/`, `${p}0`) as unknown as Row[];
      return Promise.resolve(rows.map(toEntry));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** @inheritdoc */
  watch(prefix: string, onEvent: (event: WatchEvent) => void): Promise<Watch> {
    try {
      const p = normalizePrefix(prefix);
      this.#check(`watch "${prefix}"`);
      const watcher = { prefix: p, onEvent };
      this.#watchers.add(watcher);
      return Promise.resolve({
        close: () => {
          this.#watchers.delete(watcher);
          return Promise.resolve();
        },
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * @inheritdoc
   *
   * The lock is in-process (this process owns the file); `ttlSeconds` is
   * not needed and ignored. `lost` resolves when the store is closed.
   */
  async lock(
    name: string,
    options: { ttlSeconds?: number; timeoutMs?: number } = {},
  ): Promise<Lock> {
    this.#check(`lock "${name}"`);
    const timeoutMs = options.timeoutMs ?? 5_000;
    const queue = this.#locks.get(name);
    if (queue === undefined) {
      this.#locks.set(name, []);
    } else {
      const waiter = { resolve: () => {} };
      let timer: ReturnType<typeof setTimeout> | undefined;
      const granted = await new Promise<boolean>((resolve) => {
        waiter.resolve = () => resolve(true);
        queue.push(waiter);
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      clearTimeout(timer);
      if (!granted) {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        throw new StoreUnavailableError(
          `Timed out after ${timeoutMs} ms waiting for lock "${name}" on ${this.description}`,
        );
      }
      if (this.#closed) {
        throw new StoreUnavailableError(
          `Cannot lock "${name}" on ${this.description}: the store is closed`,
        );
      }
    }
    let released = false;
    let lostResolve!: () => void;
    const lost = new Promise<void>((resolve) => lostResolve = resolve);
    const onLost = () => {
      if (!released) lostResolve();
    };
    this.#lost.add(onLost);
    return {
      lost,
      release: () => {
        if (released) return Promise.resolve();
        released = true;
        this.#lost.delete(onLost);
        const waiters = this.#locks.get(name) ?? [];
        const next = waiters.shift();
        if (next) next.resolve();
        else this.#locks.delete(name);
        return Promise.resolve();
      },
    } satisfies Lock;
  }

  /** @inheritdoc */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#watchers.clear();
    for (const onLost of this.#lost) onLost();
    this.#lost.clear();
    for (const waiters of this.#locks.values()) for (const w of waiters) w.resolve();
    this.#locks.clear();
    try {
      this.#wal.close();
    } catch {
      // Closed already.
    }
    this.#db.close();
    return Promise.resolve();
  }
}
