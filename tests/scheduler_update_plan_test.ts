/**
 * Table tests of the UPDATE planner (`update_plan.ts`) and of what the
 * reconciler does with processes an update adds or removes.
 */
import { assertEquals } from "./_assert.ts";
import { planUpdate, type UpdateAction, type UpdateStats } from "../lib/scheduler/update_plan.ts";
import { plan } from "../lib/scheduler/plan.ts";
import type { InstanceRecord, InstanceShape, ProcessRecord } from "../lib/model.ts";

const M = "127.0.0.1:7001";

/** An instance `slaves` slaves of `cap` MB, changing to `target` (when given). */
function inst(
  slaves: number,
  cap: number,
  target?: Partial<InstanceShape>,
  extra: Partial<InstanceRecord> = {},
): InstanceRecord {
  const from = { capacityMB: cap, slaves, distribution: 1 };
  return {
    name: "a",
    type: slaves > 0 ? "MS" : "S",
    status: "RUNNING",
    capacityMB: cap,
    masters: 1,
    slaves,
    distribution: 1,
    masterId: "p1",
    rev: 1,
    createdAt: 0,
    updatedAt: 0,
    ...(target
      ? {
        update: {
          target: { ...from, ...target },
          from,
          phase: "starting",
          startedAt: 0,
          startEpoch: 0,
        },
      }
      : {}),
    ...extra,
  };
}

/** Process `id` (`p1` master at 7001), RUNNING, `cap` MB, kind from `minReplicas`. */
function proc(
  id: string,
  cap: number,
  minReplicas: number,
  extra: Partial<ProcessRecord> = {},
): ProcessRecord {
  const n = Number(id.slice(1));
  return {
    id,
    taskId: `a.${id}.1`,
    role: id === "p1" ? "master" : "slave",
    state: "RUNNING",
    agentId: `agent${n}`,
    host: "127.0.0.1",
    port: 7000 + n,
    updatedAt: 0,
    capacityMB: cap,
    minReplicas,
    ...(id === "p1" ? {} : { replicaOf: M }),
    ...extra,
  };
}

/** Stats: the master `p1`, and in-sync slaves with the given offsets. */
function stats(offsets: Record<string, number>, masterId = "p1"): Map<string, UpdateStats> {
  const m = new Map<string, UpdateStats>();
  for (const [id, replOffset] of Object.entries(offsets)) {
    m.set(`a.${id}.1`, { role: id === masterId ? "master" : "slave", inSync: true, replOffset });
  }
  return m;
}

/** `m` with the master `p1` counting `good` slaves for min-replicas-to-write. */
function counting(m: Map<string, UpdateStats>, good: number): Map<string, UpdateStats> {
  m.get("a.p1.1")!.goodSlaves = good;
  return m;
}

/** `m` with the master `p1` streaming to `n` of its slaves. */
function streaming(m: Map<string, UpdateStats>, n: number): Map<string, UpdateStats> {
  m.get("a.p1.1")!.streamingSlaves = n;
  return m;
}

const kinds = (actions: UpdateAction[]) =>
  actions.filter((a) => a.type !== "update-phase").map((a) =>
    a.type === "retire"
      ? `retire ${a.procId}${a.master ? " (master)" : ""} → ${a.slaves}`
      : a.type === "joined"
      ? `joined ${a.procId} → ${a.slaves}`
      : a.type === "update-done"
      ? "done"
      : `${a.type} ${a.procId}`
  );

