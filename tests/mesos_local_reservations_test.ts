/**
 * Static reservations of the local agents: the `--resources`-style parser
 * (good strings and one-line errors), carving them out of an agent's
 * totals, how offers write them (both reservation formats), and the
 * containment check the master applies on ACCEPT, and pool sums.
 */
import { assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import { agentTotal, parseAgentResources } from "../lib/mesos/local/agent_resources.ts";
import {
  addPools,
  emptyPool,
  type Pool,
  poolForRole,
  poolFromResources,
  resourcesFromPool,
  shortfall,
  sumPools,
} from "../lib/mesos/local/resources.ts";
import type { Resource } from "../lib/mesos/local/messages.ts";

Deno.test("parseAgentResources reads a Mesos --resources string of reservations", () => {
  const cases: [string, Pool][] = [
    ["cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099]", {
      scalars: { "cpus(redis)": 2, "mem(redis)": 2048 },
      ranges: { "ports(redis)": [{ begin: 31000, end: 31099 }] },
    }],
    [" cpus(a/b):0.5 ; ports(a/b):[31010-31019, 31000-31004];", {
      scalars: { "cpus(a/b)": 0.5 },
      ranges: { "ports(a/b)": [{ begin: 31000, end: 31004 }, { begin: 31010, end: 31019 }] },
    }],
    ["cpus(x):1;cpus(y):1;cpus(x):0.25", {
      scalars: { "cpus(x)": 1.25, "cpus(y)": 1 },
      ranges: {},
    }],
  ];
  for (const [text, want] of cases) assertEquals(parseAgentResources(text), want, text);
});

Deno.test("parseAgentResources refuses bad strings with a one-line error naming the entry", () => {
  const cases: [string, RegExp][] = [
    ["", /name no resource/],
    [";;", /name no resource/],
    ["cpus", /"cpus" must look like NAME\(ROLE\):VALUE/],
    ["cpus(redis)2", /"cpus\(redis\)2" must look like/],
    ["disk(redis):100", /names "disk", which local agents do not have \(cpus, mem, ports\)/],
    ["cpus:2", /"cpus:2" reserves for no role; write cpus\(ROLE\):2/],
    ["cpus(*):2", /reserves for no role/],
    ["cpus(-x):2", /"cpus\(-x\):2": Role "-x" has a component starting with "-"/],
    ["cpus(a//b):2", /must not start or end with "\/" or contain "\/\/"/],
    ["cpus(redis):two", /must give a positive number, not "two"/],
    ["mem(redis):0", /must give a positive number, not "0"/],
    ["mem(redis):-5", /must give a positive number/],
    ["ports(redis):31000-31099", /must give ports as ranges such as \[31000-31099\]/],
    ["ports(redis):[31000]", /has a bad range "31000" \(want BEGIN-END\)/],
    ["ports(redis):[31099-31000]", /range 31099-31000 that is empty or past 65535/],
    ["ports(redis):[65000-70000]", /past 65535/],
    ["ports(redis):[31000-31010,31005-31020]", /overlapping ranges/],
    ["ports(redis):[31000-31010];ports(redis):[31005-31006]", /overlaps ports reserved before/],
    ["ports(a):[31000-31010];ports(b):[31005-31006]", /some ports for more than one role/],
  ];
  for (const [text, want] of cases) {
    const error = assertThrows(() => parseAgentResources(text), text) as Error;
    assertMatch(error.message, want, text);
    assertEquals(error.message.includes("\n"), false, text);
  }
});

Deno.test("agentTotal carves the reservations out of the agent's cpus, mem and ports", () => {
  const base = { cpus: 4, mem: 4096, ports: { begin: 31000, end: 31999 } };
  assertEquals(
    agentTotal(
      base,
      parseAgentResources("cpus(redis):1.5;mem(redis):1024;ports(redis):[31000-31099]"),
    ),
    {
      scalars: { cpus: 2.5, mem: 3072, "cpus(redis)": 1.5, "mem(redis)": 1024 },
      ranges: {
        ports: [{ begin: 31100, end: 31999 }],
        "ports(redis)": [{ begin: 31000, end: 31099 }],
      },
    },
  );
  // Everything reserved: nothing unreserved left.
  const all = agentTotal(
    base,
    parseAgentResources("cpus(redis):4;mem(redis):4096;ports(redis):[31000-31999]"),
  );
  assertEquals(resourcesFromPool(all).every((r) => r.reservations !== undefined), true);
  const bad: [string, RegExp][] = [
    ["cpus(a):3;cpus(b):2", /reserves 5 cpus in total, but has only 4/],
    ["mem(a):5000", /reserves 5000 mem in total, but has only 4096/],
    ["ports(a):[30999-31000]", /reserves ports outside its range 31000-31999/],
  ];
  for (const [text, want] of bad) {
    assertMatch(
      (assertThrows(() => agentTotal(base, parseAgentResources(text))) as RangeError).message,
      want,
    );
  }
});

const pool = agentTotal(
  { cpus: 4, mem: 4096, ports: { begin: 31000, end: 31999 } },
  parseAgentResources("cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099];cpus(web):1"),
);

Deno.test("an offer holds the unreserved part and the part reserved for its role only", () => {
  assertEquals(poolForRole(pool, "redis"), {
    scalars: { cpus: 1, mem: 2048, "cpus(redis)": 2, "mem(redis)": 2048 },
    ranges: {
      ports: [{ begin: 31100, end: 31999 }],
      "ports(redis)": [{ begin: 31000, end: 31099 }],
    },
  });
  assertEquals(poolForRole(pool, "*"), {
    scalars: { cpus: 1, mem: 2048 },
    ranges: { ports: [{ begin: 31100, end: 31999 }] },
  });
});

Deno.test("offered resources carry reservations as Mesos writes them", () => {
  const offered = poolForRole(pool, "redis");
  // RESERVATION_REFINEMENT frameworks: a reservations stack; others: `role`.
  const refined = resourcesFromPool(offered, "redis", "refinement");
  const legacy = resourcesFromPool(offered, "redis", "pre-refinement");
  const show = (rs: Resource[]) =>
    rs.map((r) => [r.name, r.role, JSON.stringify(r.reservations), r.allocation_info?.role]);
  assertEquals(show(refined), [
    ["cpus", undefined, undefined, "redis"],
    ["mem", undefined, undefined, "redis"],
    ["cpus", undefined, '[{"type":"STATIC","role":"redis"}]', "redis"],
    ["mem", undefined, '[{"type":"STATIC","role":"redis"}]', "redis"],
    ["ports", undefined, undefined, "redis"],
    ["ports", undefined, '[{"type":"STATIC","role":"redis"}]', "redis"],
  ]);
  assertEquals(show(legacy), [
    ["cpus", "*", undefined, "redis"],
    ["mem", "*", undefined, "redis"],
    ["cpus", "redis", undefined, "redis"],
    ["mem", "redis", undefined, "redis"],
    ["ports", "*", undefined, "redis"],
    ["ports", "redis", undefined, "redis"],
  ]);
  // Both formats read back to the same pool.
  assertEquals(poolFromResources(refined, "redis"), offered);
  assertEquals(poolFromResources(legacy, "redis"), offered);
});

function cpus(value: number, extra: Partial<Resource> = {}): Resource {
  return { name: "cpus", type: "SCALAR", scalar: { value }, ...extra };
}

Deno.test("poolFromResources refuses what an offer to the role cannot hold", () => {
  const cases: [Resource[], RegExp][] = [
    [
      [cpus(1, { role: "web" })],
      /"cpus" is reserved for role "web", but the offer is allocated to role "redis"/,
    ],
    [[cpus(1, { reservations: [{ type: "STATIC", role: "web" }] })], /reserved for role "web"/],
    [
      [cpus(1, { allocation_info: { role: "web" } })],
      /allocated to role "web", but the offer is for role "redis"/,
    ],
    [
      [cpus(1, { reservation: { principal: "p" }, role: "redis" })],
      /dynamic reservation, but the local cluster has only static ones/,
    ],
    [
      [cpus(1, { reservations: [{ type: "DYNAMIC", role: "redis" }] })],
      /of type DYNAMIC, but the local cluster has only STATIC ones/,
    ],
    [
      [cpus(1, {
        reservations: [{ type: "STATIC", role: "a" }, { type: "DYNAMIC", role: "a/b" }],
      })],
      /refined reservation \(2 levels\)/,
    ],
    [
      [cpus(1, { role: "redis", reservations: [{ type: "STATIC", role: "redis" }] })],
      /'reservations' together with 'role'/,
    ],
    [[cpus(1, { reservations: [{ type: "STATIC" }] })], /reservation without a role/],
    [[cpus(-1)], /invalid scalar value -1/],
  ];
  for (const [resources, want] of cases) {
    const got = poolFromResources(resources, "redis");
    assertEquals(typeof got, "string", JSON.stringify(resources));
    assertMatch(got as string, want);
  }
});

Deno.test("shortfall: containment keeps reserved and unreserved apart and says what is missing", () => {
  const offered = poolForRole(pool, "redis");
  const need = (rs: Resource[]) => poolFromResources(rs, "redis") as Pool;
  const ports = (begin: number, end: number, extra: Partial<Resource> = {}): Resource => ({
    name: "ports",
    type: "RANGES",
    ranges: { range: [{ begin, end }] },
    ...extra,
  });
  const cases: [Resource[], RegExp | undefined][] = [
    [[cpus(2, { role: "redis" }), cpus(1)], undefined],
    [[cpus(1, { reservations: [{ type: "STATIC", role: "redis" }] })], undefined],
    [[ports(31000, 31001, { role: "redis" }), ports(31500, 31500)], undefined],
    // Unreserved asked for, only reserved left.
    [
      [cpus(1.5)],
      /asks for 1.5 unreserved cpus, but the offers hold 1 \(the offers hold cpus reserved for role "redis"\)/,
    ],
    // Reserved asked for beyond the reservation.
    [
      [cpus(3, { role: "redis" })],
      /asks for 3 cpus reserved for role "redis", but the offers hold 2 \(the offers hold unreserved cpus\)/,
    ],
    // A reserved port asked for as unreserved, and the other way round.
    [
      [ports(31000, 31000)],
      /asks for unreserved ports \[31000-31000\], but the offers hold \[31100-31999\]/,
    ],
    [
      [ports(31200, 31200, { role: "redis" })],
      /asks for ports reserved for role "redis" \[31200-31200\], but the offers hold \[31000-31099\]/,
    ],
    [
      [{ name: "mem", type: "SCALAR", scalar: { value: 5000 } }],
      /asks for 5000 unreserved mem, but the offers hold 2048/,
    ],
  ];
  for (const [resources, want] of cases) {
    const got = shortfall(offered, need(resources));
    if (want === undefined) assertEquals(got, undefined, JSON.stringify(resources));
    else assertMatch(got ?? "(contained)", want);
  }
});

Deno.test("sumPools equals adding the pools one by one, reserved and unreserved apart", () => {
  const pools: Pool[] = [
    { scalars: { cpus: 0.1, mem: 64 }, ranges: { ports: [{ begin: 31005, end: 31005 }] } },
    { scalars: { cpus: 0.2, "cpus(redis)": 1 }, ranges: { ports: [{ begin: 31000, end: 31003 }] } },
    { scalars: { mem: 0.5 }, ranges: { ports: [{ begin: 31004, end: 31004 }] } },
    { scalars: {}, ranges: { "ports(redis)": [{ begin: 32000, end: 32001 }] } },
    emptyPool(),
  ];
  const oneByOne = pools.reduce((sum, p) => addPools(sum, p), emptyPool());
  assertEquals(sumPools(pools), oneByOne);
  assertEquals(sumPools(pools), {
    scalars: { cpus: 0.3, mem: 64.5, "cpus(redis)": 1 },
    ranges: {
      ports: [{ begin: 31000, end: 31005 }],
      "ports(redis)": [{ begin: 32000, end: 32001 }],
    },
  });
  assertEquals(sumPools([]), emptyPool());
});
