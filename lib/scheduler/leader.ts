/**
 * Leader election of several `sched` processes sharing one framework (one
 * store prefix) on etcd or ZooKeeper: the one holding the store lock acts,
 * the others stand by and answer the REST API with 503 naming the leader.
 *
 * The lock is bound to an etcd lease / ZooKeeper session, so a leader that
 * dies loses it within the lease ttl (session timeout). A leader that loses
 * it while alive (or loses its store) must stop acting at once:
 * {@linkcode Leadership.lost} resolves with the reason, and `sched` steps
 * down to standby in the same process, answering STATUS from its last view
 * (marked stale while the store cannot be read) until it leads again.
 *
 * @module
 */
import { type Lock, type Store, StoreUnavailableError } from "../store/store.ts";
import { createApiHandler } from "../api/handler.ts";
import { HttpError } from "../api/http_error.ts";
import { Scheduler } from "./core.ts";
import { type InstanceView, markStale } from "./status_view.ts";
import { readHistory } from "./events.ts";
import { DEFAULT_RESOURCES } from "./match.ts";
import { buildExecutorInfo } from "./tasks.ts";

/** Base name of the store lock; the store prefix is appended (see {@linkcode leaderLockName}). */
export const LEADER_LOCK = "framework-leader";

/**
 * The lock name for the framework under `prefix`: `framework-leader` followed
 * by the prefix with every character other than letters, digits, `-` and `_`
 * written as `.` and two hex digits (`/mr-redis` → `framework-leader.2fmr-redis`).
 * Lock names are global in the store, so two frameworks on different
 * prefixes must not share one.
 */
export function leaderLockName(prefix: string): string {
  const escaped = [...new TextEncoder().encode(prefix)].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9_-]/.test(c) ? c : `.${b.toString(16).padStart(2, "0")}`;
  }).join("");
  return `${LEADER_LOCK}${escaped}`;
}

/** The store key holding the current leader's record: `{prefix}/leader`. */
export function leaderKey(prefix: string): string {
  return `${prefix.replace(/\/+$/, "")}/leader`;
}

/** What the leader writes under {@linkcode leaderKey} after taking the lock. */
export interface LeaderRecord {
  /** Where the leader's REST API is reached, e.g. `http://sched1:5656`. */
  URL: string;
  /** A random id of the leading process, unique per start. */
  Id: string;
  /** When it became leader (ISO 8601). */
  Since: string;
}

/** Reads the leader record; `undefined` when absent or unreadable. */
export async function readLeader(store: Store, prefix: string): Promise<LeaderRecord | undefined> {
  const entry = await store.get(leaderKey(prefix));
  if (!entry) return undefined;
  try {
    const rec = JSON.parse(entry.value) as Partial<LeaderRecord>;
    if (typeof rec.URL !== "string" || typeof rec.Id !== "string") return undefined;
    return { URL: rec.URL, Id: rec.Id, Since: String(rec.Since ?? "") };
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode becomeLeader}. */
export interface ElectionOptions {
  /** An etcd or ZooKeeper store (the embedded store needs no election). */
  store: Store;
  /** The framework's store prefix. */
  prefix: string;
  /** This process's id, written in the leader record (see {@linkcode LeaderRecord.Id}). */
  id: string;
  /** This process's advertised REST API URL. */
  url: string;
  /** Lease ttl of the lock in seconds (etcd; ZooKeeper uses its session timeout). Default 10. */
  ttlSeconds?: number;
  /** How long one attempt waits for the lock before trying again, in ms. Default 15000. */
  attemptMs?: number;
  /** Pause after a failed attempt (store unreachable), in ms. Default 500. */
  retryMs?: number;
  /** While the store stays unreachable, log that it is awaited this often, in ms. Default 10000. */
  waitLogMs?: number;
  /** How often the leader checks the store still names it, in ms. Default 1000. */
  checkMs?: number;
  /** Stops waiting: {@linkcode becomeLeader} then resolves `undefined`. */
  signal?: AbortSignal;
  /** Log sink. */
  log: (line: string) => void;
}

/** Held leadership. */
export interface Leadership {
  /**
   * Resolves (never rejects) with the reason when leadership is gone without
   * {@linkcode Leadership.release}: the lock was lost (lease or session
   * expired), another process wrote the leader record, or the store could not
   * be read for half the ttl (the lease may have run out meanwhile).
   */
  readonly lost: Promise<string>;
  /**
   * Stops the checks, deletes the leader record if still ours, releases the
   * lock (also after {@linkcode Leadership.lost}: a lock whose store was only
   * away must not stay held). When the store cannot be reached the lock is
   * released in the background as soon as it answers again.
   */
  release(): Promise<void>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`Option "${name}" must be a positive number, but got ${value}`);
  }
  return v;
}

