/**
 * Table-driven tests of the scheduler's pure decisions: match, plan, choosePromotion.
 */
import { compareProcIds } from "../lib/scheduler/promotion.ts";
import { assert, assertEquals } from "./_assert.ts";
import {
  DEFAULT_PORT_QUARANTINE_MS,
  markPortsInUse,
  match,
  notePortsInUse,
  type PendingProcess,
} from "../lib/scheduler/match.ts";
import { type Action, type ObservedStats, plan } from "../lib/scheduler/plan.ts";
import { choosePromotion } from "../lib/scheduler/promotion.ts";
import { agentOffer } from "./_core.ts";
import type { InstanceRecord, ProcessRecord } from "../lib/model.ts";

const EXEC = "mrr-executor";

const offer = agentOffer;

function pending(
  instance: string,
  n: number,
  { capacityMB = 100, distribution = 1, firstIsMaster = true } = {},
): PendingProcess[] {
  return Array.from({ length: n }, (_, i) => ({
    instance,
    procId: `p${i + 1}`,
    role: i === 0 && firstIsMaster ? "master" : "slave",
    capacityMB,
    distribution,
    instanceSize: n,
  }));
}

function perAgent(result: ReturnType<typeof match>, instance: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of result.launches) {
    for (const t of l.tasks) {
      if (t.instance === instance) counts[l.agentId] = (counts[l.agentId] ?? 0) + 1;
    }
  }
  return counts;
}

Deno.test("match places one process per agent with Distribution 1", () => {
  const r = match(pending("a", 3), [offer("A1"), offer("A2"), offer("A3")], {}, {
    executorId: EXEC,
  });
  assertEquals(perAgent(r, "a"), { A1: 1, A2: 1, A3: 1 });
  assertEquals(r.declines, []);
  assertEquals(r.unplaced, {});
});

Deno.test("match enforces Distribution and explains what is missing", () => {
  const cases: {
    name: string;
    n: number;
    distribution: number;
    agents: number;
    placed: number;
    maxPerAgent: number;
  }[] = [
    {
      name: "1+5 with D2 on 3 agents",
      n: 6,
      distribution: 2,
      agents: 3,
      placed: 6,
      maxPerAgent: 2,
    },
    {
      name: "1+2 with D1 on 2 agents",
      n: 3,
      distribution: 1,
      agents: 2,
      placed: 2,
      maxPerAgent: 1,
    },
    {
      name: "1+5 with D3 on 2 agents",
      n: 6,
      distribution: 3,
      agents: 2,
      placed: 6,
      maxPerAgent: 3,
    },
  ];
  for (const c of cases) {
    const offers = Array.from({ length: c.agents }, (_, i) => offer(`A${i + 1}`));
    const r = match(pending("x", c.n, { distribution: c.distribution }), offers, {}, {
      executorId: EXEC,
    });
    const counts = perAgent(r, "x");
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    assertEquals(total, c.placed, c.name);
    assert(Object.values(counts).every((v) => v <= c.maxPerAgent), c.name);
    if (c.placed < c.n) {
      assert(/Waiting for resources: need 3 agents/.test(r.unplaced["x"] ?? ""), c.name);
      assert(/Distribution 1/.test(r.unplaced["x"] ?? ""), c.name);
    }
  }
});

Deno.test("match counts processes already placed against Distribution", () => {
  const r = match(pending("a", 1), [offer("A1"), offer("A2")], { a: { A1: 1 } }, {
    executorId: EXEC,
  });
  assertEquals(perAgent(r, "a"), { A2: 1 });
  assertEquals(r.declines, [{ value: "o-A1" }]);
});

Deno.test("match takes distinct ports from the offer ranges", () => {
  const procs = [...pending("a", 1), ...pending("b", 1), ...pending("c", 1)];
  const r = match(procs, [offer("A1", { ports: [[7000, 7000], [7005, 7006]] })], {}, {
    executorId: EXEC,
  });
  assertEquals(r.launches[0]!.tasks.map((t) => t.port), [7000, 7005, 7006]);
  const r2 = match(pending("d", 1), [offer("A1", { ports: [] })], {}, { executorId: EXEC });
  assertEquals(r2.launches, []);
  assert(r2.unplaced["d"]);
});

