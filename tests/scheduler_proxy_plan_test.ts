/**
 * The proxy planner (`lib/scheduler/proxy_plan.ts`), table-driven: how many
 * proxies, relaunches, kills on delete and on a smaller count, which master
 * a running proxy is told, and the default count per instance type.
 */
import { assertEquals } from "./_assert.ts";
import type { InstanceRecord, ProcessRecord, ProxyRecord } from "../lib/model.ts";
import {
  defaultProxies,
  planProxies,
  proxyIndex,
  proxyMaster,
  proxyMasterVersion,
  type ProxyPlanInput,
  type ToldMaster,
} from "../lib/scheduler/proxy_plan.ts";
import type { ObservedStats } from "../lib/scheduler/plan.ts";
import { match, type PendingProcess } from "../lib/scheduler/match.ts";
import type { Offer } from "../lib/mesos/types.ts";

const NOW = 1_000_000;

function inst(extra: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    name: "a",
    type: "MS",
    status: "RUNNING",
    capacityMB: 10,
    masters: 1,
    slaves: 1,
    distribution: 1,
    masterId: "p1",
    proxies: 2,
    rev: 1,
    createdAt: 1,
    updatedAt: 1,
    ...extra,
  };
}

function proc(id: string, extra: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    id,
    taskId: `a.${id}.1`,
    role: id === "p1" ? "master" : "slave",
    state: "RUNNING",
    agentId: `A${id.slice(1)}`,
    host: "10.0.0.1",
    port: 7000 + Number(id.slice(1)),
    updatedAt: 1,
    ...extra,
  };
}

function proxy(id: string, extra: Partial<ProxyRecord> = {}): ProxyRecord {
  return {
    id,
    taskId: `a.${id}.1`,
    state: "RUNNING",
    agentId: `A${id.slice(1)}`,
    host: "10.0.0.1",
    port: 8000 + Number(id.slice(1)),
    updatedAt: 1,
    ...extra,
  };
}

const MASTER_V0 = proxyMasterVersion({ host: "10.0.0.1", port: 7001, epoch: 0 });
const toldAll = (version = MASTER_V0, confirmed = true): Map<string, ToldMaster> =>
  new Map(["a.x1.1", "a.x2.1"].map((t) => [t, { version, sentAt: NOW - 100, confirmed }]));

function input(over: {
  inst?: Partial<InstanceRecord>;
  procs?: ProcessRecord[];
  proxies?: ProxyRecord[];
  stats?: Map<string, ObservedStats>;
  told?: Map<string, ToldMaster>;
}): ProxyPlanInput {
  return {
    instances: [inst(over.inst)],
    processes: { a: over.procs ?? [proc("p1"), proc("p2")] },
    proxies: { a: over.proxies ?? [proxy("x1"), proxy("x2")] },
    stats: over.stats ?? new Map(),
    told: over.told ?? toldAll(),
    now: NOW,
  };
}

/** Actions as short strings: `type proxyId` (+ the master for tell-proxy). */
function summary(i: ProxyPlanInput): { actions: string[]; launchable: string[]; hold: string[] } {
  const plan = planProxies(i);
  return {
    actions: plan.actions.map((a) =>
      a.type === "tell-proxy"
        ? `${a.type} ${a.proxyId} ${a.master.host}:${a.master.port}@${a.master.epoch}`
        : `${a.type} ${a.proxyId}`
    ),
    launchable: plan.launchable.map((p) =>
      `${p.procId}${p.preferredAgentId ? ` prefer ${p.preferredAgentId}:${p.preferredPort}` : ""}`
    ),
    hold: [...plan.holdForget],
  };
}

