/**
 * One contract for every store backend: the same suite runs against etcd,
 * ZooKeeper (real servers from `_services.ts`) and the embedded SQLite store.
 *
 * Contract points the suite pins down:
 * - `list(p)` and `deletePrefix(p)` use path-prefix semantics: `p` itself and
 *   keys under `p/`, never siblings such as `p-x`; a trailing `/` is ignored.
 *   Results are sorted by key.
 * - `cas(k, v, null)` creates only when absent; `cas(k, v, version)` writes
 *   only when `version` is current; the loser gets `undefined`.
 * - `batch(writes)` makes every write or none; each conditional put is a
 *   compare-and-set; a failed one is named and nothing is written.
 * - `watch` reports changes in the order they were made; a key written
 *   several times in a burst may be reported once with its last value
 *   (ZooKeeper), but never out of order.
 * - An unreachable store fails every call with StoreUnavailableError within a
 *   bounded time, and the same client works again once the server is back.
 *
 * @module
 */
import { buildSlowFsyncShim } from "../bench/_create.ts";
import { deadPort } from "./_ports.ts";
import nodeAssert from "node:assert";
import { type Service, startEtcd, startZooKeeper } from "./_services.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  type BatchWrite,
  EmbeddedStore,
  EtcdStore,
  openStore,
  type Store,
  StoreUnavailableError,
  type WatchEvent,
  ZooKeeperStore,
} from "../lib/store/mod.ts";

// Local helpers: tests/_assert.ts does not type-check against Deno 2.9's node:assert types.
function assert(value: unknown, message = "Assertion failed"): asserts value {
  nodeAssert.ok(value, message);
}

function assertEquals<T>(actual: T, expected: T, message = "Values differ"): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

async function assertRejects(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error("Expected the call to reject");
}

/** Operation bound used by the suite's clients. */
const TIMEOUT_MS = 2_000;