/**
 * The leader a standby may name from the record it read: `undefined` when
 * there is none, or when the record is this scheduler's own (its id, from
 * before it stepped down, or its URL, from an earlier run on the same
 * address) — a standby never names itself as the leader it waits for.
 */
export function leaderToName(
  rec: LeaderRecord | undefined,
  self: { id: string; url: string },
): LeaderRecord | undefined {
  if (!rec || rec.Id === self.id || rec.URL === self.url) return undefined;
  return rec;
}

/**
 * Waits until this process holds the framework's leader lock, then writes the
 * leader record and watches that it stays leader. While waiting it logs once
 * that it stands by (and again when the leader it sees changes), and while
 * the store is unreachable it retries every `retryMs` and logs so every
 * `waitLogMs`. Resolves `undefined` when `signal` aborts first. Never throws
 * for store failures; throws `RangeError` for bad options.
 */
export async function becomeLeader(options: ElectionOptions): Promise<Leadership | undefined> {
  const ttlSeconds = positive("ttlSeconds", options.ttlSeconds, 10);
  const attemptMs = positive("attemptMs", options.attemptMs, 15_000);
  const retryMs = positive("retryMs", options.retryMs, 500);
  const checkMs = positive("checkMs", options.checkMs, 1_000);
  const waitLogMs = positive("waitLogMs", options.waitLogMs, 10_000);
  const { store, prefix, log, signal } = options;
  const name = leaderLockName(prefix);
  let told: string | undefined;
  const tell = async (why: string, early = false) => {
    // Nothing to tell while the store cannot be read (that is logged apart).
    const leader = leaderToName(await readLeader(store, prefix), options);
    // A first attempt that is merely slow is no sign that anyone holds the lock.
    if (early && !leader) return;
    const where = leader ? leader.URL : "not known yet";
    const line = `Standing by: another scheduler holds the lock "${name}" ` +
      `on ${store.description}; the leader is ${leader ? "at " : ""}${where}${why}`;
    if (told !== where) log(line);
    told = where;
  };

  let lock: Lock | undefined;
  /** Since when the store has been unreachable, and when that was last logged. */
  let down: { since: number; loggedAt: number } | undefined;
  while (!lock) {
    if (signal?.aborted) return undefined;
    const attempt = store.lock(name, { ttlSeconds, timeoutMs: attemptMs });
    // Tell once, right after the first attempt did not succeed at once.
    const early = setTimeout(() => tell("", true).catch(() => {}), 300);
    try {
      lock = await (signal
        ? Promise.race([
          attempt,
          new Promise<undefined>((resolve) =>
            signal.addEventListener("abort", () => resolve(undefined), { once: true })
          ),
        ])
        : attempt);
      if (!lock && signal?.aborted) {
        // Aborted while waiting: release the lock if it still arrives.
        attempt.then((l) => l.release()).catch(() => {});
        return undefined;
      }
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      if (!/Timed out after \d+ ms waiting for lock/.test(error.message)) {
        const now = Date.now();
        if (!down) {
          down = { since: now, loggedAt: now };
          log(
            `Waiting for the store ${store.description} (retrying every ${retryMs} ms): ${error.message}`,
          );
        } else if (now - down.loggedAt >= waitLogMs) {
          down.loggedAt = now;
          log(
            `Still waiting for the store ${store.description} (unreachable for ${
              Math.round((now - down.since) / 1000)
            } s): ${error.message}`,
          );
        }
        await sleep(retryMs, signal);
      } else {
        if (down) log(`The store ${store.description} answers again`);
        down = undefined;
        await tell("").catch(() => {});
      }
    } finally {
      clearTimeout(early);
    }
  }
  const held = lock;
  if (down) log(`The store ${store.description} answers again`);

  let resolveLost!: (reason: string) => void;
  const lost = new Promise<string>((resolve) => resolveLost = resolve);
  let over = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  const end = (reason: string) => {
    if (over) return;
    over = true;
    clearInterval(timer);
    resolveLost(reason);
  };
  held.lost.then(() => end(`the lock "${name}" was lost (store lease or session expired)`));

  // Write the record; keep trying while the lock holds (the store may blink).
  const record: LeaderRecord = {
    URL: options.url,
    Id: options.id,
    Since: new Date().toISOString(),
  };
  let lastOk = Date.now();
  for (;;) {
    if (signal?.aborted) {
      over = true;
      await held.release().catch(() => {});
      return undefined;
    }
    try {
      await store.put(leaderKey(prefix), JSON.stringify(record));
      lastOk = Date.now();
      break;
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) {
        await held.release().catch(() => {});
        throw error;
      }
      if (over || Date.now() - lastOk > (ttlSeconds * 1000) / 2) {
        over = true;
        await held.release().catch(() => {});
        return becomeLeader(options);
      }
      await sleep(Math.min(retryMs, 500), signal);
    }
  }

  // Watchdog: the store still names us, and answered recently enough that
  // the lease cannot have run out unnoticed.
  let checking = false;
  if (!over) {
    timer = setInterval(() => {
      if (over) return;
      if (Date.now() - lastOk > (ttlSeconds * 1000) / 2) {
        end(
          `${store.description} did not answer for ${
            Math.round((Date.now() - lastOk) / 100) / 10
          } s; the lock's lease may have run out`,
        );
        return;
      }
      if (checking) return;
      checking = true;
      readLeader(store, prefix).then((rec) => {
        if (over) return;
        if (rec && rec.Id !== options.id) {
          end(`the store names another leader (${rec.URL})`);
        } else if (!rec) {
          // Deleted by someone: write it again.
          return store.put(leaderKey(prefix), JSON.stringify(record)).then(() => {
            lastOk = Date.now();
          });
        } else {
          lastOk = Date.now();
        }
      }).catch(() => {}).finally(() => checking = false);
    }, checkMs);
  }

  let released = false;
  return {
    lost,
    async release() {
      if (released) return;
      released = true;
      over = true;
      clearInterval(timer);
      try {
        const rec = await readLeader(store, prefix);
        if (rec?.Id === options.id) await store.delete(leaderKey(prefix));
      } catch {
        // the next leader overwrites it
      }
      await held.release().catch(() => {});
    },
  };
}

