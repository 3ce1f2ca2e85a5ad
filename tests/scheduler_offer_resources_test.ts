/**
 * Carving task and executor resources out of an offer's own entries:
 * reserved-for-the-role first for tasks, unreserved first for the executor,
 * ports from the entry that holds them, reservation details kept.
 */
import { assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import { carveResources, offerHasReservations } from "../lib/scheduler/offer_resources.ts";
import type { Offer, Resource } from "../lib/mesos/types.ts";

const ROLE = "redis";
const reservation = [{ type: "DYNAMIC" as const, role: ROLE, principal: "ops" }];

function scalar(name: string, value: number, reserved: boolean): Resource {
  return {
    name,
    type: "SCALAR",
    scalar: { value },
    allocation_info: { role: ROLE },
    ...(reserved ? { reservations: reservation } : {}),
  };
}

function ports(begin: number, end: number, reserved: boolean): Resource {
  return {
    name: "ports",
    type: "RANGES",
    ranges: { range: [{ begin, end }] },
    allocation_info: { role: ROLE },
    ...(reserved ? { reservations: reservation } : {}),
  };
}

function offer(resources: Resource[]): Offer {
  return {
    id: { value: "o1" },
    framework_id: { value: "fw" },
    agent_id: { value: "A1" },
    hostname: "h1",
    resources,
  };
}

/** `name:amount:r|u` per resource, for short comparisons. */
function brief(list: Resource[]): string[] {
  return list.map((r) =>
    `${r.name}:${
      r.scalar
        ? r.scalar.value
        : (r.ranges?.range ?? []).map((x) => `${x.begin}-${x.end}`).join(",")
    }:${(r.reservations?.length ?? 0) > 0 ? "r" : "u"}`
  );
}

Deno.test("carveResources takes reserved resources for tasks and unreserved ones for the executor", () => {
  const mixed = offer([
    scalar("cpus", 0.25, true),
    scalar("cpus", 2, false),
    scalar("mem", 300, true),
    scalar("mem", 4096, false),
    ports(7000, 7001, true),
    ports(8000, 8009, false),
  ]);
  assertEquals(offerHasReservations(mixed), true);
  const carved = carveResources(
    mixed,
    [
      { cpus: 0.1, memMB: 132, ports: [7000] },
      { cpus: 0.1, memMB: 132, ports: [8003] },
      { cpus: 0.1, memMB: 132, ports: [7001] },
    ],
    { cpus: 0.1, memMB: 64 },
  );
  assertEquals(brief(carved.executor!), ["cpus:0.1:u", "mem:64:u"]);
  assertEquals(carved.tasks.map(brief), [
    ["cpus:0.1:r", "mem:132:r", "ports:7000-7000:r"],
    ["cpus:0.1:r", "mem:132:r", "ports:8003-8003:u"],
    // The reserved cpus (0.25) and mem (300) run out within the third task.
    ["cpus:0.05:r", "cpus:0.05:u", "mem:36:r", "mem:96:u", "ports:7001-7001:r"],
  ]);
  // Reservation and allocation details are copied as offered.
  const first = carved.tasks[0]![0]!;
  assertEquals(first.reservations, reservation);
  assertEquals(first.allocation_info, { role: ROLE });
});

Deno.test("carveResources: an agent with reserved resources only gives the executor reserved ones", () => {
  const reservedOnly = offer([
    scalar("cpus", 1, true),
    scalar("mem", 1024, true),
    ports(7000, 7009, true),
  ]);
  const carved = carveResources(reservedOnly, [{ cpus: 0.1, memMB: 132, ports: [7005] }], {
    cpus: 0.1,
    memMB: 64,
  });
  assertEquals(brief(carved.executor!), ["cpus:0.1:r", "mem:64:r"]);
  assertEquals(brief(carved.tasks[0]!), ["cpus:0.1:r", "mem:132:r", "ports:7005-7005:r"]);
});

Deno.test("carveResources: unreserved offers give what the plain resources were", () => {
  const plain = offer([
    { name: "cpus", type: "SCALAR", scalar: { value: 4 } },
    { name: "mem", type: "SCALAR", scalar: { value: 4096 } },
    { name: "ports", type: "RANGES", ranges: { range: [{ begin: 7000, end: 7009 }] } },
  ]);
  assertEquals(offerHasReservations(plain), false);
  const carved = carveResources(plain, [{ cpus: 0.1, memMB: 132, ports: [7002] }]);
  assertEquals(carved.executor, undefined);
  assertEquals(carved.tasks, [[
    { name: "cpus", type: "SCALAR", scalar: { value: 0.1 } },
    { name: "mem", type: "SCALAR", scalar: { value: 132 } },
    { name: "ports", type: "RANGES", ranges: { range: [{ begin: 7002, end: 7002 }] } },
  ]]);
});

function refusal(fn: () => unknown): string {
  const error = assertThrows(fn);
  assertEquals((error as Error).name, "RangeError");
  return (error as Error).message;
}

Deno.test("carveResources refuses, naming the resource, what the offer cannot hold", () => {
  const small = offer([
    scalar("cpus", 0.1, false),
    scalar("mem", 100, false),
    ports(7000, 7000, false),
  ]);
  assertMatch(
    refusal(() => carveResources(small, [{ cpus: 0.1, memMB: 132, ports: [7000] }])),
    /lacks 32 mem/,
  );
  assertMatch(
    refusal(() => carveResources(small, [{ cpus: 0.1, memMB: 10, ports: [7001] }])),
    /does not hold port 7001/,
  );
  assertMatch(
    refusal(() =>
      carveResources(small, [{ cpus: 0.05, memMB: 10, ports: [7000] }, {
        cpus: 0.05,
        memMB: 10,
        ports: [7000],
      }])
    ),
    /does not hold port 7000/,
  );
});

Deno.test("carveResources reads the pre-refinement format (role, `*` unreserved) as Mesos sends it without RESERVATION_REFINEMENT", () => {
  const entry = (name: string, role: string, value: number | [number, number]): Resource => ({
    name,
    ...(typeof value === "number"
      ? { type: "SCALAR" as const, scalar: { value } }
      : { type: "RANGES" as const, ranges: { range: [{ begin: value[0], end: value[1] }] } }),
    role,
    allocation_info: { role: ROLE },
  });
  const legacy = offer([
    entry("cpus", "*", 2),
    entry("mem", "*", 4096),
    entry("cpus", ROLE, 0.15),
    entry("mem", ROLE, 100),
    entry("ports", "*", [8000, 8009]),
    entry("ports", ROLE, [7000, 7001]),
  ]);
  assertEquals(offerHasReservations(legacy), true);
  const carved = carveResources(
    legacy,
    [{ cpus: 0.1, memMB: 62, ports: [7000] }, { cpus: 0.1, memMB: 62, ports: [8001] }],
    { cpus: 0.1, memMB: 64 },
  );
  const roles = (list: Resource[]) =>
    list.map((r) => `${r.name}:${r.scalar?.value ?? r.ranges!.range![0]!.begin}:${r.role}`);
  assertEquals(roles(carved.executor!), ["cpus:0.1:*", "mem:64:*"]);
  assertEquals(carved.tasks.map(roles), [
    ["cpus:0.1:redis", "mem:62:redis", "ports:7000:redis"],
    ["cpus:0.05:redis", "cpus:0.05:*", "mem:38:redis", "mem:24:*", "ports:8001:*"],
  ]);
});