/** What the contract needs from a backend under test. */
interface Backend {
  /** Opens a (new) client on the backend. */
  open(): Promise<Store>;
  /** Opens a client whose locks are lost soon after `down` (short lease/session). */
  openShortLived(): Promise<Store>;
  /** Restarts the server keeping its data; `undefined` for the embedded store. */
  restart?: () => Promise<void>;
  /** Makes the store unreachable (SIGKILL the server; embedded: close `store`). */
  down(store: Store): Promise<void>;
  /** Brings it back. */
  up(): Promise<void>;
  /** Whether clients survive `down`/`up` (false for the embedded store, whose owner is gone). */
  recovers: boolean;
  /** ttl to use for locks that must be lost fast. */
  lockTtl: number;
  cleanup(): Promise<void>;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

function contract(name: string, setup: () => Promise<Backend>) {
  Deno.test({
    name: `${name} store keeps the store contract`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      const backend = await setup();
      let store = await backend.open();
      try {
        await t.step("get, put, delete and list by path prefix", async () => {
          assertEquals(await store.get("/t1/none"), undefined);
          const v1 = await store.put("/t1/a", "1");
          await store.put("/t1/a/b", "2");
          await store.put("/t1/a-x", "3");
          await store.put("/t1/b/c", "4");
          const entry = await store.get("/t1/a");
          assertEquals(entry, { key: "/t1/a", value: "1", version: v1 });
          const v2 = await store.put("/t1/a", "one");
          assert(v2 !== v1, "a write changes the version");
          assertEquals((await store.get("/t1/a"))?.value, "one");
          const keys = async (p: string) => (await store.list(p)).map((e) => e.key);
          assertEquals(await keys("/t1/a"), ["/t1/a", "/t1/a/b"]);
          assertEquals(await keys("/t1/a/"), ["/t1/a", "/t1/a/b"]);
          assertEquals(await keys("/t1"), ["/t1/a", "/t1/a-x", "/t1/a/b", "/t1/b/c"]);
          assertEquals(await keys("/t1/nothing"), []);
          assertEquals((await store.list("/t1/b"))[0]?.value, "4");
          await store.put("/t1/empty", "");
          assertEquals((await store.get("/t1/empty"))?.value, "");
          await store.delete("/t1/empty");
          await store.delete("/t1/never-there");
          // Deleting a key that has keys under it leaves those keys alone.
          await store.delete("/t1/a");
          assertEquals(await store.get("/t1/a"), undefined);
          assertEquals(await keys("/t1/a"), ["/t1/a/b"]);
          await store.put("/t1/a", "again");
          await store.deletePrefix("/t1/a");
          assertEquals(await keys("/t1"), ["/t1/a-x", "/t1/b/c"]);
          await store.deletePrefix("/t1/");
          assertEquals(await keys("/t1"), []);
          await assertRejects(() => store.get("no-slash"));
        });

        await t.step("compare-and-set detects conflicts", async () => {
          const v0 = await store.put("/t2/k", "v0");
          const [a, b] = await Promise.all([
            store.cas("/t2/k", "a", v0),
            store.cas("/t2/k", "b", v0),
          ]);
          assert((a === undefined) !== (b === undefined), "exactly one writer wins");
          const winner = a === undefined ? "b" : "a";
          assertEquals((await store.get("/t2/k"))?.value, winner);
          assertEquals(await store.cas("/t2/k", "stale", v0), undefined);
          assertEquals(await store.cas("/t2/k", "exists", null), undefined);
          const created = await Promise.all(
            [0, 1, 2, 3, 4].map((i) => store.cas("/t2/new/n", `w${i}`, null)),
          );
          const wins = created.filter((v) => v !== undefined);
          assertEquals(wins.length, 1, "create-if-absent has one winner");
          const got = await store.get("/t2/new/n");
          assertEquals(got?.version, wins[0]);
          const next = await store.cas("/t2/new/n", "updated", got!.version);
          assert(next !== undefined && next !== got!.version);
          await store.delete("/t2/new/n");
          assert(await store.cas("/t2/new/n", "recreated", null) !== undefined);
          assertEquals(await store.cas("/t2/missing", "x", "1"), undefined);
          await store.deletePrefix("/t2");
        });

        await t.step("a batch writes all or nothing, each put a compare-and-set", async () => {
          assertEquals(await store.batch([]), { ok: true, versions: [] });
          const vA = await store.put("/t6/a", "a0");
          await store.put("/t6/gone", "g");
          const done = await store.batch([
            { key: "/t6/a", value: "a1", version: vA },
            { key: "/t6/new", value: "n1", version: null },
            { key: "/t6/any", value: "x" },
            { key: "/t6/deep/er/key", value: "" },
            { key: "/t6/gone", delete: true },
            { key: "/t6/never-there", delete: true },
          ]);
          assert(done.ok, `the batch is made: ${JSON.stringify(done)}`);
          const [va1, vNew, vAny, vDeep, vGone, vNever] = done.versions;
          assertEquals([vGone, vNever], [undefined, undefined]);
          for (const v of [va1, vNew, vAny, vDeep]) assert(typeof v === "string" && v !== "");
          assert(va1 !== vA, "a batch write changes the version");
          const read = async (k: string) => {
            const e = await store.get(k);
            return e && [e.value, e.version];
          };
          assertEquals(await read("/t6/a"), ["a1", va1]);
          assertEquals(await read("/t6/new"), ["n1", vNew]);
          assertEquals(await read("/t6/any"), ["x", vAny]);
          assertEquals(await read("/t6/deep/er/key"), ["", vDeep]);
          assertEquals(await store.get("/t6/gone"), undefined);
          // The returned versions are the ones to compare against next.
          assert(await store.cas("/t6/new", "n2", vNew!) !== undefined);

          // One failed condition: nothing at all is written, and the result names it.
          const before = await store.list("/t6");
          for (
            const [i, bad] of [
              [1, { key: "/t6/a", value: "stale", version: vA }],
              [1, { key: "/t6/any", value: "exists", version: null }],
              [1, { key: "/t6/missing", value: "m", version: va1! }],
              // Stale since the cas above (on ZooKeeper, version "0": it must not mean "any").
              [1, { key: "/t6/new", value: "stale", version: vNew! }],
            ] as [number, BatchWrite][]
          ) {
            const res = await store.batch([
              { key: "/t6/fresh", value: "f", version: null },
              bad,
              { key: "/t6/deep/er/key", delete: true },
            ]);
            assertEquals(res, { ok: false, conflict: i }, `conflict on ${bad.key}`);
            assertEquals(await store.list("/t6"), before, "nothing was written");
          }

          // Two batches racing on one key: exactly one is made, wholly.
          const cur = (await store.get("/t6/a"))!.version;
          const [r1, r2] = await Promise.all(["x", "y"].map((tag) =>
            store.batch([
              { key: "/t6/a", value: tag, version: cur },
              { key: `/t6/race-${tag}`, value: tag },
            ])
          ));
          assert(r1!.ok !== r2!.ok, "exactly one batch wins");
          const winner = r1!.ok ? "x" : "y";
          const loser = r1!.ok ? "y" : "x";
          assertEquals((await store.get("/t6/a"))?.value, winner);
          assertEquals((await store.get(`/t6/race-${winner}`))?.value, winner);
          assertEquals(await store.get(`/t6/race-${loser}`), undefined);

          // A key and keys under it, new, in one batch (an instance and its processes).
          const tree = await store.batch([
            { key: "/t6/tree", value: "root", version: null },
            { key: "/t6/tree/procs/p1", value: "1", version: null },
            { key: "/t6/tree/procs/p2", value: "2" },
          ]);
          assert(tree.ok, `a key with keys under it: ${JSON.stringify(tree)}`);
          assertEquals(
            (await store.list("/t6/tree")).map((e) => [e.key, e.value]),
            [["/t6/tree", "root"], ["/t6/tree/procs/p1", "1"], ["/t6/tree/procs/p2", "2"]],
          );
          assertEquals(
            await store.batch([{ key: "/t6/tree", value: "again", version: null }]),
            { ok: false, conflict: 0 },
          );

          const error = await assertRejects(() =>
            store.batch([{ key: "/t6/a", value: "1" }, { key: "/t6/a", delete: true }])
          );
          assert(error instanceof TypeError, "a key twice in one batch is refused");
          await store.deletePrefix("/t6");
        });

        await t.step("a batch's changes reach watchers", async () => {
          const events: WatchEvent[] = [];
          const watch = await store.watch("/t7", (e) => events.push(e));
          await store.put("/t7/old", "o");
          await waitFor("the first put", () => events.length === 1);
          const res = await store.batch([
            { key: "/t7/a", value: "1" },
            { key: "/t7/b", value: "2", version: null },
            { key: "/t7/old", delete: true },
          ]);
          assert(res.ok);
          await waitFor("the batch's events", () => events.length === 4, { timeoutMs: 10_000 });
          await watch.close();
          assertEquals(
            events.slice(1).map((e) => [e.type, e.key, e.value]).sort(),
            [["delete", "/t7/old", undefined], ["put", "/t7/a", "1"], ["put", "/t7/b", "2"]],
          );
          await store.deletePrefix("/t7");
        });

        await t.step("watch delivers changes in order, deletes included", async () => {
          const events: WatchEvent[] = [];
          const watch = await store.watch("/t3", (e) => events.push(e));
          await store.put("/t3-sibling", "not watched");
          const n = 30;
          const key = (i: number) => `/t3/k${String(i).padStart(2, "0")}`;
          for (let i = 0; i < n; i++) await store.put(key(i), `v${i}`);
          for (let i = 0; i < 10; i++) await store.delete(key(i));
          await store.put(key(29), "last");
          // ZooKeeper may coalesce a burst; let "last" be seen before deleting it.
          await waitFor("the last put to be seen", () => events.some((e) => e.value === "last"));
          await store.deletePrefix("/t3");
          await waitFor(
            "all deletes to be seen",
            () => events.filter((e) => e.type === "delete").length === n,
            { timeoutMs: 10_000 },
          );
          await sleep(200);
          await watch.close();
          assert(events.every((e) => e.key.startsWith("/t3/")), "only keys under the prefix");
          const firstPut = (k: string) => events.findIndex((e) => e.key === k && e.type === "put");
          const puts = Array.from({ length: n }, (_, i) => firstPut(key(i)));
          assert(puts.every((i) => i >= 0), "every key is reported");
          assertEquals([...puts].sort((a, b) => a - b), puts, "puts arrive in write order");
          for (let i = 0; i < n; i++) {
            const del = events.findIndex((e) => e.key === key(i) && e.type === "delete");
            assert(del > puts[i]!, `delete of ${key(i)} comes after its put`);
          }
          const lastPut29 = events.findLast((e) => e.key === key(29) && e.type === "put");
          assertEquals(lastPut29?.value, "last", "the last value is reported");
          // Events for the first keys: put with the written value, then delete.
          const k0 = events.filter((e) => e.key === key(0));
          assertEquals(
            k0.map((e) => [e.type, e.value]),
            [["put", "v0"], ["delete", undefined]],
            `events of ${key(0)}: ${JSON.stringify(k0)}`,
          );
          const count = events.length;
          await store.put("/t3/after-close", "x");
          await sleep(300);
          assertEquals(events.length, count, "no events after close");
          await store.deletePrefix("/t3");
          await store.delete("/t3-sibling");
        });

        await t.step("locks exclude, time out, and hand over on release", async () => {
          const first = await store.lock("contract-lock", { ttlSeconds: 5 });
          const start = Date.now();
          const error = await assertRejects(() =>
            store.lock("contract-lock", { ttlSeconds: 5, timeoutMs: 500 })
          );
          assert(error instanceof StoreUnavailableError, String(error));
          assert(Date.now() - start >= 450, "waited for the time-out");
          let got = false;
          const waiting = store.lock("contract-lock", { ttlSeconds: 5, timeoutMs: 5_000 })
            .then((l) => {
              got = true;
              return l;
            });
          await sleep(300);
          assertEquals(got, false, "second taker waits");
          await first.release();
          const second = await waiting;
          const other = await store.lock("other-lock", { timeoutMs: 1_000 });
          await other.release();
          await second.release();
          let lostEarly = false;
          first.lost.then(() => lostEarly = true);
          await sleep(50);
          assertEquals(lostEarly, false, "a released lock is not lost");
        });

        await t.step("data survives a restart of the store", async () => {
          await store.put("/t4/durable", "kept");
          await store.put("/t4/other", "too");
          if (backend.restart) {
            await backend.restart();
          } else {
            await store.close();
            store = await backend.open();
          }
          const got = await waitFor(
            "the store to answer after restart",
            () => store.get("/t4/durable"),
            { timeoutMs: 15_000 },
          );
          assertEquals(got.value, "kept");
          assertEquals((await store.list("/t4")).map((e) => e.value), ["kept", "too"]);
          await store.deletePrefix("/t4");
        });

        await t.step("a down store fails fast and the client recovers", async () => {
          const events: WatchEvent[] = [];
          const watch = backend.recovers
            ? await store.watch("/t5", (e) => events.push(e))
            : undefined;
          await backend.down(store);
          for (const op of [() => store.get("/t5/x"), () => store.put("/t5/x", "1")]) {
            const start = Date.now();
            const error = await assertRejects(op);
            const elapsed = Date.now() - start;
            assert(error instanceof StoreUnavailableError, `got ${error}`);
            assert(elapsed < TIMEOUT_MS + 1_500, `failed after ${elapsed} ms`);
          }
          await backend.up();
          if (!backend.recovers) store = await backend.open();
          await waitFor("the client to recover", () => store.put("/t5/x", "back"), {
            timeoutMs: 20_000,
            intervalMs: 250,
          });
          assertEquals((await store.get("/t5/x"))?.value, "back");
          if (watch) {
            await waitFor("the watch to resume", () => events.some((e) => e.value === "back"), {
              timeoutMs: 15_000,
            });
            await watch.close();
          }
          await store.deletePrefix("/t5");
        });

        await t.step("a lock is reported lost when its owner loses the store", async () => {
          const owner = await backend.openShortLived();
          // StoreUnavailableError means "retry": a fresh client right after a
          // server restart may need a moment.
          const lock = await waitFor(
            "the short-lived owner to take the lock",
            () => owner.lock("lost-lock", { ttlSeconds: backend.lockTtl }),
            { timeoutMs: 15_000 },
          );
          await backend.down(owner);
          const start = Date.now();
          const lost = await Promise.race([lock.lost.then(() => true), sleep(15_000)]);
          assert(lost === true, "lost resolved");
          assert(Date.now() - start < 15_000);
          await backend.up();
          await owner.close();
          // Once the old owner is gone, the lock can be taken again (after the
          // server's restart a call may still fail with StoreUnavailableError,
          // which means "retry").
          const again = await waitFor(
            "the lock to be free again",
            () => store.lock("lost-lock", { ttlSeconds: 5, timeoutMs: 15_000 }),
            { timeoutMs: 30_000 },
          );
          await again.release();
        });
      } finally {
        await store.close().catch(() => {});
        await backend.cleanup();
      }
    },
  });
}