/** Options of {@linkcode standbyHandler}. */
export interface StandbyOptions {
  store: Store;
  prefix: string;
  /** This process's id (see {@linkcode leaderToName}). */
  id: string;
  /** This process's advertised URL (see {@linkcode leaderToName}). */
  url: string;
  /** Whether this process holds the lock and is loading the store to lead. Default never. */
  takingOver?: () => boolean;
  /** How long a read leader record is reused, in ms. Default 1000. */
  cacheMs?: number;
}

/**
 * The REST API of a standby: every route answers 503 with
 * `This scheduler is standing by; the leader is at URL`, a `Retry-After: 2`
 * header and the leader's URL in `X-Mrr-Leader`. It never redirects, and
 * never names itself (see {@linkcode leaderToName}); when the store cannot be
 * read it says so.
 */
export function standbyHandler(options: StandbyOptions): (request: Request) => Promise<Response> {
  const cacheMs = options.cacheMs ?? 1_000;
  let cached: { at: number; rec: LeaderRecord | undefined; failed: boolean } | undefined;
  return async (request: Request) => {
    await request.body?.cancel().catch(() => {});
    const headers: Record<string, string> = {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": "2",
    };
    if (options.takingOver?.()) {
      return new Response("This scheduler is taking over as the leader; try again in a moment", {
        status: 503,
        headers,
      });
    }
    if (!cached || Date.now() - cached.at > cacheMs) {
      // A store that does not answer within a second counts as unreachable:
      // the answer must not wait for the store's own time-out.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const slow = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no answer within 1 s")), 1_000);
      });
      let failed = false;
      const rec = await Promise.race([readLeader(options.store, options.prefix), slow])
        .catch(() => {
          failed = true;
          return undefined;
        })
        .finally(() => clearTimeout(timer));
      cached = { at: Date.now(), rec, failed };
    }
    const rec = leaderToName(cached.rec, options);
    let text: string;
    if (rec) {
      text = `This scheduler is standing by; the leader is at ${rec.URL}`;
      headers["x-mrr-leader"] = rec.URL;
    } else if (cached.failed) {
      text = `This scheduler is standing by and cannot reach the state store ` +
        `(${options.store.description}); it takes over when the store answers and no other leads`;
    } else {
      text = "This scheduler is standing by; the leader is not known yet";
    }
    return new Response(text, { status: 503, headers });
  };
}

/** Options of {@linkcode standbyReads}. */
export interface StandbyReadsOptions {
  store: Store;
  prefix: string;
  /** How long a snapshot of the store is reused, in ms. Default 1000. */
  refreshMs?: number;
  /**
   * How long a STATUS waits for a fresh snapshot before it answers from the
   * last one, marked stale, in ms. Default 1000.
   */
  staleAfterMs?: number;
}

/** What a STATUS view is made from: a loaded (or stopped) core. */
export interface ViewSource {
  status(name: string): InstanceView | undefined;
  list(): InstanceView[];
}