const TABLE: {
  name: string;
  input: ProxyPlanInput;
  want: ReturnType<typeof summary>;
}[] = [
  {
    name: "steady: two running proxies told the current master: nothing to do",
    input: input({}),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "a new instance: its proxies are added",
    input: input({ inst: { status: "CREATING" }, proxies: [] }),
    want: { actions: ["add-proxy x1", "add-proxy x2"], launchable: [], hold: [] },
  },
  {
    name: "Redis Cluster instances get none, whatever the record says",
    input: input({ inst: { type: "RC", masters: 3 }, proxies: [proxy("x1")] }),
    want: { actions: ["kill-proxy x1"], launchable: [], hold: [] },
  },
  {
    name: "instances made before proxies (no count) get none",
    input: input({ inst: { proxies: undefined }, proxies: [] }),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "PENDING proxies are launchable, a relaunch prefers its agent and port",
    input: input({
      proxies: [
        proxy("x1", { state: "PENDING", taskId: "", agentId: undefined }),
        proxy("x2", {
          state: "PENDING",
        }),
      ],
    }),
    want: { actions: [], launchable: ["x1", "x2 prefer A2:8002"], hold: [] },
  },
  {
    name: "a proxy lost in a frozen executor does not prefer that agent again",
    input: input({
      proxies: [
        proxy("x1", { state: "PENDING", avoidAgentId: "A1", agentId: "A1" }),
        proxy("x2", { state: "PENDING", avoidAgentId: "A1" }),
      ],
    }),
    want: { actions: [], launchable: ["x1", "x2 prefer A2:8002"], hold: [] },
  },
  {
    name: "a LOST proxy is relaunched once its backoff passed, not before",
    input: input({
      proxies: [
        proxy("x1", { state: "LOST", retryAt: NOW }),
        proxy("x2", { state: "LOST", retryAt: NOW + 1 }),
      ],
    }),
    want: { actions: ["relaunch-proxy x1"], launchable: [], hold: [] },
  },
  {
    name: "a new master (promotion) is told to every running proxy",
    input: input({
      inst: { masterId: "p2", epoch: 1 },
      stats: new Map([["a.p2.1", { role: "master", inSync: true, replOffset: 5 }]]),
    }),
    want: {
      actions: ["tell-proxy x1 10.0.0.1:7002@1", "tell-proxy x2 10.0.0.1:7002@1"],
      launchable: [],
      hold: [],
    },
  },
  {
    name: "a promotion not answered yet tells nothing (the proxy keeps its master and ROLE checks)",
    input: input({
      inst: { masterId: "p2", promotingId: "p2", epoch: 1, status: "FAILING_OVER" },
      stats: new Map([["a.p2.1", { role: "slave", inSync: true, replOffset: 5 }]]),
    }),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "a lost master tells nothing",
    input: input({ procs: [proc("p1", { state: "LOST" }), proc("p2")] }),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "a proxy never told (a restarted scheduler) is told; one unconfirmed for 5 s again",
    input: {
      ...input({}),
      told: new Map([["a.x2.1", { version: MASTER_V0, sentAt: NOW - 5_000, confirmed: false }]]),
    },
    want: {
      actions: ["tell-proxy x1 10.0.0.1:7001@0", "tell-proxy x2 10.0.0.1:7001@0"],
      launchable: [],
      hold: [],
    },
  },
  {
    name: "an unconfirmed tell younger than 5 s is not repeated",
    input: input({ told: toldAll(MASTER_V0, false) }),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "a STAGING proxy is not told (its launch spec carries the master)",
    input: input({ proxies: [proxy("x1", { state: "STAGING" }), proxy("x2")], told: new Map() }),
    want: { actions: ["tell-proxy x2 10.0.0.1:7001@0"], launchable: [], hold: [] },
  },
  {
    name: "deleting: live proxies are killed and the forget is held",
    input: input({
      inst: { status: "DELETING" },
      proxies: [proxy("x1"), proxy("x2", { state: "LOST" })],
    }),
    want: { actions: ["kill-proxy x1"], launchable: [], hold: ["a"] },
  },
  {
    name: "deleting: a kill is resent only after 10 s",
    input: input({
      inst: { status: "DELETING" },
      proxies: [
        proxy("x1", { state: "KILLING", killSentAt: NOW - 9_999 }),
        proxy("x2", { state: "KILLING", killSentAt: NOW - 10_000 }),
      ],
    }),
    want: { actions: ["kill-proxy x2"], launchable: [], hold: ["a"] },
  },
  {
    name: "deleting with every proxy gone: nothing held",
    input: input({
      inst: { status: "DELETING" },
      proxies: [proxy("x1", { state: "DONE" }), proxy("x2", { state: "PENDING" })],
    }),
    want: { actions: [], launchable: [], hold: [] },
  },
  {
    name: "a smaller count kills the surplus, then drops its record once gone",
    input: input({
      inst: { proxies: 1 },
      proxies: [proxy("x1"), proxy("x2"), proxy("x3", { state: "DONE" })],
    }),
    want: { actions: ["kill-proxy x2", "drop-proxy x3"], launchable: [], hold: [] },
  },
  {
    name: "0 proxies: every one goes",
    input: input({ inst: { proxies: 0 }, proxies: [proxy("x1", { state: "PENDING" })] }),
    want: { actions: ["drop-proxy x1"], launchable: [], hold: [] },
  },
  {
    name: "a larger count adds the missing ids; a surplus one killed and wanted again relaunches",
    input: input({ inst: { proxies: 3 }, proxies: [proxy("x1"), proxy("x2", { state: "DONE" })] }),
    want: { actions: ["add-proxy x3", "relaunch-proxy x2"], launchable: [], hold: [] },
  },
];

