/**
 * Spreading over the known agents (`lib/scheduler/spread.ts` and the
 * `spread` option of `match`), table-driven: an offer from a loaded agent
 * takes its fair share and leaves the rest to less loaded agents that will
 * offer soon, and never holds work back from agents that cannot take it.
 */
import { assert, assertEquals } from "./_assert.ts";
import {
  DEFAULT_RESOURCES,
  type Launch,
  match,
  type PendingProcess,
  type SpreadInput,
} from "../lib/scheduler/match.ts";
import {
  type AgentRoom,
  noteOfferRound,
  type SeenAgent,
  SPREAD_WAIT_MS,
  spreadPeers,
} from "../lib/scheduler/spread.ts";
import type { Offer } from "../lib/mesos/types.ts";
import { agentOffer } from "./_core.ts";

const EXEC = "mrr-executor";

/** An offer with room for many small tasks, from an agent where our executor runs. */
function offer(agent: string, over: Parameters<typeof agentOffer>[1] = {}): Offer {
  return agentOffer(agent, {
    cpus: 8,
    mem: 8192,
    ports: [[31000, 31999]],
    executor: true,
    ...over,
  });
}

/** `n` single instances `{prefix}0…` of 1 MB (one master each). */
function singles(n: number, prefix = "s", over: Partial<PendingProcess> = {}): PendingProcess[] {
  return Array.from({ length: n }, (_, i) => ({
    instance: `${prefix}${i}`,
    procId: "p1",
    role: "master" as const,
    capacityMB: 1,
    distribution: 1,
    instanceSize: 1,
    ...over,
  }));
}

/** One instance of `n` processes with `distribution`. */
function instance(name: string, n: number, distribution: number): PendingProcess[] {
  return Array.from({ length: n }, (_, i) => ({
    instance: name,
    procId: `p${i + 1}`,
    role: i === 0 ? "master" as const : "slave" as const,
    capacityMB: 10,
    distribution,
    instanceSize: n,
  }));
}

function room(agentId: string, over: Partial<AgentRoom> = {}): AgentRoom {
  return { agentId, cpus: 8, mem: 8192, ports: 1000, executorRunning: true, ...over };
}

function tasksPerAgent(launches: readonly Launch[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of launches) out[l.agentId] = (out[l.agentId] ?? 0) + l.tasks.length;
  return out;
}