const cases: {
  name: string;
  inst: InstanceRecord;
  procs: ProcessRecord[];
  stats: Map<string, UpdateStats>;
  want: string[];
  phase?: string;
}[] = [
  {
    name: "no update: nothing",
    inst: inst(1, 100),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1)],
    stats: stats({ p1: 10, p2: 10 }),
    want: [],
  },
  {
    name: "scale up 1+1 → 1+3: both new slaves at once",
    inst: inst(1, 100, { slaves: 3 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1)],
    stats: stats({ p1: 10, p2: 10 }),
    want: ["add-slave p3", "add-slave p4"],
    phase: "adding slaves (1 of 3 in sync)",
  },
  {
    name: "scale up: a joining slave in sync counts; the last one done",
    inst: inst(2, 100, { slaves: 3 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1),
      proc("p3", 100, 1),
      proc("p4", 100, 1, { joining: true }),
    ],
    stats: stats({ p1: 10, p2: 10, p3: 10, p4: 10 }),
    want: ["joined p4 → 3", "done"],
  },
  {
    name: "scale up: a joining slave not in sync yet is waited for",
    inst: inst(2, 100, { slaves: 3 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1),
      proc("p3", 100, 1),
      proc("p4", 100, 1, { joining: true, state: "STAGING" }),
    ],
    stats: stats({ p1: 10, p2: 10, p3: 10 }),
    want: [],
  },
  {
    name: "scale down 1+3 → 1+1: the two lowest offsets go, never the master",
    inst: inst(3, 100, { slaves: 1 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 100, 1), proc("p4", 100, 1)],
    stats: stats({ p1: 50, p2: 40, p3: 20, p4: 30 }),
    want: ["retire p3 → 2", "retire p4 → 1"],
    phase: "removing slaves",
  },
  {
    name: "scale down: retired slaves whose task ended are removed, then done",
    inst: inst(1, 100, { slaves: 1 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1),
      proc("p3", 100, 1, { retiring: true, state: "LOST" }),
      proc("p4", 100, 1, { retiring: true, state: "KILLING" }),
    ],
    stats: stats({ p1: 50, p2: 40 }),
    want: ["remove p3"],
  },
  {
    name: "resize 1+1 100 → 200: one new slave first",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1)],
    stats: stats({ p1: 10, p2: 10 }),
    want: ["add-slave p3"],
    phase: "replacing slaves (1 old left, 0 new in sync)",
  },
  {
    name: "resize: the new slave in sync replaces the old one; another joins for the master",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 200, 1, { joining: true })],
    stats: stats({ p1: 10, p2: 10, p3: 10 }),
    want: ["joined p3 → 2", "retire p2 → 1", "add-slave p4"],
  },
  {
    name:
      "resize: the new slave is in sync but its master does not count it yet: the old one stays",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 200, 1, { joining: true })],
    stats: counting(stats({ p1: 10, p2: 10, p3: 10 }), 1),
    want: ["joined p3 → 2", "add-slave p4"],
  },
  {
    name:
      "resize: the master counts the new slave but streams only to the old one: the old one stays",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 200, 1, { joining: true })],
    stats: streaming(counting(stats({ p1: 10, p2: 10, p3: 10 }), 2), 1),
    want: ["joined p3 → 2", "add-slave p4"],
  },
  {
    name: "resize: once the master streams to the new slave too, the old one goes",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 200, 1, { joining: true })],
    stats: streaming(counting(stats({ p1: 10, p2: 10, p3: 10 }), 2), 2),
    want: ["joined p3 → 2", "retire p2 → 1", "add-slave p4"],
  },
  {
    name: "resize: once the master counts the new slave, the old one goes",
    inst: inst(1, 100, { capacityMB: 200 }, { slaves: 2 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1),
      proc("p3", 200, 1),
      proc("p4", 200, 1, {
        joining: true,
        state: "STAGING",
      }),
    ],
    stats: counting(stats({ p1: 10, p2: 10, p3: 10 }), 2),
    want: ["retire p2 → 1"],
  },
  {
    name: "scale down 1+3 → 1+1 while the master counts only 2 of 3: one goes, not two",
    inst: inst(3, 100, { slaves: 1 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 100, 1), proc("p4", 100, 1)],
    stats: counting(stats({ p1: 50, p2: 40, p3: 20, p4: 30 }), 2),
    want: [],
  },
  {
    name: "resize: only fresh slaves in sync, one more than wanted: the master is switched",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1, { retiring: true, state: "LOST" }),
      proc("p3", 200, 1),
      proc("p4", 200, 1, { joining: true }),
    ],
    stats: stats({ p1: 10, p3: 10, p4: 10 }),
    want: ["remove p2", "joined p4 → 2", "retire p1 (master) → 1"],
    phase: "switching master",
  },
  {
    name: "resize: no switch while a retired slave is still being killed",
    inst: inst(1, 100, { capacityMB: 200 }, { slaves: 2 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1, { retiring: true, state: "KILLING" }),
      proc("p3", 200, 1),
      proc("p4", 200, 1),
    ],
    stats: stats({ p1: 10, p3: 10, p4: 10 }),
    want: [],
    phase: "removing slaves",
  },
  {
    name: "resize: while the old master is retired (failover running) nothing else moves",
    inst: inst(1, 100, { capacityMB: 200 }),
    procs: [
      proc("p1", 100, 1, { retiring: true, state: "KILLING" }),
      proc("p3", 200, 1),
      proc("p4", 200, 1),
    ],
    stats: stats({ p3: 10, p4: 10 }),
    want: [],
    phase: "switching master",
  },
  {
    name: "resize: after the promotion the old master goes and the change is done",
    inst: inst(1, 100, { capacityMB: 200 }, { masterId: "p3", epoch: 1 }),
    procs: [
      proc("p1", 100, 1, { retiring: true, state: "LOST" }),
      proc("p3", 200, 1, { role: "master", replicaOf: undefined }),
      proc("p4", 200, 1, { replicaOf: "127.0.0.1:7003" }),
    ],
    stats: stats({ p3: 10, p4: 10 }, "p3"),
    want: ["remove p1", "done"],
  },
  {
    name: "resize 1+3: a stale slave goes only while 3 synced slaves remain",
    inst: inst(3, 100, { capacityMB: 200 }),
    procs: [
      proc("p1", 100, 1),
      proc("p2", 100, 1),
      proc("p3", 100, 1),
      proc("p4", 100, 1),
      proc("p5", 200, 1, { joining: true }),
    ],
    stats: stats({ p1: 10, p2: 10, p3: 9, p4: 10, p5: 10 }),
    want: ["joined p5 → 4", "retire p3 → 3", "add-slave p6"],
  },
  {
    name: "resize of a single server: a new process joins, then takes over",
    inst: inst(0, 100, { capacityMB: 300 }),
    procs: [proc("p1", 100, 0)],
    stats: stats({ p1: 10 }),
    want: ["add-slave p2"],
  },
  {
    name: "resize of a single server: the synced new process takes over",
    inst: inst(0, 100, { capacityMB: 300 }),
    procs: [proc("p1", 100, 0), proc("p2", 300, 0, { joining: true })],
    stats: stats({ p1: 10, p2: 10 }),
    want: ["joined p2 → 1", "retire p1 (master) → 0"],
  },
  {
    name: "S → MS (0 → 2 slaves): three MS slaves at once (one for the master's place)",
    inst: inst(0, 100, { slaves: 2 }),
    procs: [proc("p1", 100, 0)],
    stats: stats({ p1: 10 }),
    want: ["add-slave p2", "add-slave p3", "add-slave p4"],
  },
  {
    name: "MS → S (2 → 0 slaves): one old slave stays while the master needs a replica",
    inst: inst(2, 100, { slaves: 0 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1), proc("p3", 100, 1)],
    stats: stats({ p1: 10, p2: 8, p3: 10 }),
    want: ["retire p2 → 1", "add-slave p4"],
  },
  {
    name: "MS → S: the new S-kind process in sync, the last old slave goes",
    inst: inst(1, 100, { slaves: 0 }),
    procs: [proc("p1", 100, 1), proc("p3", 100, 1), proc("p4", 100, 0, { joining: true })],
    stats: stats({ p1: 10, p3: 10, p4: 10 }),
    want: ["joined p4 → 2", "retire p3 → 1"],
  },
  {
    name: "Distribution 2 → 1: the slave sharing the master's agent is replaced",
    inst: inst(2, 100, { distribution: 1 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1, { agentId: "agent1" }), proc("p3", 100, 1)],
    stats: stats({ p1: 10, p2: 10, p3: 10 }),
    want: ["add-slave p4"],
  },
  {
    name: "no step while the master is not known to be the master (stats missing)",
    inst: inst(1, 100, { slaves: 2 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1)],
    stats: new Map(),
    want: [],
    phase: "waiting for the master",
  },
  {
    name: "ids of removed processes are never reused",
    inst: inst(1, 100, { slaves: 2 }, { lastProcId: 6 }),
    procs: [proc("p1", 100, 1), proc("p2", 100, 1)],
    stats: stats({ p1: 10, p2: 10 }),
    want: ["add-slave p7"],
  },
];