Deno.test("match avoids recently used ports while others are left", () => {
  const r = match(pending("a", 1), [offer("A1", { ports: [[7000, 7001]] })], {}, {
    executorId: EXEC,
    avoidPorts: { A1: [7000] },
  });
  assertEquals(r.launches[0]!.tasks[0]!.port, 7001);
});

Deno.test("match keeps a port another instance used lately from it while offers leave a choice", async (t) => {
  // A1:7000 was used by instance "old"; A2:7100 by "a" itself.
  const quarantine = notePortsInUse(new Map(), [
    { agentId: "A1", port: 7000, instance: "old" },
    { agentId: "A2", port: 7100, instance: "a" },
  ], 0);
  const cases: {
    name: string;
    offers: ReturnType<typeof offer>[];
    instance?: string;
    want: [string, number] | undefined;
  }[] = [
    {
      name: "another port on the same agent",
      offers: [offer("A1", { ports: [[7000, 7001]] })],
      want: ["A1", 7001],
    },
    {
      name: "another agent with a clean port",
      offers: [offer("A1", { ports: [[7000, 7000]] }), offer("A3", { ports: [[7200, 7200]] })],
      want: ["A3", 7200],
    },
    {
      name: "the instance's own old port is fine",
      offers: [offer("A2", { ports: [[7100, 7101]] })],
      want: ["A2", 7100],
    },
    {
      name: "the same port of the instance that used it",
      offers: [offer("A1", { ports: [[7000, 7001]] })],
      instance: "old",
      want: ["A1", 7000],
    },
    {
      name: "no choice left: the quarantined port rather than nothing",
      offers: [offer("A1", { ports: [[7000, 7000]] })],
      want: ["A1", 7000],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const r = match(pending(c.instance ?? "a", 1), c.offers, {}, {
        executorId: EXEC,
        quarantine,
      });
      const placed = r.launches.map((l) => [l.agentId, l.tasks[0]!.port] as [string, number]);
      assertEquals(placed[0], c.want);
    });
  }
  await t.step("a preferred agent (data in place) still wins over a clean port elsewhere", () => {
    const proc = { ...pending("a", 1)[0]!, preferredAgentId: "A1" };
    const r = match([proc], [offer("A1", { ports: [[7000, 7000]] }), offer("A3")], {}, {
      executorId: EXEC,
      quarantine,
    });
    assertEquals(r.launches[0]!.agentId, "A1");
  });
});

Deno.test("match takes clean ports one after another, bus ports too, past ports other instances used", () => {
  // A1's 7000, 7002 and 7004 were used by instance "old" lately.
  const quarantine = notePortsInUse(
    new Map(),
    [7000, 7002, 7004].map((port) => ({ agentId: "A1", port, instance: "old" })),
    0,
  );
  const procs = pending("a", 2, { distribution: 2 }).map((p) => ({ ...p, needsBusPort: true }));
  const r = match(procs, [offer("A1", { ports: [[7000, 7006]] })], {}, {
    executorId: EXEC,
    quarantine,
  });
  const placed = r.launches.flatMap((l) => l.tasks.map((t) => [t.port, t.busPort]));
  assertEquals(placed, [[7001, 7003], [7005, 7006]]);
});

Deno.test("notePortsInUse keeps a port for its last instance until the quarantine ends", () => {
  const ms = DEFAULT_PORT_QUARANTINE_MS;
  assertEquals(ms, 600_000);
  let q = notePortsInUse(new Map(), [{ agentId: "A", port: 1, instance: "x" }], 1000);
  assertEquals(q.get("A:1"), { instance: "x", until: 1000 + ms });
  // Still in use later: the reservation runs from the last sighting.
  q = notePortsInUse(q, [{ agentId: "A", port: 1, instance: "x" }], 5000);
  assertEquals(q.get("A:1")?.until, 5000 + ms);
  // Given up: kept until its time, then dropped.
  q = notePortsInUse(q, [], 5000 + ms - 1);
  assertEquals(q.get("A:1")?.instance, "x");
  q = notePortsInUse(q, [], 5000 + ms);
  assertEquals(q.size, 0);
  // Taken by another instance (after the quarantine, or with no choice): it is now that one's.
  q = notePortsInUse(
    new Map([["A:1", { instance: "x", until: 10 }]]),
    [{ agentId: "A", port: 1, instance: "y" }],
    5,
    100,
  );
  assertEquals(q.get("A:1"), { instance: "y", until: 105 });
});

