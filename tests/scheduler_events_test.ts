/**
 * The event history: the pure {@linkcode EventHistory} (limit, undo of a
 * failed batch, loading, expiry, promotion durations) on the embedded store,
 * and the scheduler core recording a whole life — create, launch, running, a
 * master's loss, the promotion with its duration, the relaunch, a restart,
 * the delete — each event in the batch of its change.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { executorMessage, offer, stats, update } from "./_core.ts";
import {
  DELETED_HISTORY_MS,
  deletedEvent,
  EVENT_LIMIT,
  EventHistory,
  eventKey,
  eventView,
  eventWrites,
  failoverOf,
  lostEvent,
  parseHistories,
  promotedEvent,
  readHistory,
  resizedEvent,
  scaledEvent,
} from "../lib/scheduler/events.ts";
import { type MesosPort, Scheduler } from "../lib/scheduler/core.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import { openStore } from "../lib/store/mod.ts";
import { decodeMessage, type SchedulerToExecutor } from "../lib/executor_messages.ts";
import { createApiHandler } from "../lib/api/handler.ts";
import { startEtcd, startZooKeeper } from "./_services.ts";
import { standbyReads } from "../lib/scheduler/leader.ts";

Deno.test("events: a history keeps its last 100 events in the store, one key each", async () => {
  const dir = await tempDir("events-limit");
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  try {
    const h = new EventHistory({ prefix: "/t" });
    for (let i = 1; i <= 130; i++) {
      const r = h.record("a", scaledEvent({ fromSlaves: i - 1, toSlaves: i }), 1000 + i);
      const result = await store.batch(r.writes);
      assert(result.ok);
    }
    const stored = await store.list("/t/events/a");
    assertEquals(stored.length, EVENT_LIMIT);
    assertEquals(stored[0]!.key, eventKey("/t", "a", 31));
    assertEquals(h.events("a")!.map((e) => e.seq), stored.map((e) => JSON.parse(e.value).seq));
    assertEquals((await readHistory(store, "/t", "a"))!.at(-1)!.to, 130);
    assertEquals(await readHistory(store, "/t", "nothing"), undefined);

    // A new history over the same store goes on from the last number.
    const again = new EventHistory({ prefix: "/t" });
    assertEquals(again.load(await store.list(again.keyPrefix)), []);
    assertEquals(again.record("a", deletedEvent(), 5000).event.seq, 131);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events: undo takes back the events of a failed batch and restores what fell out", () => {
  const h = new EventHistory({ prefix: "/t", limit: 2 });
  for (let i = 1; i <= 2; i++) h.record("a", resizedEvent({ fromMB: i, toMB: i + 1 }), i);
  const batch = [3, 4, 5].map((i) => h.record("a", resizedEvent({ fromMB: i, toMB: i + 1 }), i));
  assertEquals(h.events("a")!.map((e) => e.seq), [4, 5]);
  // One batch held them all: 3 was put and fell out in it, so it is neither.
  const writes = eventWrites(batch);
  assertEquals(
    writes.map((w) => ("delete" in w ? `-${w.key.slice(-2)}` : `+${w.key.slice(-2)}`)).sort(),
    ["+04", "+05", "-01", "-02"],
  );
  h.undo(batch);
  assertEquals(h.events("a")!.map((e) => e.seq), [1, 2]);
  // Numbers are never reused.
  assertEquals(h.record("a", deletedEvent(), 6).event.seq, 6);
  // Undo of a first event leaves no history.
  const r = h.record("b", deletedEvent(), 1);
  h.undo([r]);
  assertEquals(h.events("b"), undefined);
});

Deno.test("events: loading sorts, skips unreadable values and trims beyond the limit", () => {
  const h = new EventHistory({ prefix: "/t", limit: 2 });
  const entry = (name: string, seq: number, value?: string) => ({
    key: eventKey("/t", name, seq),
    value: value ?? JSON.stringify({ seq, at: seq, kind: "created", message: "m" }),
    version: "1",
  });
  const skipped: string[] = [];
  const extra = h.load(
    [entry("a", 3), entry("a", 1), entry("a", 2), entry("b", 9, "{broken"), {
      key: "/t/events/c",
      value: "x",
      version: "1",
    }],
    (l) => skipped.push(l),
  );
  assertEquals(h.events("a")!.map((e) => e.seq), [2, 3]);
  assertEquals(extra, [{ key: eventKey("/t", "a", 1), delete: true }]);
  assertEquals(h.names(), ["a"]);
  assertEquals(skipped.length, 1);
  assertMatch(skipped[0]!, /b\/000000000009/);
  assertEquals(parseHistories("/t", [entry("a", 5)]).get("a")!.length, 1);
});

Deno.test("events: the history of a deleted instance expires after a day unless the name is back", () => {
  const h = new EventHistory({ prefix: "/t" });
  h.record("gone", deletedEvent(), 0);
  h.record("back", deletedEvent(), 0);
  h.record("live", scaledEvent({ fromSlaves: 1, toSlaves: 2 }), 0);
  const exists = (n: string) => n === "back";
  assertEquals(h.expired(DELETED_HISTORY_MS - 1, exists), []);
  assertEquals(h.expired(DELETED_HISTORY_MS, exists), ["gone"]);
  assertEquals(h.forget("gone"), [{ key: eventKey("/t", "gone", 1), delete: true }]);
  assertEquals(h.events("gone"), undefined);
});

Deno.test("events: a promotion's duration runs from the master's loss, else from the promote", () => {
  const h = new EventHistory({ prefix: "/t" });
  h.record("m", lostEvent({ procId: "p2", taskId: "m.p2.1", reason: "x", master: false }), 100);
  h.record("m", lostEvent({ procId: "p1", taskId: "m.p1.1", reason: "x", master: true }), 200);
  assertEquals(failoverOf(h, "m", { at: 300, oldMaster: "p1" }, 1450), {
    oldMaster: "p1",
    durationMs: 1250,
  });
  // After a restart the start is not in memory: the history tells it.
  assertEquals(failoverOf(h, "m", undefined, 1200), { oldMaster: "p1", durationMs: 1000 });
  h.record("m", promotedEvent({ newMaster: "p3", oldMaster: "p1", durationMs: 1, epoch: 1 }), 1300);
  // A promotion with no loss since the last one: from the promote.
  assertEquals(failoverOf(h, "m", { at: 2000 }, 2100), { durationMs: 100 });
  assertEquals(failoverOf(h, "m", undefined, 2100), {});
  const view = eventView(h.events("m")!.at(-1)!);
  assertEquals(view.Kind, "promoted");
  assertEquals(view.DurationSeconds, 0.001);
  assertEquals(view.OldMaster, "p1");
  assertEquals(view.Message, "p3 promoted to master in place of p1 in 0.00 s (epoch 1)");
});

// ---- the core ----

class RecordingMesos implements MesosPort {
  messages: SchedulerToExecutor[] = [];
  launch() {
    return Promise.resolve();
  }
  decline() {
    return Promise.resolve();
  }
  revive() {
    return Promise.resolve();
  }
  suppress() {
    return Promise.resolve();
  }
  kill() {
    return Promise.resolve();
  }
  acknowledge() {
    return Promise.resolve();
  }
  reconcile() {
    return Promise.resolve();
  }
  message(_agentId: string, _executorId: string, data: Uint8Array) {
    this.messages.push(decodeMessage<SchedulerToExecutor>(data));
    return Promise.resolve();
  }
}

async function open(dir: string, clock: { now: number }) {
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  const mesos = new RecordingMesos();
  const core = new Scheduler({
    store,
    prefix: "/t",
    executorInfo: buildExecutorInfo({
      uris: [],
      command: "./MrRedisExecutor",
      resources: DEFAULT_RESOURCES,
    }),
    tickMs: 0,
    now: () => clock.now,
    statsSilenceMs: 3_600_000,
    statsLostMs: 3 * 3_600_000,
  });
  await core.load();
  core.attach(mesos);
  await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
  return { store, mesos, core };
}

const kinds = (core: Scheduler, name: string) =>
  core.events(name)!.map((e) => `${e.kind}${e.procId ? ` ${e.procId}` : ""}`);

Deno.test("events: the core records a master's loss, the promotion with its duration, the relaunch and the delete", async () => {
  const dir = await tempDir("events-core");
  const clock = { now: 10_000_000 };
  let { store, mesos, core } = await open(dir, clock);
  try {
    await core.create({
      name: "m",
      capacityMB: 10,
      masters: 1,
      slaves: 2,
      distribution: 1,
      proxies: 0,
    });
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(1, "A1"), offer(2, "A2"), offer(3, "A3")] },
    });
    for (const [p, a] of [["p1", "A1"], ["p2", "A2"], ["p3", "A3"]]) {
      await core.handleEvent(update(`m.${p}.1`, "TASK_RUNNING", a!));
    }
    // A repeated RUNNING is no new event.
    await core.handleEvent(update("m.p2.1", "TASK_RUNNING", "A2"));
    await core.handleEvent(stats([
      { taskId: "m.p1.1", role: "master", replOffset: 10 },
      { taskId: "m.p2.1", role: "slave", replOffset: 10 },
      { taskId: "m.p3.1", role: "slave", replOffset: 10 },
    ]));
    assertEquals(kinds(core, "m"), [
      "created",
      "launched p1",
      "launched p2",
      "launched p3",
      "running p1",
      "running p2",
      "running p3",
    ]);
    const launched = core.events("m")![1]!;
    assertEquals(launched.address, "127.0.0.1:7010");
    assertEquals(launched.agentId, "A1");
    assertEquals(core.events("m")![4]!.message, "p1 is running on 127.0.0.1:7010");

    // The master dies; the slaves answer their offsets; p3, promoted, answers 2 s after the loss.
    mesos.messages = [];
    await core.handleEvent(update("m.p1.1", "TASK_FAILED", "A1"));
    const queries = mesos.messages.splice(0);
    clock.now += 100;
    await core.handleEvent(
      executorMessage({
        kind: "result",
        commandId: queries[0]!.commandId,
        ok: true,
        replOffset: 20,
      }),
    );
    await core.handleEvent(
      executorMessage({
        kind: "result",
        commandId: queries[1]!.commandId,
        ok: true,
        replOffset: 30,
      }),
    );
    const promote = mesos.messages.find((m) => m.kind === "promote")!;
    assertEquals(promote.taskId, "m.p3.1");
    clock.now += 1_900;
    await core.handleEvent(
      executorMessage({ kind: "result", commandId: promote.commandId, ok: true, replOffset: 30 }),
    );
    await core.handleEvent(stats([{ taskId: "m.p3.1", role: "master", replOffset: 30 }]));
    const lost = core.events("m")!.find((e) => e.kind === "lost")!;
    assertEquals(lost.procId, "p1");
    assertEquals(lost.role, "master");
    assertMatch(lost.reason!, /TASK_FAILED/);
    const promoted = core.events("m")!.find((e) => e.kind === "promoted")!;
    assertEquals(
      {
        old: promoted.oldMaster,
        new: promoted.newMaster,
        ms: promoted.durationMs,
        epoch: promoted.epoch,
      },
      { old: "p1", new: "p3", ms: 2_000, epoch: 1 },
    );

    // The lost process is launched again (as a slave) once its back-off passed.
    clock.now += 1_000;
    await core.tick();
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(4, "A1")] } });
    assertEquals(kinds(core, "m").slice(-3), ["lost p1", "promoted p3", "launched p1"]);
    assertMatch(core.events("m")!.at(-1)!.message, /p1 launched as slave/);

    // The API serves the same timeline; the stored copy matches (one key per event).
    const api = createApiHandler(core);
    const res = await api(new Request("http://x/v1/EVENTS/m"));
    assertEquals(res.status, 200);
    const body = await res.json();
    assertEquals(body.map((e: { Kind: string }) => e.Kind), core.events("m")!.map((e) => e.kind));
    assertEquals(body.find((e: { Kind: string }) => e.Kind === "promoted").DurationSeconds, 2);
    assertEquals((await store.list("/t/events/m")).length, core.events("m")!.length);
    assertEquals((await api(new Request("http://x/v1/EVENTS/nope"))).status, 404);
    assertEquals((await api(new Request("http://x/v1/EVENTS/a%2Fb"))).status, 400);
    assertEquals((await api(new Request("http://x/v1/EVENTS"))).status, 400);
    assertEquals((await api(new Request("http://x/v1/EVENTS/m", { method: "POST" }))).status, 405);

    // A restart keeps the history and numbers on.
    const before = core.events("m")!.map((e) => e.seq);
    await core.stop();
    await store.close();
    ({ store, mesos, core } = await open(dir, clock));
    assertEquals(core.events("m")!.map((e) => e.seq), before);

    // Delete: the processes end, the record goes, the history stays with "deleted" last.
    await core.delete("m");
    for (const t of ["m.p1.2", "m.p2.1", "m.p3.1"]) {
      await core.handleEvent(update(t, "TASK_KILLED", "A1"));
    }
    assertEquals(core.status("m"), undefined);
    assertEquals(core.events("m")!.at(-1)!.kind, "deleted");
    assertEquals((await store.list("/t/instances/m")).length, 0);
    assertEquals((await readHistory(store, "/t", "m"))!.at(-1)!.kind, "deleted");

    // A day later the history goes too.
    clock.now += DELETED_HISTORY_MS + 1;
    await core.tick();
    assertEquals(core.events("m"), undefined);
    assertEquals(await store.list("/t/events/m"), []);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events: an event is stored only with its change (a failed batch drops both)", async () => {
  const dir = await tempDir("events-failed");
  const clock = { now: 10_000_000 };
  const { store, core } = await open(dir, clock);
  try {
    await core.create({
      name: "s",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    // Another writer changes the process key: the launch round's batch fails.
    const key = "/t/instances/s/procs/p1";
    await store.put(key, (await store.get(key))!.value);
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(kinds(core, "s"), ["created"]);
    assertEquals((await store.list("/t/events/s")).length, 1);
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(2, "A1")] } });
    assertEquals(kinds(core, "s"), ["created", "launched p1"]);
    assertEquals(
      core.events("s")!.map((e) => e.seq),
      [1, 3],
      "the failed event's number is not reused",
    );
    assertEquals((await readHistory(store, "/t", "s"))!.map((e) => e.seq), [1, 3]);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const kind of ["zookeeper", "etcd"] as const) {
  Deno.test(`events: the history is kept and trimmed in one batch with a record on ${kind}`, async () => {
    const service = kind === "zookeeper" ? await startZooKeeper() : await startEtcd();
    const store = await openStore({ type: kind, endpoints: service.endpoint });
    try {
      const h = new EventHistory({ prefix: "/t", limit: 5 });
      for (let i = 0; i < 8; i++) {
        const r = h.record("a", scaledEvent({ fromSlaves: i, toSlaves: i + 1 }), i);
        const batch = await store.batch([{ key: "/t/instances/a", value: String(i) }, ...r.writes]);
        assertEquals(batch.ok, true);
      }
      assertEquals((await readHistory(store, "/t", "a"))!.map((e) => e.seq), [4, 5, 6, 7, 8]);
      await store.deletePrefix(h.historyPrefix("a"));
      assertEquals(await store.list("/t/events"), []);
      assertEquals((await store.get("/t/instances/a"))?.value, "7");
    } finally {
      await store.close();
      await service.stop();
    }
  });
}

Deno.test("events: a standby serves EVENTS from its store snapshot", async () => {
  const dir = await tempDir("events-standby");
  const clock = { now: 10_000_000 };
  const { store, core } = await open(dir, clock);
  try {
    await core.create({ name: "s", capacityMB: 10, masters: 1, slaves: 0, distribution: 1 });
    const reads = standbyReads({ store, prefix: "/t" });
    const res = await reads.handle(new Request("http://x/v1/EVENTS/s"))!;
    assertEquals(res.status, 200);
    assertEquals(res.headers.get("x-mrr-role"), "standby");
    assertEquals((await res.json()).map((e: { Kind: string }) => e.Kind), ["created"]);
    const missing = await reads.handle(new Request("http://x/v1/EVENTS/none"))!;
    assertEquals(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