for (const c of cases) {
  Deno.test(`planUpdate: ${c.name}`, () => {
    const actions = planUpdate(c.inst, c.procs, c.stats);
    assertEquals(kinds(actions), c.want);
    if (c.phase !== undefined) {
      const phase = actions.find((a) => a.type === "update-phase");
      assertEquals(phase?.type === "update-phase" ? phase.phase : undefined, c.phase);
    }
  });
}

Deno.test("plan: a retired slave that ended is never relaunched, and the instance stays RUNNING", () => {
  const i = inst(1, 100, { slaves: 1 });
  const procs = [
    proc("p1", 100, 1),
    proc("p2", 100, 1),
    proc("p3", 100, 1, { retiring: true, state: "LOST", retryAt: 0 }),
  ];
  const out = plan({
    instances: [i],
    processes: { a: procs },
    stats: stats({ p1: 10, p2: 10 }),
    inflight: new Set(),
    now: 1_000,
  });
  assertEquals(out.actions.filter((a) => a.type === "relaunch"), []);
  assertEquals(out.actions.filter((a) => a.type === "status"), []);
  assertEquals(out.launchable, []);
  assertEquals(out.actions.map((a) => a.type), ["remove", "update-done"]);
});

Deno.test("plan: a joining slave does not make the instance DEGRADED while it starts", () => {
  const i = inst(1, 100, { slaves: 2 });
  const procs = [proc("p1", 100, 1), proc("p2", 100, 1), {
    ...proc("p3", 100, 1, { joining: true, state: "PENDING" }),
    taskId: "",
  }];
  const out = plan({
    instances: [i],
    processes: { a: procs },
    stats: stats({ p1: 10, p2: 10 }),
    inflight: new Set(),
    now: 1_000,
  });
  assertEquals(out.actions.filter((a) => a.type === "status"), []);
  assertEquals(out.launchable.map((p) => `${p.procId} ${p.role} ${p.capacityMB}`), [
    "p3 slave 100",
  ]);
});