Deno.test("compareProcIds orders p2 before p10 and other ids as strings, as the regular expression did", () => {
  const reference = (a: string, b: string) => {
    const na = /^p(\d+)$/.exec(a);
    const nb = /^p(\d+)$/.exec(b);
    if (na && nb) return Number(na[1]) - Number(nb[1]);
    return a < b ? -1 : a > b ? 1 : 0;
  };
  const ids = [
    "p1",
    "p2",
    "p10",
    "p010",
    "p0",
    "x1",
    "x10",
    "p",
    "pa",
    "p1a",
    "",
    "P1",
    "p-1",
    "p1.5",
    "p12345678901234567890",
    "p99999999999999999999",
    "p٣",
    "proxy",
    "x2",
  ];
  for (const a of ids) {
    for (const b of ids) {
      assertEquals(Math.sign(compareProcIds(a, b)), Math.sign(reference(a, b)), `${a} vs ${b}`);
    }
  }
  assertEquals(["p10", "x1", "p2", "p1"].sort(compareProcIds), ["p1", "p2", "p10", "x1"]);
});

Deno.test("markPortsInUse records in place what notePortsInUse records, and leaves the purge to it", () => {
  const q = new Map([["A:1", { instance: "x", until: 10 }], ["A:2", {
    instance: "x",
    until: 500,
  }]]);
  markPortsInUse(
    q,
    [{ agentId: "A", port: 1, instance: "y" }, { agentId: "B", port: 3, instance: "y" }],
    50,
    100,
  );
  assertEquals(q.get("A:1"), { instance: "y", until: 150 });
  assertEquals(q.get("B:3"), { instance: "y", until: 150 });
  assertEquals(q.get("A:2"), { instance: "x", until: 500 });
  // An expired entry stays until the next notePortsInUse drops it.
  markPortsInUse(q, [], 600, 100);
  assertEquals(q.size, 3);
  assertEquals([...notePortsInUse(q, [], 600, 100).keys()], []);
});

Deno.test("match charges executor resources only where the executor is not running", () => {
  const cases = [
    // 0.1 task + 0.1 executor = 0.2 cpus; 100+32 + 64 = 196 MB
    { name: "exact fit with executor", cpus: 0.2, mem: 196, executor: false, placed: 1 },
    { name: "short of executor mem", cpus: 0.2, mem: 195, executor: false, placed: 0 },
    { name: "short of executor cpus", cpus: 0.19, mem: 500, executor: false, placed: 0 },
    { name: "executor running: task only", cpus: 0.1, mem: 132, executor: true, placed: 1 },
    { name: "executor running: short", cpus: 0.1, mem: 131, executor: true, placed: 0 },
  ];
  for (const c of cases) {
    const r = match(pending("a", 1), [offer("A1", c)], {}, { executorId: EXEC });
    assertEquals(r.launches.length, c.placed, c.name);
    if (c.placed) assertEquals(r.launches[0]!.withExecutor, !c.executor, c.name);
  }
  // Two tasks on one agent: the executor is charged once.
  const two = [...pending("a", 1), ...pending("b", 1)];
  const r = match(two, [offer("A1", { cpus: 0.3, mem: 328 })], {}, { executorId: EXEC });
  assertEquals(r.launches[0]!.tasks.length, 2);
});

Deno.test("match gives a relaunch its old port on its old agent when the offer holds it", () => {
  const p: PendingProcess = {
    ...pending("a", 1)[0]!,
    preferredAgentId: "A2",
    preferredPort: 31005,
  };
  const cases = [
    {
      name: "port free on the old agent",
      offers: [offer("A1"), offer("A2")],
      agent: "A2",
      port: 31005,
    },
    {
      name: "port taken there: another port on the same agent",
      offers: [offer("A2", { ports: [[31000, 31004]] })],
      agent: "A2",
      port: 31000,
    },
    {
      name: "old agent not offering: any agent, its first port",
      offers: [offer("A1")],
      agent: "A1",
      port: 31000,
    },
  ];
  for (const c of cases) {
    // The old port is also in avoidPorts (recently held): the preference wins over that.
    const r = match([p], c.offers, {}, { executorId: EXEC, avoidPorts: { A2: [31005] } });
    assertEquals(r.launches[0]!.agentId, c.agent, c.name);
    assertEquals(r.launches[0]!.tasks[0]!.port, c.port, c.name);
  }
});