Deno.test("match with spread: an offer takes its fair share and leaves the rest to peers", () => {
  const cases: {
    name: string;
    pending: PendingProcess[];
    offers: Offer[];
    spread?: SpreadInput;
    placed: Record<string, number>;
    deferred: number;
  }[] = [
    {
      name: "no spread input: the offer at hand takes everything (as before)",
      pending: singles(50),
      offers: [offer("A")],
      placed: { A: 50 },
      deferred: 0,
    },
    {
      name: "two idle peers: a third of the burst",
      pending: singles(50),
      offers: [offer("A")],
      spread: { load: {}, peers: [room("B"), room("C")] },
      placed: { A: 17 },
      deferred: 33,
    },
    {
      name: "the offering agent already runs more than its share: nothing",
      pending: singles(30),
      offers: [offer("A")],
      spread: { load: { A: 60, B: 10, C: 20 }, peers: [room("B"), room("C")] },
      placed: {},
      deferred: 30,
    },
    {
      name: "the offering agent runs the fewest: it fills up to the share",
      pending: singles(30),
      offers: [offer("A")],
      spread: { load: { A: 0, B: 30, C: 30 }, peers: [room("B"), room("C")] },
      placed: { A: 30 },
      deferred: 0,
    },
    {
      name: "peers without room (too little memory): the offer at hand takes everything",
      pending: singles(20),
      offers: [offer("A")],
      spread: { load: {}, peers: [room("B", { mem: 10 }), room("C", { ports: 0 })] },
      placed: { A: 20 },
      deferred: 0,
    },
    {
      name: "a peer with room for 3 takes 3; the offer at hand the rest",
      pending: singles(20),
      offers: [offer("A")],
      // 33 MB per task (1 MB + 32 MB overhead): 100 MB holds 3.
      spread: { load: {}, peers: [room("B", { mem: 100 })] },
      placed: { A: 17 },
      deferred: 3,
    },
    {
      name: "a peer without our executor is charged for it",
      pending: singles(2),
      offers: [offer("A")],
      // 33 MB for the task + 64 MB for the executor > 90 MB.
      spread: { load: {}, peers: [room("B", { mem: 90, executorRunning: false })] },
      placed: { A: 2 },
      deferred: 0,
    },
    {
      name: "every agent's offer at hand (no peers): spread within the round, nothing waits",
      pending: singles(30),
      offers: [offer("A"), offer("B"), offer("C")],
      spread: { load: { A: 12 }, peers: [] },
      placed: { A: 2, B: 14, C: 14 },
      deferred: 0,
    },
    {
      name: "1+50 with Distribution 20 on all three offers: no waiting, 17 each",
      pending: instance("big", 51, 20),
      offers: [offer("A"), offer("B"), offer("C")],
      spread: { load: { A: 3, B: 3, C: 3 }, peers: [] },
      placed: { A: 17, B: 17, C: 17 },
      deferred: 0,
    },
    {
      name: "Distribution: a peer that has its share of the instance is no place for more",
      pending: instance("d", 4, 2),
      offers: [offer("A")],
      spread: { load: { A: 6 }, peers: [room("B")] },
      // Share (6 + 4) / 2 = 5: A is above it; B may take 2 (Distribution 2),
      // the other 2 stay on A.
      placed: { A: 2 },
      deferred: 2,
    },
  ];
  for (const c of cases) {
    const r = match(c.pending, c.offers, {}, {
      executorId: EXEC,
      ...(c.spread ? { spread: c.spread } : {}),
    });
    assertEquals(tasksPerAgent(r.launches), c.placed, c.name);
    assertEquals(r.deferred, c.deferred, c.name);
    if (c.deferred > 0) {
      assert(
        Object.values(r.unplaced).some((u) => /runs fewer tasks/.test(u)),
        `${c.name}: ${JSON.stringify(r.unplaced)}`,
      );
    }
  }
});

Deno.test("match with spread: redis processes and proxies are shared out each on their own", () => {
  // 30 singles, each with a proxy, on three agents at hand, A already
  // running 30 proxies (and no redis-server): counted together A would get
  // redis-servers only; counted apart each agent gets 10 redis-servers.
  const proxies: PendingProcess[] = singles(30).map((p) => ({
    ...p,
    procId: "x1",
    role: "proxy" as const,
    capacityMB: 0,
    cpus: 0.05,
    memMB: 16,
    countAs: `${p.instance}/proxies`,
  }));
  const r = match([...singles(30), ...proxies], [offer("A"), offer("B"), offer("C")], {}, {
    executorId: EXEC,
    spread: { load: {}, proxyLoad: { A: 30 }, peers: [] },
  });
  const perKind: Record<string, string> = {};
  for (const l of r.launches) {
    const redis = l.tasks.filter((t) => t.role !== "proxy").length;
    perKind[l.agentId] = `${redis}/${l.tasks.length - redis}`;
  }
  assertEquals(perKind, { A: "10/0", B: "10/15", C: "10/15" });

  // An offer alone: its share of each kind, the rest left to the peers.
  const alone = match([...singles(30), ...proxies], [offer("A")], {}, {
    executorId: EXEC,
    spread: { load: {}, proxyLoad: {}, peers: [room("B"), room("C")] },
  });
  assertEquals(alone.launches[0]!.tasks.filter((t) => t.role !== "proxy").length, 10);
  assertEquals(alone.launches[0]!.tasks.filter((t) => t.role === "proxy").length, 10);
  assertEquals(alone.deferred, 40);
});

Deno.test("match with spread: a process bound to the offer's agent never waits", () => {
  const bound = [
    ...singles(1, "req", { requiredAgentId: "A" }),
    ...singles(1, "pref", { preferredAgentId: "A" }),
  ];
  const r = match(bound, [offer("A")], {}, {
    executorId: EXEC,
    spread: { load: { A: 90 }, peers: [room("B"), room("C")] },
  });
  assertEquals(tasksPerAgent(r.launches), { A: 2 });
  assertEquals(r.deferred, 0);
});

