/** The pure CREATE feasibility check and the agent size estimate, table-driven. */
import { assertEquals, assertMatch } from "./_assert.ts";
import { type AgentSize, infeasibleReason, observeAgent } from "../lib/scheduler/feasibility.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";

function agents(...sizes: [number, number][]): AgentSize[] {
  return sizes.map(([memMB, cpus], i) => ({ agentId: `A${i + 1}`, memMB, cpus }));
}

Deno.test("infeasibleReason refuses only what no registered agent could ever hold", async (t) => {
  const cases: {
    name: string;
    capacityMB: number;
    processes: number;
    distribution: number;
    agents: AgentSize[];
    refused?: RegExp;
  }[] = [
    {
      name: "no agent known: nothing is refused",
      capacityMB: 999_999,
      processes: 9,
      distribution: 1,
      agents: [],
    },
    {
      name: "fits one agent",
      capacityMB: 100,
      processes: 1,
      distribution: 1,
      agents: agents([4096, 4]),
    },
    {
      name: "capacity + overhead + executor exactly the agent's memory",
      capacityMB: 4096 - 32 - 64,
      processes: 1,
      distribution: 1,
      agents: agents([4096, 4]),
    },
    {
      name: "one MB more than the largest agent",
      capacityMB: 4096 - 32 - 64 + 1,
      processes: 1,
      distribution: 1,
      agents: agents([1024, 4], [4096, 4]),
      refused:
        /one process needs an agent with 4097 MB and 0.2 cpus \(4001 MB capacity \+ 32 MB redis overhead \+ 64 MB for the executor\), but of the 2 agents registered the largest has 4096 MB/,
    },
    {
      name: "too few cpus on every agent",
      capacityMB: 10,
      processes: 1,
      distribution: 1,
      agents: agents([4096, 0.15]),
      refused: /0.2 cpus.*the most cpus are 0.15/,
    },
    {
      name: "0.2 cpus exactly is enough",
      capacityMB: 10,
      processes: 1,
      distribution: 1,
      agents: agents([4096, 0.2]),
    },
    {
      name: "1+3 at Distribution 1 on 3 agents",
      capacityMB: 10,
      processes: 4,
      distribution: 1,
      agents: agents([4096, 4], [4096, 4], [4096, 4]),
      refused:
        /its 4 processes of 10 MB need at least 4 agents at Distribution 1 \(at most 1 per agent\), but the 3 agents registered can hold at most 3 of them/,
    },
    {
      name: "1+3 at Distribution 2 on 3 agents",
      capacityMB: 10,
      processes: 4,
      distribution: 2,
      agents: agents([4096, 4], [4096, 4], [4096, 4]),
    },
    {
      name: "1+2 where only one agent is big enough",
      capacityMB: 2000,
      processes: 3,
      distribution: 1,
      agents: agents([4096, 4], [1024, 4], [1024, 4]),
      refused: /need at least 3 agents .* can hold at most 1 of them/,
    },
    {
      name: "memory, not Distribution, limits an agent",
      capacityMB: 1500,
      processes: 6,
      distribution: 5,
      // (4096 - 64) / 1532 = 2 per agent: 4 in all.
      agents: agents([4096, 4], [4096, 4]),
      refused: /6 processes of 1500 MB need at least 2 agents .* can hold at most 4 of them/,
    },
    {
      name: "the same, three agents",
      capacityMB: 1500,
      processes: 6,
      distribution: 5,
      agents: agents([4096, 4], [4096, 4], [4096, 4]),
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const reason = infeasibleReason(c, c.agents, DEFAULT_RESOURCES);
      if (c.refused === undefined) assertEquals(reason, undefined);
      else assertMatch(reason ?? "(not refused)", c.refused);
      if (reason) {
        assertMatch(
          reason,
          new RegExp(`^Cannot create instance "${c.name.replace(/[+()]/g, "\\$&")}"`),
        );
      }
    });
  }
});

Deno.test("observeAgent keeps the largest offered + held seen, per resource", () => {
  let a = observeAgent(undefined, "A1", { cpus: 4, memMB: 4096 }, { cpus: 0, memMB: 0 });
  assertEquals(a, { agentId: "A1", cpus: 4, memMB: 4096 });
  // Our tasks hold 0.3 cpus and 300 MB: the offer shows the rest.
  a = observeAgent(a, "A1", { cpus: 3.7, memMB: 3796 }, { cpus: 0.3, memMB: 300 });
  assertEquals(a, { agentId: "A1", cpus: 4, memMB: 4096 });
  // Another framework holds some: the estimate does not shrink.
  a = observeAgent(a, "A1", { cpus: 1, memMB: 1000 }, { cpus: 0, memMB: 0 });
  assertEquals(a, { agentId: "A1", cpus: 4, memMB: 4096 });
  // It frees them: the estimate grows to what is seen.
  a = observeAgent(a, "A1", { cpus: 8, memMB: 8192 }, { cpus: 0.1, memMB: 64 });
  assertEquals(a, { agentId: "A1", cpus: 8.1, memMB: 8256 });
  // Sums of cpus are rounded like Mesos does.
  assertEquals(
    observeAgent(undefined, "A2", { cpus: 0.1, memMB: 1 }, { cpus: 0.2, memMB: 1 }).cpus,
    0.3,
  );
});