Deno.test("match prefers the agent a process ran on", () => {
  const p: PendingProcess[] = [{ ...pending("a", 1)[0]!, preferredAgentId: "A3" }];
  const r = match(p, [offer("A1"), offer("A2"), offer("A3")], {}, { executorId: EXEC });
  assertEquals(r.launches[0]!.agentId, "A3");
  assertEquals(r.declines.length, 2);
});

Deno.test("choosePromotion picks the highest offset, ties by process id, none without offsets", () => {
  const cases: { name: string; slaves: Parameters<typeof choosePromotion>[0]; want?: string }[] = [
    { name: "none", slaves: [] },
    { name: "no offsets", slaves: [{ procId: "p2", healthy: true }] },
    { name: "unhealthy only", slaves: [{ procId: "p2", healthy: false, replOffset: 9 }] },
    {
      name: "highest wins",
      slaves: [
        { procId: "p2", healthy: true, replOffset: 5 },
        { procId: "p3", healthy: true, replOffset: 7 },
      ],
      want: "p3",
    },
    {
      name: "tie by id, numeric",
      slaves: [
        { procId: "p10", healthy: true, replOffset: 7 },
        { procId: "p3", healthy: true, replOffset: 7 },
      ],
      want: "p3",
    },
    {
      name: "unhealthy with higher offset skipped",
      slaves: [
        { procId: "p2", healthy: false, replOffset: 100 },
        { procId: "p3", healthy: true, replOffset: 1 },
      ],
      want: "p3",
    },
  ];
  for (const c of cases) assertEquals(choosePromotion(c.slaves), c.want, c.name);
});

// ---- plan ----

const NOW = 1_000_000;

function inst(name: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    name,
    type: "MS",
    status: "RUNNING",
    capacityMB: 100,
    masters: 1,
    slaves: 2,
    distribution: 1,
    masterId: "p1",
    rev: 1,
    createdAt: 1,
    updatedAt: 1,
    ...over,
  };
}

function proc(id: string, over: Partial<ProcessRecord> = {}): ProcessRecord {
  const n = Number(id.slice(1));
  return {
    id,
    taskId: `i.${id}.1`,
    role: id === "p1" ? "master" : "slave",
    state: "RUNNING",
    agentId: `A${n}`,
    host: "127.0.0.1",
    port: 7000 + n,
    replicaOf: id === "p1" ? undefined : "127.0.0.1:7001",
    updatedAt: 1,
    ...over,
  };
}

function stats(entries: [string, Partial<ObservedStats>][]): Map<string, ObservedStats> {
  return new Map(
    entries.map(([t, s]) => [t, { role: "slave", inSync: true, replOffset: 0, ...s }]),
  );
}

const healthyStats = stats([["i.p1.1", { role: "master" }], ["i.p2.1", {}], ["i.p3.1", {}]]);

function types(actions: Action[]): string[] {
  return actions.map((a) => `${a.type}:${"procId" in a ? a.procId : a.instance}`);
}