/** The read side of a standby (see {@linkcode standbyReads}). */
export interface StandbyReads {
  /** Answers `GET /v1/STATUS[/{name}]`; `undefined` for every other request. */
  handle(request: Request): Promise<Response> | undefined;
  /**
   * Keeps `source` as the last known view, as of `at` (ms since the epoch):
   * a leader that steps down hands over its own view, with live figures.
   */
  remember(source: ViewSource, at: number): void;
}

/**
 * The read side of a standby: `GET /v1/STATUS` and `GET /v1/STATUS/{name}`
 * answered from a read-only snapshot of the store (reloaded at most every
 * `refreshMs`), so a restarted or standing-by scheduler lists every instance
 * at once, with the addresses the leader recorded (no live stats: memory and
 * clients read 0). When the store cannot be read within `staleAfterMs`, the
 * last view (a snapshot, or what a stepped-down leader handed over) is
 * served with `Stale: true` and its age in `StaleSeconds` on every instance
 * and in an `X-Mrr-Stale` header; with no view at all the answer is 503. It
 * writes nothing. {@linkcode StandbyReads.handle} returns `undefined` for
 * every other request, which the caller answers with {@linkcode standbyHandler}.
 */
export function standbyReads(options: StandbyReadsOptions): StandbyReads {
  const refreshMs = options.refreshMs ?? 1_000;
  const staleAfterMs = options.staleAfterMs ?? 1_000;
  let snapshot: { at: number; source: ViewSource; fromStore: boolean } | undefined;
  let loading: Promise<ViewSource> | undefined;
  const load = (): Promise<ViewSource> =>
    loading ??= (async () => {
      try {
        const core = new Scheduler({
          store: options.store,
          prefix: options.prefix,
          // Never used: a snapshot launches nothing.
          executorInfo: buildExecutorInfo({
            uris: [],
            command: "./MrRedisExecutor",
            resources: DEFAULT_RESOURCES,
          }),
          tickMs: 0,
        });
        await core.load({ readOnly: true });
        snapshot = { at: Date.now(), source: core, fromStore: true };
        return core;
      } finally {
        loading = undefined;
      }
    })();
  /** The view to answer from and, when it could not be confirmed now, its age in ms. */
  const current = async (): Promise<{ source: ViewSource; staleMs?: number }> => {
    if (snapshot?.fromStore && Date.now() - snapshot.at < refreshMs) {
      return { source: snapshot.source };
    }
    const fresh = load();
    if (!snapshot) return { source: await fresh };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) =>
      timer = setTimeout(() => resolve(undefined), staleAfterMs)
    );
    try {
      const source = await Promise.race([fresh, late]).catch(() => undefined);
      if (source) return { source };
    } finally {
      clearTimeout(timer);
    }
    fresh.catch(() => {});
    return { source: snapshot.source, staleMs: Date.now() - snapshot.at };
  };
  const refuse = () =>
    Promise.reject(new HttpError(503, "This scheduler is standing by; it only answers STATUS"));
  const apiOf = (view: { source: ViewSource; staleMs?: number }) => {
    const stale = (v: InstanceView | undefined) =>
      v && view.staleMs !== undefined ? markStale(v, view.staleMs) : v;
    return createApiHandler({
      create: refuse,
      delete: refuse,
      status: (name) => stale(view.source.status(name)),
      list: () => view.source.list().map((v) => stale(v)!),
      // Read from the store on demand (a snapshot holds no histories).
      events: (name) => readHistory(options.store, options.prefix, name),
    });
  };
  return {
    remember(source, at) {
      snapshot = { at, source, fromStore: false };
    },
    handle(request) {
      const path = new URL(request.url).pathname;
      if (request.method !== "GET" || !/^\/v1\/(STATUS|EVENTS)(\/|$)/i.test(path)) {
        return undefined;
      }
      return (async () => {
        let view: { source: ViewSource; staleMs?: number };
        try {
          view = await current();
        } catch (error) {
          const why = error instanceof StoreUnavailableError
            ? "the state store is unavailable"
            : (error as Error).message;
          return new Response(
            `This scheduler is standing by and cannot read the store: ${why}\n`,
            {
              status: 503,
              headers: { "content-type": "text/plain; charset=utf-8", "retry-after": "2" },
            },
          );
        }
        const response = await apiOf(view)(request);
        response.headers.set("x-mrr-role", "standby");
        if (view.staleMs !== undefined) {
          response.headers.set("x-mrr-stale", String(Math.floor(view.staleMs / 1000)));
        }
        return response;
      })();
    },
  };
}