for (const row of TABLE) {
  Deno.test(`proxy plan: ${row.name}`, () => {
    assertEquals(summary(row.input), row.want);
  });
}

Deno.test("proxy plan: launchable proxies are one per agent, with the proxy resources", () => {
  const plan = planProxies(input({ proxies: [proxy("x1", { state: "PENDING" })] }));
  assertEquals(plan.launchable.length, 1);
  const p = plan.launchable[0]!;
  assertEquals([p.role, p.countAs, p.distribution, p.cpus, p.memMB], [
    "proxy",
    "a/proxies",
    1,
    0.05,
    16,
  ]);
});

Deno.test("proxy plan: defaults per type, ids and the master rule", () => {
  assertEquals([defaultProxies("S"), defaultProxies("MS"), defaultProxies("RC")], [1, 2, 0]);
  assertEquals(["x1", "x12", "x0", "p1", "x"].map(proxyIndex), [1, 12, 0, 0, 0]);
  assertEquals(proxyMaster(inst(), [proc("p1"), proc("p2")], new Map()), {
    host: "10.0.0.1",
    port: 7001,
    epoch: 0,
  });
  assertEquals(proxyMaster(inst(), [proc("p1", { state: "STAGING" })], new Map()), null);
  assertEquals(proxyMasterVersion(null), "none");
});

Deno.test("match: proxies go after redis processes, one per agent, with their own resources", () => {
  const offer = (agent: string, mem: number): Offer => ({
    id: { value: `o-${agent}` },
    framework_id: { value: "fw" },
    agent_id: { value: agent },
    hostname: `h-${agent}`,
    executor_ids: [{ value: "mrr-executor" }],
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: 1 } },
      { name: "mem", type: "SCALAR", scalar: { value: mem } },
      { name: "ports", type: "RANGES", ranges: { range: [{ begin: 9000, end: 9009 }] } },
    ],
  });
  const proxies = planProxies(
    input({
      proxies: [
        proxy("x1", { state: "PENDING" }),
        proxy("x2", { state: "PENDING" }),
        proxy("x3", {
          state: "PENDING",
        }),
      ],
      inst: { proxies: 3 },
    }),
  ).launchable.map((p) => ({ ...p, preferredAgentId: undefined, preferredPort: undefined }));
  const redis: PendingProcess = {
    instance: "a",
    procId: "p1",
    role: "master",
    capacityMB: 100,
    distribution: 1,
    instanceSize: 1,
  };
  // A1 holds the redis process (132 MB) and nothing more; A2 one proxy; x3 waits.
  const result = match([...proxies, redis], [offer("A1", 140), offer("A2", 1000)], {}, {
    executorId: "mrr-executor",
  });
  const placed = result.launches.flatMap((l) =>
    l.tasks.map((t) => `${l.agentId} ${t.procId} ${t.cpus} ${t.memMB}`)
  );
  assertEquals(placed.sort(), ["A1 p1 0.1 132", "A2 x1 0.05 16"]);
  assertEquals(
    result.unplaced.a,
    "Waiting for resources for proxy x2: need an agent without another proxy of the instance, with 16 MB, 0.05 cpus and a port free",
  );
});