Deno.test("plan: table of situations and the actions they call for", () => {
  const cases: {
    name: string;
    instance: InstanceRecord;
    procs: ProcessRecord[];
    stats?: Map<string, ObservedStats>;
    inflight?: string[];
    want: string[];
    launchable?: string[];
    status?: string;
  }[] = [
    {
      name: "healthy MS: nothing to do",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: healthyStats,
      want: [],
    },
    {
      name: "new MS: the master and its slaves are launchable in the same round",
      instance: inst("i", { status: "CREATING", reason: "x" }),
      procs: [
        proc("p1", { state: "PENDING" }),
        proc("p2", { state: "PENDING" }),
        proc("p3", { state: "PENDING" }),
      ],
      want: ["status:i"],
      launchable: ["p1", "p2", "p3"],
      status: "CREATING",
    },
    {
      name: "master running: slaves launchable",
      instance: inst("i", {
        status: "CREATING",
        reason: "Waiting for 2 of 3 processes to be placed",
      }),
      procs: [proc("p1"), proc("p2", { state: "PENDING" }), proc("p3", { state: "PENDING" })],
      want: [],
      launchable: ["p2", "p3"],
    },
    {
      name: "all up and in sync: RUNNING",
      instance: inst("i", { status: "CREATING", reason: "x" }),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: healthyStats,
      want: ["status:i"],
      status: "RUNNING",
    },
    {
      name: "slaves in sync but the master counts none for min-replicas-to-write: still CREATING",
      instance: inst("i", { status: "CREATING", reason: "x" }),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: stats([["i.p1.1", { role: "master", goodSlaves: 0 }], ["i.p2.1", {}], [
        "i.p3.1",
        {},
      ]]),
      want: ["status:i"],
      status: "CREATING",
    },
    {
      name: "the master counts a slave: RUNNING",
      instance: inst("i", { status: "CREATING", reason: "x" }),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: stats([["i.p1.1", { role: "master", goodSlaves: 1 }], ["i.p2.1", {}], [
        "i.p3.1",
        {},
      ]]),
      want: ["status:i"],
      status: "RUNNING",
    },
    {
      name: "RUNNING instance without stats yet (after a restart) stays RUNNING",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      want: [],
    },
    {
      name: "RUNNING instance with a slave out of sync is DEGRADED",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: stats([["i.p2.1", { inSync: false }]]),
      want: ["status:i"],
      status: "DEGRADED",
    },
    {
      name: "slave not in sync: still CREATING",
      instance: inst("i", { status: "CREATING" }),
      procs: [proc("p1"), proc("p2"), proc("p3")],
      stats: stats([["i.p1.1", { role: "master" }], ["i.p2.1", {}], ["i.p3.1", {
        inSync: false,
      }]]),
      want: ["status:i"],
      status: "CREATING",
    },
    {
      name: "master lost: promote highest offset, fence when maybe alive",
      instance: inst("i"),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_UNREACHABLE", retryAt: 0 }),
        proc("p2"),
        proc("p3"),
      ],
      stats: stats([["i.p2.1", { replOffset: 5 }], ["i.p3.1", { replOffset: 9 }]]),
      want: ["fence:p1", "promote:p3", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "master failed (known dead): promote without fence",
      instance: inst("i"),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW + 5 }),
        proc("p2"),
      ],
      stats: stats([["i.p2.1", { replOffset: 1 }]]),
      want: ["promote:p2", "status:i"],
    },
    {
      name: "master lost, no slave offset: relaunch the master",
      instance: inst("i"),
      procs: [proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: 0 }), proc("p2")],
      want: ["relaunch:p1", "status:i"],
      status: "DEGRADED",
    },
    {
      name: "lost slave waits for its backoff",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2", { state: "LOST", retryAt: NOW + 1 }), proc("p3")],
      stats: healthyStats,
      want: ["status:i"],
    },
    {
      name: "lost slave after backoff: relaunch",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2", { state: "LOST", retryAt: NOW - 1 }), proc("p3")],
      stats: healthyStats,
      want: ["relaunch:p2", "status:i"],
    },
    {
      name: "promoted process reports master: failover over",
      instance: inst("i", { masterId: "p2", promotingId: "p2", status: "FAILING_OVER" }),
      procs: [proc("p1", { state: "PENDING" }), proc("p2", { replicaOf: undefined })],
      stats: stats([["i.p2.1", { role: "master" }]]),
      want: ["promoted:p2", "status:i"],
      launchable: ["p1"],
    },
    {
      name: "promoted process reports master: the other slaves are re-pointed to it",
      instance: inst("i", { masterId: "p2", promotingId: "p2", status: "FAILING_OVER" }),
      procs: [proc("p1", { state: "PENDING" }), proc("p2", { replicaOf: undefined }), proc("p3")],
      stats: stats([["i.p2.1", { role: "master" }], ["i.p3.1", { role: "slave" }]]),
      want: ["promoted:p2", "replicaof:p3", "status:i"],
      launchable: ["p1"],
    },
    {
      name:
        "promoted process lost before it reports master, no slave left: the old master is master again",
      instance: inst("i", {
        masterId: "p2",
        promotingId: "p2",
        promotedFrom: "p1",
        status: "FAILING_OVER",
      }),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
        proc("p2", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
      ],
      want: ["unpromote:p1", "relaunch:p1", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "promoted process lost, the old master's agent out of touch: no unpromote",
      instance: inst("i", {
        masterId: "p2",
        promotingId: "p2",
        promotedFrom: "p1",
        status: "FAILING_OVER",
      }),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_UNREACHABLE", retryAt: NOW - 1 }),
        proc("p2", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
      ],
      want: ["relaunch:p1", "relaunch:p2", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "promoted process lost, another slave healthy: that slave is promoted",
      instance: inst("i", {
        masterId: "p2",
        promotingId: "p2",
        promotedFrom: "p1",
        status: "FAILING_OVER",
      }),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
        proc("p2", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
        proc("p3"),
      ],
      stats: stats([["i.p3.1", { replOffset: 7 }]]),
      want: ["promote:p3", "relaunch:p1", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "promotion confirmed, then the new master lost with no slave: relaunched, no unpromote",
      instance: inst("i", { masterId: "p2", status: "RUNNING" }),
      procs: [
        proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
        proc("p2", { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW - 1 }),
      ],
      want: ["relaunch:p1", "relaunch:p2", "status:i"],
      status: "DEGRADED",
    },
    {
      name: "promotion in flight: the other slaves wait to be re-pointed",
      instance: inst("i", {
        masterId: "p2",
        promotingId: "p2",
        status: "FAILING_OVER",
        reason: "Promoting p2 to master",
      }),
      procs: [proc("p2", { replicaOf: undefined }), proc("p3")],
      inflight: ["i.p2.1"],
      want: [],
    },
    {
      name: "promotion in flight: wait",
      instance: inst("i", {
        masterId: "p2",
        promotingId: "p2",
        status: "FAILING_OVER",
        reason: "Promoting p2 to master",
      }),
      procs: [proc("p2", { replicaOf: undefined })],
      inflight: ["i.p2.1"],
      want: [],
    },
    {
      name: "slave pointing elsewhere is re-pointed",
      instance: inst("i"),
      procs: [proc("p1"), proc("p2", { replicaOf: "127.0.0.1:9" })],
      stats: healthyStats,
      want: ["replicaof:p2", "status:i"],
    },
    {
      name: "deleting: kill live tasks, drop the rest",
      instance: inst("i", { status: "DELETING" }),
      procs: [proc("p1"), proc("p2", { state: "PENDING" }), proc("p3", { state: "LOST" })],
      want: ["kill:p1"],
    },
    {
      name: "deleting: kill sent recently is not resent",
      instance: inst("i", { status: "DELETING" }),
      procs: [proc("p1", { state: "KILLING", killSentAt: NOW - 1 })],
      want: [],
    },
    {
      name: "deleting: stale kill is resent",
      instance: inst("i", { status: "DELETING" }),
      procs: [proc("p1", { state: "KILLING", killSentAt: NOW - 60_000 })],
      want: ["kill:p1"],
    },
    {
      name: "deleting: nothing live, forget",
      instance: inst("i", { status: "DELETING" }),
      procs: [proc("p1", { state: "DONE" }), proc("p2", { state: "PENDING" })],
      want: ["forget:i"],
    },
  ];
  for (const c of cases) {
    const result = plan({
      instances: [c.instance],
      processes: { [c.instance.name]: c.procs },
      stats: c.stats ?? new Map(),
      inflight: new Set(c.inflight ?? []),
      now: NOW,
    });
    assertEquals(types(result.actions), c.want, c.name);
    assertEquals(result.launchable.map((p) => p.procId), c.launchable ?? [], c.name);
    if (c.status) {
      const st = result.actions.find((a) => a.type === "status");
      assertEquals(st && "status" in st ? st.status : c.instance.status, c.status, c.name);
    }
  }
});