Deno.test("match with spread: a cluster shard is never pushed onto an agent holding its group", () => {
  const shard: PendingProcess = { ...singles(1, "rc")[0]!, group: "rc/0", distribution: 3 };
  const r = match([shard], [offer("A")], {}, {
    executorId: EXEC,
    groupPlacements: { "rc/0": { B: 1 } },
    spread: { load: { A: 10 }, peers: [room("B")] },
  });
  assertEquals(tasksPerAgent(r.launches), { A: 1 });
  assertEquals(r.deferred, 0);
});

Deno.test("a burst whose offers come back one agent at a time spreads over the three", () => {
  // Rounds as the local master sends them after launches: each agent's
  // offer alone, in turn, while the scheduler remembers the others.
  let seen: ReadonlyMap<string, SeenAgent> = new Map();
  const load: Record<string, number> = {};
  let waiting = singles(60);
  let now = 0;
  // The first round saw all three agents (idle).
  seen = noteOfferRound(seen, [offer("A"), offer("B"), offer("C")], [], DEFAULT_RESOURCES, EXEC, 0);
  const registered = new Set(["A", "B", "C"]);
  for (let round = 0; round < 12 && waiting.length > 0; round++) {
    now += 200;
    const at = [offer(["A", "B", "C"][round % 3]!)];
    const r = match(waiting, at, {}, {
      executorId: EXEC,
      spread: { load, peers: spreadPeers(seen, at, registered, now) },
    });
    seen = noteOfferRound(seen, at, r.launches, DEFAULT_RESOURCES, EXEC, now);
    const placed = new Set(r.launches.flatMap((l) => l.tasks.map((t) => t.instance)));
    for (const [a, n] of Object.entries(tasksPerAgent(r.launches))) load[a] = (load[a] ?? 0) + n;
    waiting = waiting.filter((p) => !placed.has(p.instance));
  }
  assertEquals(waiting, []);
  assertEquals(load, { A: 20, B: 20, C: 20 });
});

Deno.test("without spread the same rounds pile the burst onto the first agent", () => {
  const r = match(singles(60), [offer("A")], {}, { executorId: EXEC });
  assertEquals(tasksPerAgent(r.launches), { A: 60 });
});

Deno.test("noteOfferRound keeps what each offer left after the round's launches", () => {
  const r = match(singles(3), [offer("A", { executor: false })], {}, { executorId: EXEC });
  const seen = noteOfferRound(
    new Map([["Z", { ...room("Z"), seenAt: 1 }]]),
    [offer("A", { executor: false })],
    r.launches,
    DEFAULT_RESOURCES,
    EXEC,
    50,
  );
  assertEquals(seen.get("A"), {
    agentId: "A",
    // 8 - 3 × 0.1 - 0.1 (executor); 8192 - 3 × 33 - 64.
    cpus: 7.6,
    mem: 8029,
    ports: 997,
    executorRunning: true,
    seenAt: 50,
  });
  assertEquals(seen.get("Z")?.seenAt, 1, "agents that did not offer keep their entry");
});

Deno.test("spreadPeers: known agents not at hand, still registered, seen lately", () => {
  const seen = new Map<string, SeenAgent>([
    ["A", { ...room("A"), seenAt: 1000 }],
    ["B", { ...room("B"), seenAt: 1000 }],
    ["gone", { ...room("gone"), seenAt: 1000 }],
    ["old", { ...room("old"), seenAt: 1000 - SPREAD_WAIT_MS - 1 }],
    ["edge", { ...room("edge"), seenAt: 1000 - SPREAD_WAIT_MS }],
  ]);
  const peers = spreadPeers(seen, [offer("A")], new Set(["A", "B", "old", "edge"]), 1000);
  assertEquals(peers.map((p) => p.agentId), ["B", "edge"]);
  assertEquals("seenAt" in peers[0]!, false);
});
