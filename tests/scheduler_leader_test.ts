/**
 * The election and standby pieces against a real etcd: a standby never names
 * itself as the leader, a stepped-down scheduler answers STATUS from its last
 * view marked stale while the store is away, an election waits for a store
 * that is down (and says so), and a lost leadership still releases its lock
 * once the store is back. Plus the pure pieces: which leader to name, the
 * HEALTH answer, the DBEndPoint syntax, the stale marking, the store fence.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { startEtcd } from "./_services.ts";
import {
  becomeLeader,
  leaderKey,
  leaderLockName,
  type LeaderRecord,
  leaderToName,
  standbyHandler,
  standbyReads,
} from "../lib/scheduler/leader.ts";
import { healthAnswer, isHealthRequest } from "../lib/api/health.ts";
import {
  endpointProblem,
  fencedStore,
  openStore,
  StoreUnavailableError,
} from "../lib/store/mod.ts";
import { type InstanceView, markStale } from "../lib/scheduler/status_view.ts";

const SELF = { id: "me", url: "http://127.0.0.1:5656" };
const rec = (Id: string, URL: string): LeaderRecord => ({ Id, URL, Since: "" });

Deno.test("a standby names the leader of the record, never itself", () => {
  const cases: [string, LeaderRecord | undefined, string | undefined][] = [
    ["no record", undefined, undefined],
    ["another scheduler", rec("other", "http://b:5656"), "http://b:5656"],
    ["its own id (from before it stepped down)", rec("me", SELF.url), undefined],
    ["its own URL (an earlier run on this address)", rec("old-run", SELF.url), undefined],
  ];
  for (const [what, record, expected] of cases) {
    assertEquals(leaderToName(record, SELF)?.URL, expected, what);
  }
});

Deno.test("HEALTH is 200 only for a subscribed leader whose store answers", () => {
  const cases: [Parameters<typeof healthAnswer>[0], number, string][] = [
    [{ role: "leader", mesos: "subscribed", storeError: undefined }, 200, "OK"],
    [{ role: "standby", mesos: "disconnected", storeError: undefined }, 503, "UNAVAILABLE"],
    [{ role: "taking-over", mesos: "disconnected", storeError: undefined }, 503, "UNAVAILABLE"],
    [{ role: "leader", mesos: "connecting", storeError: undefined }, 503, "UNAVAILABLE"],
    [{ role: "leader", mesos: "subscribed", storeError: "timed out" }, 503, "UNAVAILABLE"],
  ];
  for (const [parts, code, text] of cases) {
    const { status, body } = healthAnswer(parts);
    assertEquals(status, code, JSON.stringify(parts));
    assertEquals(body.Status, text);
    assertEquals(body.Role, parts.role);
    assertEquals(
      body.Store,
      parts.storeError === undefined ? "reachable" : `unreachable: ${parts.storeError}`,
    );
  }
  assert(isHealthRequest(new Request("http://x/v1/HEALTH")));
  assert(!isHealthRequest(new Request("http://x/v1/HEALTH", { method: "POST" })));
  assert(!isHealthRequest(new Request("http://x/v1/STATUS")));
});

Deno.test("a DBEndPoint that cannot be right is named; a well-formed one passes", () => {
  const good: ["etcd" | "zookeeper", string][] = [
    ["etcd", "127.0.0.1:2379"],
    ["etcd", "http://etcd1:2379, https://etcd2.example.com:2379"],
    ["zookeeper", "zk1:2181,zk2:2181,[::1]:2181"],
  ];
  for (const [type, text] of good) assertEquals(endpointProblem(type, text), undefined, text);
  const bad: ["etcd" | "zookeeper", string, RegExp][] = [
    ["etcd", "etcd1", /endpoint "etcd1" is not host:port/],
    ["etcd", "127.0.0.1:70000", /"127\.0\.0\.1:70000" has a port outside 1-65535/],
    ["etcd", "127.0.0.1:0", /port outside/],
    ["etcd", "a b:2379", /"a b", not a host name/],
    ["etcd", "ftp://e:1", /scheme "ftp"/],
    ["zookeeper", "http://zk:2181", /has a scheme/],
    ["zookeeper", "zk1:2181,,zk2:2181", /empty/],
    ["etcd", " , ", /names no endpoint/],
  ];
  for (const [type, text, pattern] of bad) {
    const problem = endpointProblem(type, text);
    assert(problem !== undefined, text);
    assertMatch(problem, pattern);
  }
});

Deno.test("a stale view carries Stale and its age in whole seconds", () => {
  const view = { Name: "a", Status: "RUNNING" } as InstanceView;
  assertEquals(markStale(view, 12_900), { ...view, Stale: true, StaleSeconds: 12 });
  assertEquals(markStale(view, -5).StaleSeconds, 0);
});

Deno.test("a fenced store refuses every call once fenced", async () => {
  const dir = await tempDir("fence");
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  try {
    const fence = fencedStore(store);
    await fence.store.put("/k", "v");
    assertEquals((await fence.store.get("/k"))?.value, "v");
    assertEquals(fence.store.description, store.description);
    fence.fence("stepped down");
    assert(fence.fenced);
    const error = await assertRejects(() => fence.store.put("/k", "w"));
    assert(error instanceof StoreUnavailableError);
    assertMatch((error as Error).message, /stepped down/);
    assertEquals((await store.get("/k"))?.value, "v", "nothing written after the fence");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "standbys and elections on etcd: no self-naming, stale views, waiting, releasing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const etcd = await startEtcd();
    const store = await openStore({ type: "etcd", endpoints: etcd.endpoint, check: false });
    const prefix = `/mrr-leader-${crypto.randomUUID().slice(0, 8)}`;
    try {
      await t.step("a record naming this address from an earlier run is not named", async () => {
        await store.put(leaderKey(prefix), JSON.stringify(rec("old-run", SELF.url)));
        const handler = standbyHandler({ store, prefix, ...SELF, cacheMs: 0 });
        let res = await handler(new Request("http://x/v1/DELETE/a", { method: "DELETE" }));
        assertEquals(res.status, 503);
        assertEquals(res.headers.get("x-mrr-leader"), null);
        assertEquals(
          await res.text(),
          "This scheduler is standing by; the leader is not known yet",
        );
        await store.put(leaderKey(prefix), JSON.stringify(rec("other", "http://b:5656")));
        res = await handler(new Request("http://x/v1/DELETE/a", { method: "DELETE" }));
        assertEquals(res.headers.get("x-mrr-leader"), "http://b:5656");
        await res.body?.cancel();
        const taking = standbyHandler({ store, prefix, ...SELF, takingOver: () => true });
        res = await taking(new Request("http://x/v1/STATUS"));
        assertMatch(await res.text(), /taking over/);
      });

      await t.step("an election logs the standby without naming itself", async () => {
        const lock = await store.lock(leaderLockName(prefix), { ttlSeconds: 5 });
        await store.put(leaderKey(prefix), JSON.stringify(rec("old-run", SELF.url)));
        const lines: string[] = [];
        const stop = new AbortController();
        const election = becomeLeader({
          store,
          prefix,
          ...SELF,
          ttlSeconds: 5,
          attemptMs: 1_000,
          signal: stop.signal,
          log: (l) => lines.push(l),
        });
        await waitFor("the standby line", () => lines.some((l) => /Standing by/.test(l)));
        assert(lines.every((l) => !l.includes(SELF.url)), lines.join("\n"));
        assertMatch(lines.join("\n"), /the leader is not known yet/);
        await lock.release();
        const held = await election;
        assert(held, "leads once the lock is free");
        assertEquals(JSON.parse((await store.get(leaderKey(prefix)))!.value).Id, SELF.id);
        await held.release();
      });

      await t.step(
        "STATUS answers from the last view, marked stale, while etcd is away",
        async () => {
          const reads = standbyReads({ store, prefix, refreshMs: 0, staleAfterMs: 500 });
          const view = { Name: "x", Status: "RUNNING" } as InstanceView;
          reads.remember(
            { status: (n) => n === "x" ? view : undefined, list: () => [view] },
            Date.now(),
          );
          // The store answers: its (empty) contents win over the remembered view.
          let res = await reads.handle(new Request("http://x/v1/STATUS"))!;
          assertEquals(await res.json(), []);
          assertEquals(res.headers.get("x-mrr-stale"), null);
          reads.remember(
            { status: (n) => n === "x" ? view : undefined, list: () => [view] },
            Date.now() - 3_000,
          );
          await etcd.kill();
          try {
            res = await reads.handle(new Request("http://x/v1/STATUS"))!;
            assertEquals(res.status, 200);
            assertEquals(res.headers.get("x-mrr-role"), "standby");
            assertEquals(res.headers.get("x-mrr-stale"), "3");
            assertEquals(await res.json(), [{ ...view, Stale: true, StaleSeconds: 3 }]);
            res = await reads.handle(new Request("http://x/v1/STATUS/x"))!;
            assertEquals((await res.json()).Stale, true);
          } finally {
            await etcd.restart();
          }
        },
      );

      let held: Awaited<ReturnType<typeof becomeLeader>>;
      await t.step("an election waits for a store that is down, logging it", async () => {
        await etcd.kill();
        const lines: string[] = [];
        const election = becomeLeader({
          store,
          prefix,
          ...SELF,
          ttlSeconds: 5,
          retryMs: 200,
          waitLogMs: 1_000,
          log: (l) => lines.push(l),
        });
        await waitFor(
          "two waiting lines",
          () =>
            lines.some((l) => /^Waiting for the store etcd/.test(l)) &&
            lines.some((l) => /^Still waiting for the store etcd .*unreachable for \d+ s/.test(l)),
          {
            timeoutMs: 20_000,
          },
        );
        await etcd.restart();
        held = await election;
        assert(held, "leads once etcd is back");
        assertMatch(lines.join("\n"), /answers again/);
      });

      await t.step("a leadership lost with its store still frees the lock on return", async () => {
        assert(held);
        await etcd.kill();
        const reason = await held.lost;
        assertMatch(reason, /did not answer/);
        await held.release();
        await etcd.restart();
        // Without the release the lease would keep the lock for its ttl (or for
        // good, renewed by keep-alives); with it, the lock is free at once.
        const other = await openStore({ type: "etcd", endpoints: etcd.endpoint });
        try {
          const started = Date.now();
          const lock = await other.lock(leaderLockName(prefix), {
            ttlSeconds: 5,
            timeoutMs: 20_000,
          });
          console.log(`  lock free ${Date.now() - started} ms after etcd returned`);
          await lock.release();
        } finally {
          await other.close();
        }
      });
    } finally {
      await store.close();
      await etcd.stop();
    }
  },
});