function serverBackend(
  service: Service,
  open: (sessionMs?: number) => Store,
  lockTtl: number,
): Backend {
  const ping = async (store: Store) => {
    await (store as EtcdStore | ZooKeeperStore).ping();
    return store;
  };
  return {
    open: () => ping(open()),
    openShortLived: () => ping(open(2_000)),
    restart: () => service.restart(),
    down: () => service.kill(),
    up: () => service.restart(),
    recovers: true,
    lockTtl,
    cleanup: () => service.stop(),
  };
}

contract("etcd", async () => {
  const etcd = await startEtcd();
  return serverBackend(
    etcd,
    () => new EtcdStore({ endpoints: etcd.endpoint, timeoutMs: TIMEOUT_MS }),
    1,
  );
});

contract("ZooKeeper", async () => {
  const zk = await startZooKeeper();
  return serverBackend(
    zk,
    (sessionTimeoutMs = 10_000) =>
      new ZooKeeperStore({ endpoints: zk.endpoint, timeoutMs: TIMEOUT_MS, sessionTimeoutMs }),
    1,
  );
});

contract("embedded", async () => {
  const dir = await tempDir("embedded");
  const path = `${dir}/store.db`;
  return {
    open: () => Promise.resolve(new EmbeddedStore({ path })),
    // Only one owner at a time: use a second file for the short-lived owner.
    openShortLived: () => Promise.resolve(new EmbeddedStore({ path: `${dir}/short.db` })),
    down: (store) => store.close(),
    up: () => Promise.resolve(),
    recovers: false,
    lockTtl: 1,
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

Deno.test({
  name: "openStore names the endpoint when the store cannot be reached in time",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (const type of ["etcd", "zookeeper"] as const) {
      const endpoint = `127.0.0.1:${deadPort()}`; // nothing listens there
      const start = Date.now();
      const error = await assertRejects(() =>
        openStore({ type, endpoints: endpoint, timeoutMs: 1_000 })
      );
      assert(error instanceof StoreUnavailableError, `${type}: got ${error}`);
      assert(error.message.includes(endpoint), error.message);
      assert(Date.now() - start < 3_000, `${type} took ${Date.now() - start} ms`);
    }
    await assertRejects(() => openStore({ type: "nope" as "etcd", endpoints: "x" }));
  },
});

Deno.test("embedded store: a write is answered once its log is on disk, and the event loop runs meanwhile; a failed sync closes the store", async () => {
  const dir = await tempDir("embedded-sync");
  try {
    const shim = await buildSlowFsyncShim(dir);
    const module = new URL("../lib/store/embedded.ts", import.meta.url).href;
    const failFile = `${dir}/disk-broken`;
    // Every fsync takes 200 ms; a timer ticks every 10 ms while one write waits for it.
    const code = `
      import { EmbeddedStore } from "${module}";
      const s = new EmbeddedStore({ path: ${JSON.stringify(`${dir}/store.db`)} });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const t0 = performance.now();
      await s.put("/k", "v");
      const ms = performance.now() - t0;
      clearInterval(timer);
      const back = await s.get("/k");
      Deno.writeTextFileSync(${JSON.stringify(failFile)}, "");
      let failed = "";
      await s.put("/k2", "v").catch((e) => failed = e.name + ": " + e.message);
      let closed = "";
      await s.get("/k").catch((e) => closed = e.message);
      console.log(JSON.stringify({ ms, ticks, value: back?.value, failed, closed }));`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { LD_PRELOAD: shim, SLOW_FSYNC_MS: "200", FSYNC_FAIL_FILE: failFile },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert(r.ms >= 190, `the write was answered after ${r.ms} ms, before its sync`);
    assert(r.ticks >= 8, `the event loop ran ${r.ticks} ticks of 10 ms during a 200 ms sync`);
    assertEquals(r.value, "v");
    assert(
      /^StoreUnavailableError: .*syncing its log to disk failed.*store is closed/.test(r.failed),
      r.failed,
    );
    assert(/the store is closed/.test(r.closed), r.closed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embedded store has one owner and survives a SIGKILL mid-write", async () => {
  const dir = await tempDir("embedded-crash");
  const path = `${dir}/store.db`;
  try {
    const owner = await openStore({ type: "embedded", endpoints: path });
    const error = await assertRejects(() => openStore({ type: "embedded", endpoints: path }));
    assert(error instanceof StoreUnavailableError, String(error));
    assert(/another process owns it/.test(error.message), error.message);
    await owner.close();

    // A child writes keys in order and prints each acknowledged one; kill it mid-stream.
    const module = new URL("../lib/store/embedded.ts", import.meta.url).href;
    const code = `
      import { EmbeddedStore } from "${module}";
      const s = new EmbeddedStore({ path: ${JSON.stringify(path)} });
      for (let i = 0; ; i++) {
        await s.put("/crash/k" + String(i).padStart(6, "0"), "v" + i);
        console.log(i);
      }`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let acked = -1;
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk);
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) acked = Number(line);
      if (acked >= 200) break;
    }
    child.kill("SIGKILL");
    await child.status;
    const store = await openStore({ type: "embedded", endpoints: path });
    try {
      const entries = await store.list("/crash");
      assert(entries.length >= acked + 1, `${entries.length} keys, ${acked + 1} acknowledged`);
      entries.forEach((e, i) => {
        assertEquals(e.key, `/crash/k${String(i).padStart(6, "0")}`);
        assertEquals(e.value, `v${i}`);
      });
      const versions = entries.map((e) => Number(e.version));
      assert(versions.every((v, i) => i === 0 || v > versions[i - 1]!), "versions grow");
      assert(await store.put("/crash/after", "ok") !== undefined);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