Deno.test("plan: new processes of a resize are placed with the target capacity", () => {
  const i = inst(1, 100, { capacityMB: 250 });
  const procs = [proc("p1", 100, 1), proc("p2", 100, 1), {
    ...proc("p3", 250, 1, { joining: true, state: "PENDING" }),
    taskId: "",
  }];
  const out = plan({
    instances: [i],
    processes: { a: procs },
    stats: stats({ p1: 10, p2: 10 }),
    inflight: new Set(),
    now: 1_000,
  });
  assertEquals(out.launchable.map((p) => p.capacityMB), [250]);
});

Deno.test("plan: the retired master of a single server is failed over to the new process", () => {
  const i = inst(0, 100, { capacityMB: 300 }, { slaves: 0 });
  const procs = [
    proc("p1", 100, 0, { retiring: true, state: "LOST", lastState: "TASK_KILLED" }),
    proc("p2", 300, 0),
  ];
  const out = plan({
    instances: [i],
    processes: { a: procs },
    stats: stats({ p2: 10 }),
    inflight: new Set(),
    now: 1_000,
  });
  const promote = out.actions.find((a) => a.type === "promote");
  assertEquals(promote?.type === "promote" ? promote.procId : undefined, "p2");
  assertEquals(out.actions.filter((a) => a.type === "relaunch" || a.type === "fence"), []);
});
