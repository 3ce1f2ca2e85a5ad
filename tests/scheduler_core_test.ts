/**
 * The scheduler core driven event by event, with a recording MesosPort, the
 * embedded store and a fake clock: launches, acknowledgements after
 * persistence, failures before RUNNING, promotion, deletion, restart.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { agentOffer, offer, stats, statsEntry, update } from "./_core.ts";
import { type MesosPort, Scheduler } from "../lib/scheduler/core.ts";
import type { Prober } from "../lib/scheduler/liveness_checks.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import { openStore, type Store } from "../lib/store/mod.ts";
import type { Offer, SchedulerEvent, TaskInfo } from "../lib/mesos/types.ts";
import {
  decodeMessage,
  encodeMessage,
  type RedisStats,
  type SchedulerToExecutor,
} from "../lib/executor_messages.ts";

interface Recorded {
  type: string;
  args: unknown[];
}

class RecordingMesos implements MesosPort {
  calls: Recorded[] = [];
  launched: TaskInfo[] = [];
  #store: Store;
  constructor(store: Store) {
    this.#store = store;
  }
  take(type: string): Recorded[] {
    const hit = this.calls.filter((c) => c.type === type);
    this.calls = this.calls.filter((c) => c.type !== type);
    return hit;
  }
  launch(offerId: string, tasks: TaskInfo[], refuseSeconds: number) {
    this.launched.push(...tasks);
    this.calls.push({ type: "launch", args: [offerId, tasks, refuseSeconds] });
    return Promise.resolve();
  }
  decline(offerIds: string[], refuseSeconds: number) {
    this.calls.push({ type: "decline", args: [offerIds, refuseSeconds] });
    return Promise.resolve();
  }
  revive() {
    this.calls.push({ type: "revive", args: [] });
    return Promise.resolve();
  }
  suppress() {
    this.calls.push({ type: "suppress", args: [] });
    return Promise.resolve();
  }
  kill(taskId: string, agentId?: string) {
    this.calls.push({ type: "kill", args: [taskId, agentId] });
    return Promise.resolve();
  }
  async acknowledge(agentId: string, taskId: string, uuid: Uint8Array) {
    // Record what the store held at the moment of the ack.
    const ids = taskId.split(".");
    const e = await this.#store.get(`/t/instances/${ids[0]}/procs/${ids[1]}`);
    this.calls.push({ type: "acknowledge", args: [agentId, taskId, uuid, e?.value] });
  }
  reconcile(tasks: { taskId: string; agentId?: string }[]) {
    this.calls.push({ type: "reconcile", args: [tasks] });
    return Promise.resolve();
  }
  message(agentId: string, executorId: string, data: Uint8Array) {
    this.calls.push({ type: "message", args: [agentId, executorId, decodeMessage(data)] });
    return Promise.resolve();
  }
}

function result(
  commandId: string,
  ok: boolean,
  replOffset?: number,
  more: { error?: string; failed?: { taskId: string; error: string }[] } = {},
): SchedulerEvent {
  return {
    type: "MESSAGE",
    message: {
      agent_id: { value: "A1" },
      executor_id: { value: "mrr-executor" },
      data: encodeMessage({
        kind: "result",
        commandId,
        ok,
        ...(replOffset !== undefined ? { replOffset } : {}),
        ...more,
      }),
    },
  };
}

/** A direct check that finds nothing listening (what a dead process gives). */
const refused: Prober = () =>
  Promise.resolve({ ok: false, error: "Connection refused", latencyMs: 0, timedOut: false });

/** Lets the direct checks started so far end, then runs a pass `stepMs` later; `n` times. */
async function passes(
  core: Scheduler,
  clock: { now: number },
  n: number,
  stepMs = 1_000,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setTimeout(r, 0));
    clock.now += stepMs;
    await core.tick();
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** Subscribes, creates the 1+1 `name` and offers agents A1 and A2, where its two processes launch. */
async function subscribeAndPlaceOnePlusOne(core: Scheduler, name: string): Promise<void> {
  await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
  await core.create({ name, capacityMB: 10, masters: 1, slaves: 1, distribution: 1, proxies: 0 });
  await core.handleEvent({ type: "HEARTBEAT" });
  await core.handleEvent({
    type: "OFFERS",
    offers: { offers: [offer(1, "A1"), offer(2, "A2")] },
  });
}

async function setup(
  dir: string,
  silence = 3_600_000,
  prober: Prober = refused,
  groupCommitMs?: number,
  passDelayMs?: number,
) {
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  const clock = { now: 1_000_000 };
  const mesos = new RecordingMesos(store);
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
    statsSilenceMs: silence,
    statsLostMs: silence * 3,
    prober,
    ...(groupCommitMs !== undefined ? { groupCommitMs } : {}),
    ...(passDelayMs !== undefined ? { passDelayMs } : {}),
    ...(Deno.env.get("CORE_LOG") ? { log: (l: string) => console.log(l) } : {}),
  });
  await core.load();
  core.attach(mesos);
  return { store, clock, mesos, core };
}