Deno.test("plan: a failover asks the slaves for their offsets first, then promotes", () => {
  const lostMaster = proc("p1", { state: "LOST", lastState: "TASK_FAILED", retryAt: 0 });
  const cases: {
    name: string;
    procs: ProcessRecord[];
    query?: { done: boolean; offsets: Record<string, number> };
    stats?: Map<string, ObservedStats>;
    unconfirmed?: string[];
    want: string[];
    status: string;
    reason?: RegExp;
    launchable?: string[];
  }[] = [
    {
      name: "no query yet: ask the healthy slaves, relaunch nothing",
      procs: [lostMaster, proc("p2"), proc("p3"), proc("p4", { state: "STAGING" })],
      want: ["query-offsets:i", "status:i"],
      status: "FAILING_OVER",
      reason: /asking 2 slaves/,
    },
    {
      name: "answers pending: wait",
      procs: [lostMaster, proc("p2"), proc("p3")],
      query: { done: false, offsets: { p2: 5 } },
      want: ["status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "fresh offsets beat the last stats",
      procs: [lostMaster, proc("p2"), proc("p3")],
      query: { done: true, offsets: { p2: 50, p3: 40 } },
      stats: stats([["i.p2.1", { replOffset: 1 }], ["i.p3.1", { replOffset: 9 }]]),
      want: ["promote:p2", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "a slave that did not answer falls back to its last stats",
      procs: [lostMaster, proc("p2"), proc("p3")],
      query: { done: true, offsets: { p2: 50 } },
      stats: stats([["i.p3.1", { replOffset: 90 }]]),
      want: ["promote:p3", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name: "no slave with a known offset: the smallest healthy one, never an empty master",
      procs: [lostMaster, proc("p2"), proc("p3")],
      query: { done: true, offsets: {} },
      want: ["promote:p2", "status:i"],
      status: "FAILING_OVER",
    },
    {
      name:
        "slaves not yet confirmed by Mesos after a subscription: wait, neither ask nor relaunch",
      procs: [lostMaster, proc("p2"), proc("p3")],
      unconfirmed: ["i.p2.1", "i.p3.1"],
      want: ["status:i"],
      status: "FAILING_OVER",
      reason: /waiting for Mesos to confirm the state of p2, p3/,
    },
    {
      name: "only answered slaves count: one still unconfirmed keeps the wait",
      procs: [lostMaster, proc("p2", { state: "LOST", retryAt: NOW + 1_000 }), proc("p3")],
      unconfirmed: ["i.p3.1"],
      want: ["status:i"],
      status: "FAILING_OVER",
      reason: /confirm the state of p3$/,
    },
    {
      name: "every process lost at once: the master is relaunched, pinned to its agent",
      procs: [
        proc("p1", {
          state: "PENDING",
          lastState: "TASK_FAILED",
          pinAgentUntil: NOW + 5_000,
        }),
        proc("p2", { state: "LOST", retryAt: NOW + 1_000, reason: "gone" }),
        proc("p3", { state: "LOST", retryAt: NOW + 1_000, reason: "gone" }),
      ],
      want: ["status:i"],
      status: "DEGRADED",
      reason: /no slave to promote/,
      launchable: ["p1"],
    },
  ];
  for (const c of cases) {
    const result = plan({
      instances: [inst("i")],
      processes: { i: c.procs },
      stats: c.stats ?? new Map(),
      inflight: new Set(),
      now: NOW,
      offsetQueries: new Map(c.query ? [["i", c.query]] : []),
      unconfirmed: new Set(c.unconfirmed ?? []),
    });
    assertEquals(types(result.actions), c.want, c.name);
    assertEquals(result.launchable.map((p) => p.procId), c.launchable ?? [], c.name);
    const st = result.actions.find((a) => a.type === "status");
    assertEquals(st && "status" in st ? st.status : undefined, c.status, c.name);
    if (c.reason) {
      const reason = st && "reason" in st ? st.reason ?? "" : "";
      assert(c.reason.test(reason), `${c.name}: reason ${reason}`);
    }
    if (c.launchable) {
      assertEquals(result.launchable[0]?.requiredAgentId, "A1", `${c.name}: pinned`);
    }
  }
});

Deno.test("match: a process pinned to its agent waits for that agent's offer", () => {
  const p: PendingProcess = { ...pending("s", 1)[0]!, requiredAgentId: "A2" };
  const none = match([p], [offer("A1"), offer("A3")], {}, { executorId: EXEC });
  assertEquals(none.launches, []);
  assert(/restart p1 in place/.test(none.unplaced.s ?? ""), none.unplaced.s);
  const there = match([p], [offer("A1"), offer("A2")], {}, { executorId: EXEC });
  assertEquals(there.launches.map((l) => l.agentId), ["A2"]);
});

Deno.test("match places a master first and gives its slaves its new address", () => {
  const [master, ...slaves] = pending("a", 3);
  // Slaves listed first: they still wait for the master placed in this round.
  const waiting = slaves.map((s) => ({ ...s, masterProcId: "p1" }));
  const offers = [
    offer("A1", { ports: [[31000, 31000]] }),
    offer("A2", { ports: [[32000, 32009]] }),
  ];
  const r = match([...waiting, master!], offers, {}, { executorId: EXEC });
  const tasks = r.launches.flatMap((l) => l.tasks.map((t) => ({ ...t, agent: l.agentId })));
  const m = tasks.find((t) => t.procId === "p1")!;
  assertEquals([m.agent, m.port, m.master], ["A1", 31000, undefined]);
  // A1 has no port left; Distribution 1 leaves room for one slave on A2.
  const placed = tasks.filter((t) => t.role === "slave");
  assertEquals(placed.length, 1);
  assertEquals(placed[0]!.master, { host: "127.0.0.1", port: 31000 });
  assertEquals(placed[0]!.masterPlacedNow, true);

  const none = match(waiting, [offer("A1"), offer("A2")], {}, { executorId: EXEC });
  assertEquals(none.launches, []);
  assertEquals(none.unplaced, { a: "Waiting for master p1 to be placed" });

  const known = slaves.map((s) => ({ ...s, master: { host: "h", port: 7 } }));
  const r2 = match(known, [offer("A1"), offer("A2")], {}, { executorId: EXEC });
  const got = r2.launches.flatMap((l) => l.tasks);
  assertEquals(got.map((t) => [t.master, t.masterPlacedNow]), [
    [{ host: "h", port: 7 }, undefined],
    [{ host: "h", port: 7 }, undefined],
  ]);
});

Deno.test("plan: slaves are launched only towards a master that is placed in the current epoch", () => {
  const cases: {
    name: string;
    instance?: Partial<InstanceRecord>;
    master: Partial<ProcessRecord>;
    want: "address" | "with-master" | "none";
  }[] = [
    { name: "master running", master: {}, want: "address" },
    {
      name: "master launched in this epoch, not yet running",
      instance: { epoch: 2 },
      master: { state: "STAGING", launchEpoch: 2 },
      want: "address",
    },
    {
      name: "master launched in an older epoch",
      instance: { epoch: 3 },
      master: { state: "STAGING", launchEpoch: 2 },
      want: "none",
    },
    { name: "master pending: same round", master: { state: "PENDING" }, want: "with-master" },
    {
      name: "master lost with no slave to promote",
      master: { state: "LOST", lastState: "TASK_FAILED", retryAt: NOW + 1000 },
      want: "none",
    },
  ];
  for (const c of cases) {
    const result = plan({
      instances: [inst("i", { status: "CREATING", ...c.instance })],
      processes: { i: [proc("p1", c.master), proc("p2", { state: "PENDING" })] },
      stats: new Map(),
      inflight: new Set(),
      now: NOW,
    });
    const slave = result.launchable.find((p) => p.procId === "p2");
    const got = !slave
      ? "none"
      : slave.master
      ? "address"
      : slave.masterProcId === "p1"
      ? "with-master"
      : "?";
    assertEquals(got, c.want, c.name);
    if (c.want === "address") assertEquals(slave?.master, { host: "127.0.0.1", port: 7001 });
  }
});

Deno.test("plan: a STAGING slave launched towards an older master is re-pointed", () => {
  const result = plan({
    instances: [inst("i", { masterId: "p2", status: "DEGRADED", epoch: 1 })],
    processes: {
      i: [
        proc("p1", { state: "STAGING", replicaOf: "127.0.0.1:9" }),
        proc("p2", { replicaOf: undefined }),
      ],
    },
    stats: stats([["i.p2.1", { role: "master" }]]),
    inflight: new Set(),
    now: NOW,
  });
  const re = result.actions.find((a) => a.type === "replicaof");
  assertEquals(re, {
    type: "replicaof",
    instance: "i",
    procId: "p1",
    host: "127.0.0.1",
    port: 7002,
  });
  // Pointing at the current master already: nothing to do while it syncs.
  const ok = plan({
    instances: [inst("i", { status: "CREATING" })],
    processes: { i: [proc("p1"), proc("p2", { state: "STAGING" })] },
    stats: new Map(),
    inflight: new Set(),
    now: NOW,
  });
  assertEquals(ok.actions.filter((a) => a.type === "replicaof"), []);
});

Deno.test("match spreads many small instances over the offers", () => {
  const singles = Array.from({ length: 7 }, (_, i) => pending(`s${i}`, 1)[0]!);
  const r = match(singles, [offer("A1"), offer("A2"), offer("A3")], {}, { executorId: EXEC });
  assertEquals(r.launches.map((l) => [l.agentId, l.tasks.length]), [["A1", 3], ["A2", 2], [
    "A3",
    2,
  ]]);
});