Deno.test("core: S instance from CREATE to RUNNING, failures before RUNNING, delete", async () => {
  const dir = await tempDir("core");
  const { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    assertEquals((await store.get("/t/framework_id"))?.value, "fw");
    assertEquals(mesos.take("reconcile").length, 2, "explicit then implicit");
    assertEquals(mesos.take("suppress").length, 0, "not before the agents offered");

    assertEquals(
      await core.create({
        name: "s1",
        capacityMB: 10,
        masters: 1,
        slaves: 0,
        distribution: 1,
        proxies: 0,
      }),
      "created",
    );
    await core.handleEvent({ type: "HEARTBEAT" }); // lets the queued reconcile run first
    assertEquals(mesos.take("revive").length, 1);

    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const [launch] = mesos.take("launch");
    assert(launch);
    const task = (launch.args[1] as TaskInfo[])[0]!;
    assertEquals(task.task_id.value, "s1.p1.1");
    assertEquals(task.executor?.executor_id.value, "mrr-executor");
    assertEquals(JSON.parse(new TextDecoder().decode(task.data)).capacityMB, 10);
    assertEquals(core.status("s1")?.Master?.Port, "7010");

    // A failure before RUNNING: LOST with the reason, acked after the write, relaunched later.
    await core.handleEvent(update("s1.p1.1", "TASK_ERROR"));
    const [ack] = mesos.take("acknowledge");
    assertMatch(String(ack!.args[3]), /"state":"LOST"/);
    const view = core.status("s1")!;
    assertEquals(view.Status, "CREATING");
    assertMatch(view.Reason ?? "", /TASK_ERROR/);
    clock.now += 60_000;
    await core.tick();
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(2, "A1", true)] } });
    const relaunch = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    assertEquals(relaunch.task_id.value, "s1.p1.2");

    await core.handleEvent(update("s1.p1.2", "TASK_RUNNING"));
    assertMatch(String(mesos.take("acknowledge")[0]!.args[3]), /"state":"RUNNING"/);
    await core.handleEvent(stats([{ taskId: "s1.p1.2" }]));
    assertEquals(core.status("s1")?.Status, "RUNNING");
    assertEquals(core.status("s1")?.Master?.MemoryUsed, 1000);

    // A stale task (an older launch) reported running is killed.
    await core.handleEvent(update("s1.p1.1", "TASK_RUNNING"));
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["s1.p1.1"]);

    // Delete: kill, then forget once the task is terminal.
    assert(await core.delete("s1"));
    await core.handleEvent({ type: "HEARTBEAT" });
    assertEquals(core.status("s1")?.Status, "DELETING");
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["s1.p1.2"]);
    assertEquals(
      await core.create({
        name: "s1",
        capacityMB: 10,
        masters: 1,
        slaves: 0,
        distribution: 1,
        proxies: 0,
      }),
      "deleting",
    );
    await core.handleEvent(update("s1.p1.2", "TASK_KILLED"));
    assertEquals(core.status("s1"), undefined);
    assertEquals((await store.list("/t/instances")).length, 0);
    assertEquals(
      await core.create({
        name: "s1",
        capacityMB: 10,
        masters: 1,
        slaves: 0,
        distribution: 1,
        proxies: 0,
      }),
      "created",
    );
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: the password goes only in TaskInfo.data; a deleted instance's port is not reused at once, even after a restart", async () => {
  const dir = await tempDir("core-security");
  let { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const password = "core-test-password-0123";
    await core.create({
      name: "s1",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      password,
      proxies: 0,
    });
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const task = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    const spec = JSON.parse(new TextDecoder().decode(task.data));
    assertEquals(spec.auth.password, password);
    assertMatch(spec.auth.adminPassword, /^[A-Za-z0-9_-]{43}$/);
    // Nowhere else in the TaskInfo: name, labels, command, executor, resources.
    const { data: _data, ...rest } = task;
    for (const secret of [password, spec.auth.adminPassword]) {
      assert(!JSON.stringify(rest).includes(secret), "not outside TaskInfo.data");
    }
    assertEquals(task.labels, undefined);
    assertEquals(core.credentials("s1"), { password });
    assertEquals(task.resources?.find((r) => r.name === "ports")?.ranges?.range, [
      { begin: 7010, end: 7010 },
    ]);

    // s1 goes away; s2 is offered the same ports a minute later: not 7010.
    await core.handleEvent(update("s1.p1.1", "TASK_RUNNING"));
    assert(await core.delete("s1"));
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent(update("s1.p1.1", "TASK_KILLED"));
    assertEquals(core.status("s1"), undefined);
    // A restarted scheduler still keeps the port: the quarantine is stored.
    await core.stop();
    await store.close();
    ({ store, clock, mesos, core } = await setup(dir));
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    clock.now += 60_000;
    await core.create({
      name: "s2",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1", true)] } });
    const next = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    assertEquals(next.task_id.value, "s2.p1.1");
    assertEquals(next.resources?.find((r) => r.name === "ports")?.ranges?.range, [
      { begin: 7011, end: 7011 },
    ]);
    assert(
      JSON.parse(new TextDecoder().decode(next.data)).auth.password !== password,
      "another instance, another password",
    );
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** An offer of `agent` with ports `begin`–`end` and room for many small processes. */
function portsOffer(n: number, agent: string, begin: number, end: number): Offer {
  return agentOffer(agent, { id: `o${n}`, cpus: 64, mem: 65536, ports: [[begin, end]] });
}

/** A single server (no proxy) named `name`, as CREATE gives it to the core. */
function single(name: string) {
  return { name, capacityMB: 10, masters: 1, slaves: 0, distribution: 1, proxies: 0 };
}

/** The stored retired-ports records: key → the ports in it. */
async function retiredRecords(
  store: Store,
): Promise<Map<string, { port: number; instance: string; until: number }[]>> {
  const out = new Map<string, { port: number; instance: string; until: number }[]>();
  for (const e of await store.list("/t/port_quarantine")) out.set(e.key, JSON.parse(e.value).ports);
  return out;
}

Deno.test("core: retired ports are stored per agent and block of ports, each port once, expired ones dropped; the older single record is moved", async () => {
  const dir = await tempDir("core-retired");
  // What an older scheduler stored: one record of every agent's ports.
  const old = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  await old.put(
    "/t/retired_ports",
    JSON.stringify({
      ports: [
        { agentId: "A9", port: 7100, instance: "old", until: 1_000_000 + 300_000 },
        { agentId: "A9", port: 7101, instance: "expired", until: 999_999 },
        { agentId: "A1", port: 7003, instance: "gone", until: 1_000_000 + 300_000 },
      ],
    }),
  );
  await old.close();
  let { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    assertEquals(await store.get("/t/retired_ports"), undefined, "the old record is deleted");
    let records = await retiredRecords(store);
    assertEquals([...records.keys()], ["/t/port_quarantine/A1/6", "/t/port_quarantine/A9/6"]);
    assertEquals(records.get("/t/port_quarantine/A9/6")!.map((e) => e.port), [7100]);

    // 1 master + 59 slaves over two agents, ports 7000–7199 each (blocks 6 and 7 of 1024).
    const big = { capacityMB: 10, masters: 1, slaves: 59, distribution: 60, proxies: 0 };
    const cycle = async (name: string, n: number) => {
      assertEquals(await core.create({ name, ...big }), "created");
      await core.handleEvent({ type: "HEARTBEAT" });
      await core.handleEvent({
        type: "OFFERS",
        offers: { offers: [portsOffer(n, "A1", 7000, 7199), portsOffer(n + 1, "A2", 7000, 7199)] },
      });
      const tasks = mesos.take("launch").flatMap((l) => l.args[1] as TaskInfo[]);
      assertEquals(tasks.length, 60);
      const ports = tasks.map((t) =>
        `${t.agent_id.value}:${
          t.resources!.find((r) => r.name === "ports")!.ranges!.range![0]!.begin
        }`
      );
      assert(await core.delete(name));
      await core.handleEvent({ type: "HEARTBEAT" });
      for (const t of tasks) await core.handleEvent(update(t.task_id.value, "TASK_KILLED"));
      assertEquals(core.status(name), undefined);
      return ports;
    };
    const first = await cycle("b1", 10);
    assert(!first.includes("A1:7003"), "a port of the older record stays kept");
    clock.now += 60_000;
    // A restart keeps them: the next instance gets other ports.
    await core.stop();
    await store.close();
    ({ store, clock, mesos, core } = await setup(dir));
    clock.now = 1_060_000;
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const second = await cycle("b2", 20);
    assertEquals(second.filter((p) => first.includes(p)), [], "no port of b1 reused");
    records = await retiredRecords(store);
    for (const [key, ports] of records) {
      assertMatch(key, /^\/t\/port_quarantine\/A[129]\/[67]$/);
      const block = Number(key.split("/").at(-1));
      for (const e of ports) assertEquals(Math.floor(e.port / 1024), block, `${e.port} in ${key}`);
      assertEquals(
        new Set(ports.map((e) => e.port)).size,
        ports.length,
        `each port once in ${key}`,
      );
    }
    const stored = [...records].flatMap(([k, ps]) => ps.map((e) => `${k.split("/")[3]}:${e.port}`));
    for (const p of [...first, ...second]) assert(stored.includes(p), `${p} stored`);

    // Ten minutes on, the next retirement of a block drops what expired there.
    clock.now += 11 * 60_000;
    const third = await cycle("b3", 30);
    records = await retiredRecords(store);
    const a1 = records.get("/t/port_quarantine/A1/6")!;
    assertEquals(
      a1.map((e) => e.port).sort(),
      third.filter((p) => p.startsWith("A1:")).map((p) => Number(p.slice(3))).sort(),
    );
    assert(a1.every((e) => e.instance === "b3"));
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: MS instance, master lost, slave promoted and others re-pointed; restart", async () => {
  const dir = await tempDir("core-ms");
  let { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "m",
      capacityMB: 10,
      masters: 1,
      slaves: 2,
      distribution: 1,
      proxies: 0,
    });
    await core.handleEvent({ type: "HEARTBEAT" });
    const offers = [offer(1, "A1"), offer(2, "A2"), offer(3, "A3")];
    await core.handleEvent({ type: "OFFERS", offers: { offers } });
    // One round: the master first, its slaves pointing at the port it was given.
    assertEquals(mesos.launched.map((t) => t.task_id.value), ["m.p1.1", "m.p2.1", "m.p3.1"]);
    await core.handleEvent(update("m.p1.1", "TASK_RUNNING", "A1"));
    const slaves = mesos.launched.slice(1);
    assertEquals(slaves.map((t) => t.agent_id.value).sort(), ["A2", "A3"], "Distribution 1");
    const spec = JSON.parse(new TextDecoder().decode(slaves[0]!.data));
    assertEquals(spec.master, { host: "127.0.0.1", port: 7010 });
    await core.handleEvent(update("m.p2.1", "TASK_RUNNING", slaves[0]!.agent_id.value));
    await core.handleEvent(update("m.p3.1", "TASK_RUNNING", slaves[1]!.agent_id.value));
    await core.handleEvent(stats([
      { taskId: "m.p1.1" },
      { taskId: "m.p2.1", role: "slave", replOffset: 50 },
      { taskId: "m.p3.1", role: "slave", replOffset: 90 },
    ]));
    assertEquals(core.status("m")?.Status, "RUNNING");
    mesos.calls = [];

    // The master fails: the slaves are asked for their current offsets; p3
    // (highest fresh offset, although p2 reported more before) is promoted at
    // epoch 1, p2 re-pointed, p1 comes back as a slave.
    await core.handleEvent(stats([{ taskId: "m.p2.1", role: "slave", replOffset: 120 }]));
    await core.handleEvent(update("m.p1.1", "TASK_FAILED", "A1"));
    const queries = mesos.take("message").map((m) => m.args[2] as SchedulerToExecutor);
    assertEquals(queries.map((m) => `${m.kind}:${m.taskId}`), ["offset:m.p2.1", "offset:m.p3.1"]);
    assertEquals(core.status("m")?.Status, "FAILING_OVER");
    assertEquals(core.status("m")?.Master?.State, "LOST");
    await core.handleEvent(result(queries[0]!.commandId, true, 120));
    assertEquals(mesos.take("message"), [], "waits for every answer");
    await core.handleEvent(result(queries[1]!.commandId, true, 130));
    const msgs = mesos.take("message").map((m) => m.args[2] as SchedulerToExecutor);
    assertEquals(msgs.map((m) => `${m.kind}:${m.taskId}:${m.epoch}`), ["promote:m.p3.1:1"]);
    assertEquals(core.status("m")?.Status, "FAILING_OVER");
    assertEquals(core.status("m")?.Epoch, 1);
    assertEquals(core.status("m")?.Master, null, "not shown before it is writable");
    await core.handleEvent(result(msgs[0]!.commandId, true, 130));
    assertEquals(core.status("m")?.Master?.Id, "p3", "shown once the promote answered");
    // Re-pointed only now: REPLICAOF NO ONE would have dropped it.
    const repoint = mesos.take("message").map((m) => m.args[2] as SchedulerToExecutor);
    assertEquals(repoint.map((m) => `${m.kind}:${m.taskId}:${m.epoch}`), ["replicaof:m.p2.1:1"]);
    await core.handleEvent(stats([
      { taskId: "m.p2.1", role: "slave", replOffset: 90 },
      { taskId: "m.p3.1", role: "master", replOffset: 90 },
    ]));
    assertEquals(core.status("m")?.Status, "DEGRADED");

    // Restart: a new core over the same store sees the same state and relaunches nothing running.
    await core.stop();
    await store.close();
    ({ store, clock, mesos, core } = await setup(dir));
    assertEquals(core.list().map((v) => v.Name), ["m"]);
    assertEquals(core.status("m")?.Master?.Id, "p3");
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const explicit = mesos.take("reconcile")[0]!.args[0] as { taskId: string }[];
    assertEquals(explicit.map((t) => t.taskId).sort(), ["m.p2.1", "m.p3.1"]);
    // p2 answers, p3 does not: p3 is asked about again later.
    await core.handleEvent(update("m.p2.1", "TASK_RUNNING", "A2", false));
    clock.now += 6_000;
    await core.tick();
    const again = mesos.take("reconcile")[0]!.args[0] as { taskId: string }[];
    assertEquals(again.map((t) => t.taskId), ["m.p3.1"]);
    clock.now += 60_000;
    await core.tick();
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(7, "A1", true), offer(8, "A2", true), offer(9, "A3", true)] },
    });
    const relaunched = mesos.launched.map((t) => t.task_id.value);
    assertEquals(relaunched, ["m.p1.2"], "only the lost process is launched again");
    const spec2 = JSON.parse(new TextDecoder().decode(mesos.launched[0]!.data));
    assertEquals(spec2.role, "slave");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a slave counts in sync from the stats its TASK_RUNNING carries; an older stats message or a retried update does not take that back", async () => {
  const dir = await tempDir("core-running-stats");
  const { store, clock, mesos, core } = await setup(dir);
  try {
    await subscribeAndPlaceOnePlusOne(core, "r");
    assertEquals(mesos.launched.map((t) => t.task_id.value), ["r.p1.1", "r.p2.1"]);
    const slaveAgent = mesos.launched[1]!.agent_id.value;
    const running = (taskId: string, agent: string, at: number, inSync: boolean) =>
      update(taskId, "TASK_RUNNING", agent, true, {
        host: "127.0.0.1",
        port: 7000,
        stats: statsEntry({ taskId, role: taskId === "r.p1.1" ? "master" : "slave", inSync }),
        statsAt: at,
      });
    await core.handleEvent(running("r.p1.1", "A1", 100, true));
    await core.handleEvent(running("r.p2.1", slaveAgent, 105, true));
    assertEquals(core.status("r")?.Status, "RUNNING", "no stats message needed");
    assertEquals(core.status("r")?.Slaves.map((x) => x.InSync), [true]);

    // Read before the update (at 90: still syncing), delivered after it: ignored.
    await core.handleEvent(
      stats([{ taskId: "r.p2.1", role: "slave", inSync: false }], slaveAgent, 90),
    );
    assertEquals(core.status("r")?.Status, "RUNNING");
    // A newer one counts: the slave lost its link.
    await core.handleEvent(
      stats([{ taskId: "r.p2.1", role: "slave", inSync: false }], slaveAgent, 200),
    );
    assertEquals(core.status("r")?.Slaves.map((x) => x.InSync), [false]);
    assert(core.status("r")?.Status !== "RUNNING");
    // The agent retries the old TASK_RUNNING: its stats (at 105) are older than those held.
    await core.handleEvent(running("r.p2.1", slaveAgent, 105, true));
    assertEquals(core.status("r")?.Slaves.map((x) => x.InSync), [false]);
    // A newer update's stats count; a message stamped earlier (a clock stepped
    // back) is kept out only for a while after it.
    await core.handleEvent(running("r.p2.1", slaveAgent, 500, false));
    const inSync150 = stats([{ taskId: "r.p2.1", role: "slave", inSync: true }], slaveAgent, 150);
    await core.handleEvent(inSync150);
    assertEquals(core.status("r")?.Slaves.map((x) => x.InSync), [false]);
    clock.now += 6_000;
    await core.handleEvent(inSync150);
    assertEquals(core.status("r")?.Status, "RUNNING");
    // Bytes that are not ours in TASK_RUNNING data change nothing and break nothing.
    await core.handleEvent({
      type: "UPDATE",
      update: {
        status: {
          task_id: { value: "r.p2.1" },
          state: "TASK_RUNNING",
          agent_id: { value: slaveAgent },
          source: "SOURCE_EXECUTOR",
          uuid: new Uint8Array(16).fill(9),
          data: new TextEncoder().encode("not json {"),
        },
      },
    });
    assertEquals(core.status("r")?.Status, "RUNNING");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: TASK_RUNNINGs from the event stream share one planning pass; a loss is planned at once", async () => {
  const dir = await tempDir("core-pass-delay");
  // A long delay, so that the events below surely come within it on a busy machine.
  const delayMs = 8_000;
  const { store, clock, mesos, core } = await setup(dir, undefined, undefined, undefined, delayMs);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    for (const name of ["s1", "s2", "s3"]) {
      await core.create({ name, capacityMB: 10, masters: 1, slaves: 0, distribution: 1 });
    }
    await core.tick(); // the pass after the CREATEs (they leave it to a later one)
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const launched = mesos.launched.map((t) => t.task_id.value).sort();
    assertEquals(launched.length, 6, "three masters and their proxies");
    mesos.calls = [];
    const running = (taskId: string) =>
      update(taskId, "TASK_RUNNING", "A1", true, {
        host: "127.0.0.1",
        port: 7010,
        ...(taskId.includes(".p1.")
          ? { stats: statsEntry({ taskId, role: "master" }), statsAt: clock.now }
          : {}),
      });
    // One at a time, as the stream delivers them apart: each is handled at
    // once (STATUS counts it), and the pass they ask for comes once, later.
    const firstAt = performance.now();
    for (const [i, taskId] of launched.entries()) {
      await core.queueEvent(running(taskId));
      await waitFor("the update handled", () => handled(i + 1), {
        timeoutMs: 3_000,
        intervalMs: 1,
      });
    }
    assertEquals(core.status("s3")?.Status, "CREATING", "no pass yet");
    assertEquals(mesos.take("message"), [], "no proxy told yet");
    await waitFor("the pass", () => core.status("s3")?.Status === "RUNNING", {
      timeoutMs: 3 * delayMs,
      intervalMs: 5,
    });
    for (const name of ["s1", "s2"]) assertEquals(core.status(name)?.Status, "RUNNING");
    // The tell leaves once the pass's writes are on disk (the store syncs off the event loop).
    await waitFor("the proxies told", () => mesos.calls.some((c) => c.type === "message"), {
      timeoutMs: 5_000,
      intervalMs: 5,
    });
    await core.tick();
    const tells = mesos.take("message").map((m) => m.args[2] as { kind: string });
    assertEquals(tells.map((m) => m.kind), ["proxy-masters"], "the three proxies in one message");
    assert(performance.now() - firstAt >= delayMs - 50, "the pass waited for its delay");

    // A master's end is planned at once, with no delay.
    const failedAt = performance.now();
    await core.queueEvent(update("s1.p1.1", "TASK_FAILED", "A1"));
    await waitFor("the pass after the failure", () => core.status("s1")?.Status === "DEGRADED", {
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    assert(performance.now() - failedAt < delayMs / 2, "planned without waiting for the delay");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }

  function handled(n: number): boolean {
    const views = ["s1", "s2", "s3"].map((name) => core.status(name)!);
    const procs = views.reduce((sum, v) => sum + v.ProcessesRunning, 0);
    const proxies = views.reduce((sum, v) => sum + v.Proxies.length, 0);
    return procs + proxies >= n;
  }
});

Deno.test("core: the proxies of one executor are told their masters in one message; those that failed, and those of an older executor, are told again", async () => {
  const dir = await tempDir("core-proxy-tells");
  let { store, clock, mesos, core } = await setup(dir);
  type Tell = { kind: string; commandId: string; taskId?: string; proxies?: { taskId: string }[] };
  const told = () =>
    mesos.take("message").map((m) => m.args[2] as Tell).filter((m) =>
      m.kind.startsWith("proxy-master")
    );
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    for (const name of ["s1", "s2", "s3"]) {
      await core.create({
        name,
        capacityMB: 10,
        masters: 1,
        slaves: 0,
        distribution: 1,
        proxies: 1,
      });
    }
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const launched = mesos.launched.map((t) => t.task_id.value).sort();
    assertEquals(launched, ["s1.p1.1", "s1.x1.1", "s2.p1.1", "s2.x1.1", "s3.p1.1", "s3.x1.1"]);
    for (const taskId of launched) {
      await core.handleEvent(
        update(taskId, "TASK_RUNNING", "A1", true, {
          host: "127.0.0.1",
          port: 7010,
          ...(taskId.includes(".p1.")
            ? { stats: statsEntry({ taskId, role: "master" }), statsAt: clock.now }
            : {}),
        }),
      );
    }
    // One pass per event here: each proxy is told as its own RUNNING comes in.
    const first = told();
    assertEquals(first.map((m) => [m.kind, m.taskId]), [
      ["proxy-master", "s1.x1.1"],
      ["proxy-master", "s2.x1.1"],
      ["proxy-master", "s3.x1.1"],
    ]);
    for (const m of first) await core.handleEvent(result(m.commandId, true));

    // A restarted scheduler tells every proxy again at once: one message for the three.
    await core.stop();
    await store.close();
    ({ store, clock, mesos, core } = await setup(dir));
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const again = told();
    assertEquals(again.map((m) => m.kind), ["proxy-masters"]);
    assertEquals(again[0]!.proxies!.map((p) => p.taskId), ["s1.x1.1", "s2.x1.1", "s3.x1.1"]);

    // Two of them did not take it: they are told again (together), the other not.
    await core.handleEvent(
      result(again[0]!.commandId, false, undefined, {
        error: "two failed",
        failed: [
          { taskId: "s2.x1.1", error: "x" },
          { taskId: "s3.x1.1", error: "y" },
        ],
      }),
    );
    await passes(core, clock, 1, 1_000);
    assertEquals(told().length, 0, "not before the retell time");
    await passes(core, clock, 1, 5_000);
    const second = told();
    assertEquals(second.map((m) => m.kind), ["proxy-masters"]);
    assertEquals(second[0]!.proxies!.map((p) => p.taskId), ["s2.x1.1", "s3.x1.1"]);

    // An executor that does not know proxy-masters: one proxy-master each from then on.
    await core.handleEvent(
      result(second[0]!.commandId, false, undefined, {
        error: 'Cannot run command: unknown kind "proxy-masters"',
      }),
    );
    await passes(core, clock, 1, 5_000);
    const third = told();
    assertEquals(third.map((m) => [m.kind, m.taskId]), [
      ["proxy-master", "s2.x1.1"],
      ["proxy-master", "s3.x1.1"],
    ]);
    await core.handleEvent(result(third[0]!.commandId, true));
    await core.handleEvent(result(third[1]!.commandId, true));
    await passes(core, clock, 1, 5_000);
    assertEquals(told().length, 0, "every proxy confirmed");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: an instance that does not fit stays CREATING with the reason", async () => {
  const dir = await tempDir("core-fit");
  const { store, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "big",
      capacityMB: 8000,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    await core.create({
      name: "wide",
      capacityMB: 10,
      masters: 1,
      slaves: 3,
      distribution: 1,
      proxies: 0,
    });
    await core.tick();
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(1, "A1"), offer(2, "A2"), offer(3, "A3")] },
    });
    const big = core.status("big")!;
    assertEquals(big.Status, "CREATING");
    assertMatch(big.Reason ?? "", /Waiting for resources: need 1 agent with 8032 MB/);
    // The master of "wide" and the slaves that fit went out in the same round.
    assertEquals(mesos.launched.length, 3, "only three agents for Distribution 1");
    assertEquals(mesos.launched[0]!.task_id.value, "wide.p1.1");
    await core.handleEvent(update("wide.p1.1", "TASK_RUNNING", mesos.launched[0]!.agent_id.value));
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(4, "A1", true), offer(5, "A2", true), offer(6, "A3", true)] },
    });
    assertEquals(mesos.launched.length, 3, "no fourth agent for Distribution 1");
    const wide = core.status("wide")!;
    assertEquals(wide.Status, "CREATING");
    assertMatch(wide.Reason ?? "", /need 4 agents .* for Distribution 1/);
    assert(mesos.take("decline").length > 0, "unused offers declined");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: offers are suppressed once they have shown the agents, or after 5 s", async () => {
  const dir = await tempDir("core-learn");
  const { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.tick();
    assertEquals(mesos.take("suppress").length, 0, "offers wanted: the agents are not known");
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(mesos.take("suppress").length, 1, "the agents offered: nothing to do");
    // Re-subscribed, and no offer comes: suppressed after 5 s all the same.
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    clock.now += 4_000;
    await core.tick();
    assertEquals(mesos.take("suppress").length, 0);
    clock.now += 1_000;
    await core.tick();
    assertEquals(mesos.take("suppress").length, 1);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a CREATE no registered agent could hold is refused once the agents are known", async () => {
  const dir = await tempDir("core-refuse");
  const { store, clock, mesos, core } = await setup(dir);
  const req = (name: string, capacityMB: number, slaves: number, distribution = 1) => ({
    name,
    capacityMB,
    masters: 1,
    slaves,
    distribution,
    proxies: 0,
  });
  try {
    // Before any offer nothing is known: accepted (it waits with a reason).
    assertEquals(await core.create(req("early", 8000, 0)), "created");
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(1, "A1"), offer(2, "A2")] },
    });
    // Seen two agents a moment ago: a third may still come, so nothing is refused yet.
    assertEquals(await core.create(req("wide0", 10, 2)), "created");
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(3, "A3")] } });
    clock.now += 3_000;
    // Each agent: 4096 MB, 4 cpus (the executor's 64 MB and 0.1 cpus come off).
    const big = await core.create(req("big", 4001, 0));
    assertEquals(typeof big, "object");
    assertMatch(
      (big as { refused: string }).refused,
      /^Cannot create instance "big": one process needs an agent with 4097 MB and 0.2 cpus .* but of the 3 agents registered the largest has 4096 MB/,
    );
    assertEquals(await core.create(req("fits", 4000, 0)), "created");
    const wide = await core.create(req("wide", 10, 3));
    assertMatch(
      (wide as { refused: string }).refused,
      /its 4 processes of 10 MB need at least 4 agents at Distribution 1 .* the 3 agents registered can hold at most 3 of them/,
    );
    assertEquals(await core.create(req("wide2", 10, 3, 2)), "created", "Distribution 2 fits");
    assertEquals(core.status("big"), undefined, "nothing stored for a refused CREATE");
    assertEquals(await store.get("/t/instances/big"), undefined);
    // An agent removed no longer counts (and the set must settle again); its
    // tasks were reported unreachable first, as the master does.
    for (const task of mesos.launched.filter((t) => t.agent_id.value === "A3")) {
      await core.handleEvent(update(task.task_id.value, "TASK_UNREACHABLE", "A3"));
    }
    await core.handleEvent({ type: "FAILURE", failure: { agent_id: { value: "A3" } } });
    assertEquals(await core.create(req("three0", 10, 2)), "created", "not settled yet");
    clock.now += 3_000;
    const three = await core.create(req("three", 10, 2));
    assertMatch(
      (three as { refused: string }).refused,
      /the 2 agents registered can hold at most 2/,
    );
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a refusal while offers are suppressed revives them, so a new agent is seen", async () => {
  const dir = await tempDir("core-refuse-revive");
  const { store, clock, mesos, core } = await setup(dir);
  const pair = {
    name: "pair",
    capacityMB: 10,
    masters: 1,
    slaves: 1,
    distribution: 1,
    proxies: 0,
  };
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(mesos.take("suppress").length, 1);
    clock.now += 3_000;
    const refused = await core.create(pair);
    assertMatch(
      (refused as { refused: string }).refused,
      /the 1 agent registered can hold at most 1/,
    );
    assertEquals(mesos.take("revive").length, 1, "offers asked for again");
    // A second agent registered meanwhile: it offers, and once settled the pair fits.
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(2, "A1"), offer(3, "A2")] },
    });
    assertEquals(await core.create({ ...pair, name: "pair-soon" }), "created", "not settled yet");
    clock.now += 3_000;
    assertEquals(await core.create(pair), "created");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a task the master no longer knows is relaunched once, not lost again", async () => {
  const dir = await tempDir("core-unknown");
  const { store, clock, mesos, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "u",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    await core.tick();
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    await core.handleEvent(update("u.p1.1", "TASK_RUNNING"));
    // The master answers a reconciliation: unknown task (no uuid, nothing to ack).
    await core.handleEvent(update("u.p1.1", "TASK_UNKNOWN", "A1", false));
    assertEquals(mesos.take("acknowledge").length, 1, "only the RUNNING update had a uuid");
    assertEquals(core.status("u")?.Status, "RUNNING", "a doubt, not yet a verdict");
    // Its own checks find nothing listening, three times over two seconds: lost.
    await passes(core, clock, 2);
    assertMatch(
      core.status("u")?.Reason ?? "",
      /Mesos reports TASK_UNKNOWN and it does not answer/,
    );
    clock.now += 60_000;
    await core.tick();
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["u.p1.1"], "the old task may be alive");
    // The kill of an unknown task comes back as another reconciliation answer.
    await core.handleEvent(update("u.p1.1", "TASK_UNKNOWN", "A1", false));
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(2, "A1", true)] } });
    assertEquals(mesos.launched.map((t) => t.task_id.value), ["u.p1.1", "u.p1.2"]);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a single redis that dies on a live agent restarts in place; a silent one is kept until Mesos agrees", async () => {
  const dir = await tempDir("core-pin");
  const { store, clock, mesos, core } = await setup(dir, 3_000);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "s",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(mesos.launched.map((t) => t.agent_id.value), ["A1"]);
    await core.handleEvent(update("s.p1.1", "TASK_RUNNING", "A1"));
    await core.handleEvent(stats([{ taskId: "s.p1.1" }]));
    assertEquals(core.status("s")?.Status, "RUNNING");

    // redis-server exits: only an offer from A1 is taken while the pin lasts.
    await core.handleEvent(update("s.p1.1", "TASK_FAILED", "A1"));
    clock.now += 1_000;
    await core.tick();
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(2, "A2")] } });
    assertEquals(mesos.launched.length, 1, "not launched elsewhere");
    assertMatch(core.status("s")?.Reason ?? "", /restart p1 in place/);
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(3, "A1", true)] } });
    const again = mesos.launched[1]!;
    assertEquals(again.agent_id.value, "A1");
    const spec1 = JSON.parse(new TextDecoder().decode(mesos.launched[0]!.data));
    const spec2 = JSON.parse(new TextDecoder().decode(again.data));
    assertEquals(spec2.dataDir, spec1.dataDir, "same data dir");

    // No stats for a while: Mesos is asked and the process is checked directly.
    await core.handleEvent(update("s.p1.2", "TASK_RUNNING", "A1"));
    mesos.calls = [];
    clock.now += 3_500;
    await core.tick();
    assertEquals(
      (mesos.take("reconcile")[0]?.args[0] as { taskId: string }[]).map((t) => t.taskId),
      ["s.p1.2"],
    );
    await passes(core, clock, 6);
    assertEquals(core.status("s")?.Status, "RUNNING", "no event since: the stream may be stalled");
    await core.handleEvent({ type: "HEARTBEAT" });
    await passes(core, clock, 2);
    // Silence and unanswered checks are time-outs only: the one copy of the data is kept.
    assertEquals(core.status("s")?.Status, "RUNNING");
    assertMatch(
      core.status("s")?.LastEvent ?? "",
      /p1: No stats from its executor for 1\d s and it does not answer the scheduler .*only copy of the data/,
    );
    assertEquals(mesos.take("kill"), [], "the only copy is not killed on time-outs");
    // Mesos agrees that the agent is out of touch: lost, fenced by a kill.
    await core.handleEvent(update("s.p1.2", "TASK_UNREACHABLE", "A1", false));
    await passes(core, clock, 1);
    assertMatch(
      core.status("s")?.Reason ?? "",
      /Mesos reports TASK_UNREACHABLE; no stats from its executor .* does not answer/,
    );
    clock.now += 2_000;
    await core.tick();
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["s.p1.2"], "the lost task is killed");

    // A stray task of this instance reporting itself master is killed.
    await core.handleEvent(stats([{ taskId: "s.p1.1", role: "master" }], "A3"));
    assertEquals(mesos.take("kill").map((k) => k.args), [["s.p1.1", "A3"]]);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: one store batch per event; every launch is stored before Mesos hears of it; a failed batch launches nothing", async () => {
  const dir = await tempDir("core-batch");
  const { store, mesos, core } = await setup(dir);
  const storedAtLaunch: string[][] = [];
  const launch = mesos.launch.bind(mesos);
  mesos.launch = async (offerId, tasks, refuse) => {
    storedAtLaunch.push(
      (await store.list("/t/instances/ms")).filter((e) => /"state":"STAGING"/.test(e.value))
        .map((e) => e.key.split("/").pop()!),
    );
    return launch(offerId, tasks, refuse);
  };
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    let commits = core.commits;
    assertEquals(
      await core.create({
        name: "ms",
        capacityMB: 10,
        masters: 1,
        slaves: 5,
        distribution: 6,
        proxies: 0,
      }),
      "created",
    );
    assertEquals(core.commits - commits, 1, "the record and its 6 processes in one batch");
    assertEquals((await store.list("/t/instances/ms")).length, 7);
    await core.handleEvent({ type: "HEARTBEAT" });

    // Another writer changes one process key: the round's batch fails, nothing is launched.
    const key = "/t/instances/ms/procs/p4";
    await store.put(key, (await store.get(key))!.value);
    mesos.calls = [];
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(mesos.take("launch").length, 0, "no launch after a failed batch");
    assertEquals(mesos.take("decline").map((d) => d.args[0]), [["o1"]], "the offer goes back");
    assertEquals(
      core.status("ms")?.Slaves.length ?? 0,
      0,
      "memory is back to before the batch: no process placed",
    );
    assertEquals(
      (await store.list("/t/instances/ms")).filter((e) => /STAGING/.test(e.value)).length,
      0,
    );

    // The next round (with the versions read back) stores every launch in one batch, then launches.
    commits = core.commits;
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(2, "A1")] } });
    const launched = mesos.take("launch");
    assertEquals(launched.length, 1);
    assertEquals((launched[0]!.args[1] as TaskInfo[]).length, 6);
    assertEquals(storedAtLaunch.at(-1)!.sort(), ["p1", "p2", "p3", "p4", "p5", "p6"]);
    assertEquals(core.commits - commits, 1, "one batch for the six launches");

    // A TASK_RUNNING is one batch, and acknowledged after it.
    commits = core.commits;
    await core.handleEvent(update("ms.p1.1", "TASK_RUNNING"));
    assertEquals(core.commits - commits, 1);
    assertMatch(String(mesos.take("acknowledge")[0]!.args[3]), /"state":"RUNNING"/);

    // Updates queued together (a burst of slaves in sync) are one batch and one planning pass,
    // and each is acknowledged once that batch holds it.
    commits = core.commits;
    await Promise.all(
      ["p2", "p3", "p4", "p5", "p6"].map((p) =>
        core.handleEvent(update(`ms.${p}.1`, "TASK_RUNNING"))
      ),
    );
    assertEquals(core.commits - commits, 1, "one batch for five updates queued together");
    await waitFor(
      "five acknowledgements",
      () => mesos.calls.filter((c) => c.type === "acknowledge").length === 5,
      { timeoutMs: 10_000, intervalMs: 10 },
    );
    for (const ack of mesos.take("acknowledge")) {
      assertMatch(String(ack.args[3]), /"state":"RUNNING"/);
    }

    // A DELETE: the six kills are stored in one batch, before Mesos hears of any.
    const killingAtKill: number[] = [];
    const kill = mesos.kill.bind(mesos);
    mesos.kill = async (taskId, agentId) => {
      killingAtKill.push(
        (await store.list("/t/instances/ms")).filter((e) => /"state":"KILLING"/.test(e.value))
          .length,
      );
      return kill(taskId, agentId);
    };
    commits = core.commits;
    // Another writer changes a process key: that pass's kill batch fails and sends no kill.
    await store.put(key, (await store.get(key))!.value);
    assertEquals(await core.delete("ms"), true);
    assertEquals(mesos.take("kill"), [], "no kill without its state stored");
    assertEquals(killingAtKill, []);
    // The next pass (the version read back) stores them and sends them.
    await core.tick();
    assertEquals(mesos.take("kill").length, 6);
    assertEquals(killingAtKill, [6, 6, 6, 6, 6, 6], "every kill stored before the first is sent");
    assert(
      core.commits - commits <= 2,
      `the delete and its kills: ${core.commits - commits} commits`,
    );
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: CREATEs that arrive together share a store batch; each is answered once stored", async () => {
  const dir = await tempDir("core-create-batch");
  const { store, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const names = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const commits = core.commits;
    const stored: string[] = [];
    const outcomes = await Promise.all(names.map(async (n) => {
      const outcome = await core.create(single(n));
      // Stored when answered.
      if ((await store.get(`/t/instances/${n}`)) !== undefined) stored.push(n);
      return outcome;
    }));
    assertEquals(outcomes, names.map(() => "created"));
    assertEquals(stored.sort(), [...names].sort());
    assert(core.commits - commits <= 2, `20 creates in ${core.commits - commits} batches`);
    assertEquals((await store.list("/t/instances")).length, 40, "records and processes");

    // The same name twice at once: one is created, the other waits for its batch and finds it.
    const twice = await Promise.all([core.create(single("dup")), core.create(single("dup"))]);
    assertEquals(twice.sort(), ["created", "exists"]);

    // DELETEs that arrive together share a batch too, and so do the instances forgotten together
    // (nothing was launched: they are forgotten at once).
    const before = core.commits;
    assertEquals(await Promise.all(names.map((n) => core.delete(n))), names.map(() => true));
    await waitFor("every instance forgotten", () => names.every((n) => !core.status(n)), {
      timeoutMs: 5_000,
      intervalMs: 5,
    });
    await core.tick();
    assert(core.commits - before <= 4, `20 deletes in ${core.commits - before} batches`);
    const left = (await store.list("/t/instances")).map((e) => e.key);
    assertEquals(left.filter((k) => !k.startsWith("/t/instances/dup")), [], "no key of theirs");
    // A name forgotten in the batch being gathered can be created again at once.
    assertEquals(await core.delete("dup"), true);
    await waitFor("dup forgotten", () => !core.status("dup"), { timeoutMs: 5_000, intervalMs: 5 });
    assertEquals(await core.create(single("dup")), "created");
    assertEquals((await store.list("/t/instances/dup")).length, 2, "the new record and process");
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a batch of CREATEs that fails takes its instances back; one whose name another writer took is refused, the others go in the next batch", async () => {
  const dir = await tempDir("core-create-conflict");
  const { store, core } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    // Another writer holds the key of x3.
    await store.put("/t/instances/x3", "{}");
    const names = ["x1", "x2", "x3", "x4", "x5"];
    const outcomes = await Promise.all(names.map((n) => core.create(single(n))));
    assertEquals(outcomes, ["created", "created", "exists", "created", "created"]);
    assertEquals(core.status("x3"), undefined, "not in memory");
    for (const n of ["x1", "x2", "x4", "x5"]) {
      assertEquals(core.status(n)?.Status, "CREATING");
      assert((await store.get(`/t/instances/${n}/procs/p1`)) !== undefined, `${n} stored`);
    }
    assertEquals(
      (await store.get("/t/instances/x3"))?.value,
      "{}",
      "the other writer's value stays",
    );

    // The store fails: the CREATE fails and leaves nothing behind.
    await store.close();
    let failed = false;
    await core.create(single("y1")).catch(() => failed = true);
    assert(failed, "a CREATE whose batch failed is not answered created");
    assertEquals(core.status("y1"), undefined, "taken back out of memory");
  } finally {
    await core.stop();
    await store.close().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: events given to queueEvent one by one share a group commit; each is acknowledged once it holds them", async () => {
  const dir = await tempDir("core-group");
  // A group commit that never ends on its own: only a non-event job or stop() commits.
  const { store, mesos, core } = await setup(dir, undefined, undefined, 3_600_000);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "ms",
      capacityMB: 10,
      masters: 1,
      slaves: 3,
      distribution: 4,
      proxies: 0,
    });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    assertEquals(mesos.take("launch").length, 1);
    mesos.calls = [];
    const commits = core.commits;
    // Each resolves once its handling starts: the stream reads the next one meanwhile.
    for (const p of ["p1", "p2", "p3", "p4"]) {
      await core.queueEvent(update(`ms.${p}.1`, "TASK_RUNNING"));
    }
    await core.queueEvent({ type: "HEARTBEAT" });
    // Handled (memory and STATUS at once), but not stored yet: no acknowledgement.
    assertEquals(core.status("ms")?.ProcessesRunning, 4);
    assertEquals(core.commits, commits);
    assertEquals(mesos.take("acknowledge"), [], "nothing acknowledged before it is stored");
    for (const p of ["p1", "p2", "p3", "p4"]) {
      assertMatch((await store.get(`/t/instances/ms/procs/${p}`))!.value, /"state":"STAGING"/);
    }
    // A job that is not an event (a timer pass here) commits at once: one batch for the four.
    await core.tick();
    assertEquals(core.commits - commits, 1, "one batch for four updates");
    await waitFor(
      "four acknowledgements",
      () => mesos.calls.filter((c) => c.type === "acknowledge").length === 4,
      { timeoutMs: 10_000, intervalMs: 10 },
    );
    for (const ack of mesos.take("acknowledge")) {
      assertMatch(String(ack.args[3]), /"state":"RUNNING"/);
    }
    // stop() stores what a group commit gathers, and its acknowledgement goes.
    await core.queueEvent(update("ms.p2.1", "TASK_FAILED"));
    await core.queueEvent({ type: "HEARTBEAT" });
    assertMatch((await store.get("/t/instances/ms/procs/p2"))!.value, /"state":"RUNNING"/);
    await core.stop();
    assertMatch((await store.get("/t/instances/ms/procs/p2"))!.value, /"state":"LOST"/);
    assertMatch(String(mesos.take("acknowledge")[0]?.args[3]), /"state":"LOST"/);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a group commit ends on its own after groupCommitMs", async () => {
  const dir = await tempDir("core-group-timer");
  const { store, mesos, core } = await setup(dir, undefined, undefined, 30);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({
      name: "s",
      capacityMB: 10,
      masters: 1,
      slaves: 0,
      distribution: 1,
      proxies: 0,
    });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const commits = core.commits;
    mesos.calls = [];
    await core.queueEvent(update("s.p1.1", "TASK_RUNNING"));
    await waitFor(
      "the acknowledgement",
      () => mesos.calls.some((c) => c.type === "acknowledge"),
      { timeoutMs: 10_000, intervalMs: 10 },
    );
    assertEquals(core.commits - commits, 1);
    assertMatch(String(mesos.take("acknowledge")[0]!.args[3]), /"state":"RUNNING"/);
    assertMatch((await store.get("/t/instances/s/procs/p1"))!.value, /"state":"RUNNING"/);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a master in doubt is checked directly: kept while it answers, replaced once it does not", async () => {
  const dir = await tempDir("core-doubt");
  let answers = true;
  const probed: string[] = [];
  const prober: Prober = (t) => {
    probed.push(`${t.host}:${t.port}`);
    return Promise.resolve(
      answers
        ? { ok: true, role: "master", latencyMs: 1 }
        : { ok: false, error: "no answer within 1000 ms", latencyMs: 1_000, timedOut: true },
    );
  };
  const { store, clock, mesos, core } = await setup(dir, 3_000, prober);
  /** One pass a second for `seconds`; the slaves' executors keep sending stats. */
  const run = async (seconds: number, master?: Partial<RedisStats>) => {
    for (let i = 0; i < seconds; i++) {
      await core.handleEvent(stats([
        ...(master ? [{ taskId: "m.p1.1", ...master }] : []),
        { taskId: "m.p2.1", role: "slave", replOffset: 10 },
        { taskId: "m.p3.1", role: "slave", replOffset: 10 },
      ]));
      await passes(core, clock, 1);
      if (master?.unansweredMs !== undefined) master.unansweredMs += 1_000;
    }
  };
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
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
    for (const t of mesos.launched) {
      await core.handleEvent(update(t.task_id.value, "TASK_RUNNING", t.agent_id.value));
    }
    await run(1, {});
    assertEquals(core.status("m")?.Status, "RUNNING");
    mesos.calls = [];

    // The master's agent restarts: Mesos says unreachable and its executor's
    // messages stop. The master answers the scheduler's own check: it stays.
    await core.handleEvent(update("m.p1.1", "TASK_UNREACHABLE", "A1", false));
    await run(15);
    assertEquals(probed.length >= 10, true, `checked directly (${probed.length} times)`);
    assertEquals(probed[0], "127.0.0.1:7010");
    const view = core.status("m")!;
    assertEquals([view.Status, view.Epoch, view.Master?.Id, view.Master?.State], [
      "RUNNING",
      0,
      "p1",
      "RUNNING",
    ]);
    assertEquals(mesos.take("kill"), [], "nothing killed");
    assertEquals(mesos.take("message"), [], "no offset query, no promotion");

    // The agent re-registered: Mesos says RUNNING again, stats flow.
    await core.handleEvent({
      type: "UPDATE",
      update: {
        status: {
          task_id: { value: "m.p1.1" },
          state: "TASK_RUNNING",
          agent_id: { value: "A1" },
          source: "SOURCE_MASTER",
          reason: "REASON_AGENT_REREGISTERED",
        },
      },
    });
    await run(2, {});
    const before = probed.length;
    await run(3, {});
    assertEquals(probed.length, before, "out of doubt: no more direct checks");

    // Now the master stops answering its executor (alive but silent) and the scheduler.
    answers = false;
    // (statsLostMs here: 9 s.)
    await run(8, { unansweredMs: 0 });
    assertEquals(core.status("m")?.Status, "RUNNING", "time-outs alone must last 9 s");
    await run(2, { unansweredMs: 9_000 });
    const queries = mesos.take("message").map((m) => m.args[2] as SchedulerToExecutor);
    // Confirmed and another copy exists: the usual failover, the old master fenced first.
    assertEquals(queries.map((m) => `${m.kind}:${m.taskId}`), [
      "offset:m.p2.1",
      "offset:m.p3.1",
      "fence:m.p1.1",
      "promote:m.p2.1",
    ]);
    assertEquals([...new Set(mesos.take("kill").map((k) => k.args[0]))], ["m.p1.1"]);
    assertEquals([core.status("m")?.Status, core.status("m")?.Epoch], ["FAILING_OVER", 1]);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: resources reserved for the role are used as offered; the executor keeps its ExecutorInfo across a restart", async () => {
  const dir = await tempDir("core-reserved");
  let { store, mesos, core } = await setup(dir);
  const reservations = [{ type: "DYNAMIC" as const, role: "redis", principal: "ops" }];
  const reserved = (n: number, executor: boolean): Offer => {
    const plain = offer(n, "A1", executor);
    return {
      ...plain,
      resources: plain.resources!.map((r) => ({
        ...r,
        allocation_info: { role: "redis" },
        reservations,
      })),
    };
  };
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({ name: "r1", capacityMB: 10, masters: 1, slaves: 0, distribution: 1 });
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [reserved(1, false)] } });
    const first = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    for (const r of [...first.resources!, ...first.executor!.resources!]) {
      assertEquals(r.reservations, reservations, `${r.name} is taken as reserved`);
    }
    assertEquals(first.executor!.resources!.map((r) => [r.name, r.scalar?.value]), [
      ["cpus", 0.1],
      ["mem", 64],
    ]);
    const stored = await store.get(`/t/executors/A1`);
    assertEquals(JSON.parse(stored!.value).resources, first.executor!.resources);

    // A restarted scheduler launches next to the running executor with the same ExecutorInfo.
    await core.stop();
    await store.close();
    ({ store, mesos, core } = await setup(dir));
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.create({ name: "r2", capacityMB: 10, masters: 1, slaves: 0, distribution: 1 });
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [reserved(2, true)] } });
    const launched = mesos.take("launch").flatMap((l) => l.args[1] as TaskInfo[]);
    const second = launched.find((t) => t.task_id.value === "r2.p1.1")!;
    assertEquals(second.executor, first.executor);

    // Unreserved offers: the default ExecutorInfo, as before reservations existed.
    await core.create({ name: "u1", capacityMB: 10, masters: 1, slaves: 0, distribution: 1 });
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(3, "A2")] } });
    const plain = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    assertEquals(plain.executor!.resources, [
      { name: "cpus", type: "SCALAR", scalar: { value: 0.1 } },
      { name: "mem", type: "SCALAR", scalar: { value: 64 } },
    ]);
    assertEquals(await store.get(`/t/executors/A2`), undefined);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: UPDATE resizes 1+1 by rolling replacement, survives a restart, promotes once after every offset", async () => {
  const dir = await tempDir("core-update");
  let { store, clock, mesos, core } = await setup(dir);
  const specOf = (t: TaskInfo) => JSON.parse(new TextDecoder().decode(t.data));
  const launchedNow = () => mesos.take("launch").flatMap((l) => l.args[1] as TaskInfo[]);
  const messages = () =>
    mesos.take("message").map((m) => m.args[2] as SchedulerToExecutor)
      .filter((m) => m.kind !== "purge");
  try {
    await subscribeAndPlaceOnePlusOne(core, "m");
    assertEquals(launchedNow().map((t) => t.task_id.value), ["m.p1.1", "m.p2.1"]);
    await core.handleEvent(update("m.p1.1", "TASK_RUNNING", "A1"));
    await core.handleEvent(update("m.p2.1", "TASK_RUNNING", "A2"));
    await core.handleEvent(stats([
      { taskId: "m.p1.1", goodSlaves: 1 },
      { taskId: "m.p2.1", role: "slave", replOffset: 10 },
    ]));
    assertEquals(core.status("m")?.Status, "RUNNING");

    assertEquals(await core.update({ name: "m", capacityMB: 20 }), "updating");
    assertEquals(
      await core.update({ name: "m", slaves: 3 }),
      {
        conflict:
          'Instance "m" is already being updated (replacing slaves (1 old left, 0 new in sync)); one change at a time: try again once it is done',
      },
    );
    // A new 20 MB slave first (Distribution 1: on the third agent).
    await core.tick();
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(3, "A3")] } });
    const [p3] = launchedNow();
    assertEquals(p3?.task_id.value, "m.p3.1");
    assertEquals([specOf(p3!).capacityMB, specOf(p3!).minReplicasToWrite, specOf(p3!).role], [
      20,
      1,
      "slave",
    ]);
    assertEquals(
      core.status("m")?.Status,
      "RUNNING",
      "a joining slave does not degrade the instance",
    );
    assertEquals(core.status("m")?.Update?.Target.Capacity, 20);
    await core.handleEvent(update("m.p3.1", "TASK_RUNNING", "A3"));
    // In sync: it counts, and a second new slave is wanted for the master's place; the old
    // slave goes once the master counts the new one too.
    await core.handleEvent(stats([{ taskId: "m.p3.1", role: "slave", replOffset: 10 }], "A3"));
    assertEquals(mesos.take("kill"), [], "the master counts one slave: the old one stays");
    await core.handleEvent(stats([{ taskId: "m.p1.1", goodSlaves: 2 }]));
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["m.p2.1"]);
    await core.handleEvent(update("m.p2.1", "TASK_KILLED", "A2"));
    assertEquals(
      await store.get("/t/instances/m/procs/p2"),
      undefined,
      "the retired slave's record is gone",
    );

    // The scheduler restarts in the middle: the change goes on from the store.
    await core.stop();
    await store.close();
    ({ store, clock, mesos, core } = await setup(dir));
    assertEquals(core.status("m")?.Update?.Target.Capacity, 20);
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    await core.handleEvent(update("m.p1.1", "TASK_RUNNING", "A1", false));
    await core.handleEvent(update("m.p3.1", "TASK_RUNNING", "A3", false));
    await core.handleEvent(stats([
      { taskId: "m.p1.1", goodSlaves: 1 },
      { taskId: "m.p3.1", role: "slave", replOffset: 20 },
    ]));
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(4, "A2", true)] } });
    const [p4] = launchedNow();
    assertEquals([p4?.task_id.value, specOf(p4!).capacityMB], ["m.p4.1", 20]);
    await core.handleEvent(update("m.p4.1", "TASK_RUNNING", "A2"));
    mesos.calls = [];
    // Both new slaves in sync: the master is fenced (drained first: it is alive) and killed.
    await core.handleEvent(stats([{ taskId: "m.p4.1", role: "slave", replOffset: 20 }], "A2"));
    assertEquals(
      messages().map((m) => `${m.kind}:${m.taskId}:${m.kind === "fence" ? m.drainMs : ""}`),
      ["fence:m.p1.1:5000"],
    );
    assertEquals(mesos.take("kill").map((k) => k.args[0]), ["m.p1.1"]);
    await core.handleEvent(update("m.p1.1", "TASK_KILLED", "A1"));
    const queries = messages();
    assertEquals(queries.map((m) => `${m.kind}:${m.taskId}`), ["offset:m.p3.1", "offset:m.p4.1"]);
    await core.handleEvent(result(queries[0]!.commandId, true, 25));
    // A planned switch waits for every answer, well past the usual 300 ms.
    await passes(core, clock, 3);
    assertEquals(messages(), [], "no promotion on a stale offset");
    await core.handleEvent(result(queries[1]!.commandId, true, 30));
    const promote = messages();
    assertEquals(promote.map((m) => `${m.kind}:${m.taskId}:${m.epoch}`), ["promote:m.p4.1:1"]);
    await core.handleEvent(result(promote[0]!.commandId, true, 30));
    assertEquals(messages().map((m) => `${m.kind}:${m.taskId}`), ["replicaof:m.p3.1"]);
    await core.handleEvent(stats([
      { taskId: "m.p4.1", goodSlaves: 1, replOffset: 30 },
      { taskId: "m.p3.1", role: "slave", replOffset: 30 },
    ]));
    const view = core.status("m")!;
    assertEquals(
      [
        view.Status,
        view.Capacity,
        view.Update,
        view.Epoch,
        view.Master?.Id,
        view.Slaves.map((s) => s.Id),
      ],
      ["RUNNING", 20, null, 1, "p4", ["p3"]],
    );
    assertEquals([view.Master?.MemoryCapacity, view.Slaves[0]?.MemoryCapacity], [20, 20]);
    assertMatch(
      view.LastEvent ?? "",
      /m resized: 10 MB, 1 slave, Distribution 1 → 20 MB, .* 1 promotion$/,
    );
    assertEquals(
      await store.get("/t/instances/m/procs/p1"),
      undefined,
      "the old master's record is gone",
    );
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: offers that come back one agent at a time share a burst out; nothing waits for a silent agent", async () => {
  const dir = await tempDir("core-spread");
  const { store, clock, mesos, core } = await setup(dir);
  const single = (name: string) =>
    core.create({ name, capacityMB: 10, masters: 1, slaves: 0, distribution: 1, proxies: 0 });
  const launchedOn = (offerId: string) =>
    mesos.take("launch").filter((c) => c.args[0] === offerId)
      .reduce((n, c) => n + (c.args[1] as TaskInfo[]).length, 0);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    // The three agents are known from a first round with nothing to place.
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [offer(1, "A1"), offer(2, "A2"), offer(3, "A3")] },
    });
    for (let i = 0; i < 9; i++) await single(`s${i}`);
    await core.tick();
    mesos.calls = [];
    // A1's offer alone: its third of the burst; the rest waits for A2 and A3.
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(4, "A1")] } });
    assertEquals(launchedOn("o4"), 3);
    const waiting = core.status("s8")!;
    assertEquals(waiting.Status, "CREATING");
    assertMatch(
      waiting.Reason ?? "",
      /Waiting for an offer from agent A[23], which runs fewer tasks/,
    );
    // A1 again at once: it has its share, so its offer goes back for 1 s.
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(5, "A1", true)] } });
    assertEquals(launchedOn("o5"), 0);
    assertEquals(mesos.take("decline").map((c) => c.args), [[["o5"], 1]]);
    clock.now += 200;
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(6, "A2")] } });
    assertEquals(launchedOn("o6"), 3);
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(7, "A3")] } });
    assertEquals(launchedOn("o7"), 3);

    // A3 falls silent: 3 s after its last offer nothing waits for it.
    for (let i = 9; i < 15; i++) await single(`s${i}`);
    await core.tick();
    clock.now += 200;
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(8, "A2", true)] } });
    // (9 running + 6 new) / 3 agents: 5 each.
    assertEquals(launchedOn("o8"), 2, "A2 takes its share while A1 and A3 may still offer");
    clock.now += 3_100;
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(9, "A1", true)] } });
    assertEquals(launchedOn("o9"), 4, "A1 takes its share and what was left for the silent ones");
    assertEquals(core.status("s14")!.Reason?.includes("fewer tasks") ?? false, false);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("core: a task that could not start on its port is relaunched on another one of that agent", async () => {
  const dir = await tempDir("core");
  const { clock, mesos, core, store } = await setup(dir);
  try {
    await core.handleEvent({ type: "SUBSCRIBED", subscribed: { framework_id: { value: "fw" } } });
    const create = (name: string) =>
      core.create({ name, capacityMB: 10, masters: 1, slaves: 0, distribution: 1, proxies: 0 });
    assertEquals(await create("held"), "created");
    await core.handleEvent({ type: "HEARTBEAT" });
    await core.handleEvent({ type: "OFFERS", offers: { offers: [offer(1, "A1")] } });
    const first = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    const port = JSON.parse(new TextDecoder().decode(first.data)).port;
    // Something Mesos does not know listens there: redis-server cannot bind.
    const failed = update("held.p1.1", "TASK_FAILED");
    failed.update!.status.reason = "REASON_CONTAINER_LAUNCH_FAILED";
    await core.handleEvent(failed);
    clock.now += 60_000;
    await core.tick();
    // The same agent offers the same ports again: the relaunch takes another one.
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [{ ...offer(1, "A1", true), id: { value: "o1-again" } }] },
    });
    const second = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    assertEquals(second.task_id.value, "held.p1.2");
    const again = JSON.parse(new TextDecoder().decode(second.data)).port;
    assert(again !== port, `relaunched on ${again}, the port it could not start on`);

    // A process that ran and then died keeps its port (its address) on relaunch.
    await core.handleEvent(update("held.p1.2", "TASK_RUNNING"));
    await core.handleEvent(update("held.p1.2", "TASK_FAILED"));
    clock.now += 60_000;
    await core.tick();
    await core.handleEvent({
      type: "OFFERS",
      offers: { offers: [{ ...offer(1, "A1", true), id: { value: "o1-third" } }] },
    });
    const third = (mesos.take("launch")[0]!.args[1] as TaskInfo[])[0]!;
    assertEquals(JSON.parse(new TextDecoder().decode(third.data)).port, again);
  } finally {
    await core.stop();
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
