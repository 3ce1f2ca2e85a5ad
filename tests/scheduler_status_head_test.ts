/**
 * `statusHead` (what a STATUS long poll compares each turn) against the
 * full `instanceView`, table-driven: Status, Master and Epoch always agree,
 * through placement, promotion and RC shards.
 */
import { assertEquals } from "./_assert.ts";
import { instanceView, statusHead } from "../lib/scheduler/status_view.ts";
import type { InstanceRecord, ProcessRecord } from "../lib/model.ts";
import type { RedisStats } from "../lib/executor_messages.ts";

function inst(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    name: "c",
    type: "MS",
    status: "RUNNING",
    capacityMB: 10,
    masters: 1,
    slaves: 2,
    distribution: 3,
    masterId: "p1",
    rev: 1,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  };
}

function proc(id: string, over: Partial<ProcessRecord> = {}): ProcessRecord {
  const n = Number(id.slice(1));
  return {
    id,
    taskId: `c.${id}.1`,
    role: id === "p1" ? "master" : "slave",
    state: "RUNNING",
    host: "127.0.0.1",
    port: 7000 + n,
    updatedAt: 0,
    ...over,
  };
}

function stats(taskId: string, role: "master" | "slave"): [string, RedisStats] {
  return [taskId, {
    taskId,
    role,
    memoryUsed: 1,
    maxMemory: 1,
    uptime: 1,
    clients: 0,
    replOffset: 0,
    inSync: true,
    lastIoSeconds: 0,
    connectedSlaves: 0,
  }];
}

const CASES: {
  name: string;
  inst: InstanceRecord;
  procs: ProcessRecord[];
  stats?: [string, RedisStats][];
}[] = [
  { name: "running", inst: inst({ epoch: 2 }), procs: [proc("p1"), proc("p2"), proc("p3")] },
  {
    name: "creating, nothing placed",
    inst: inst({ status: "CREATING" }),
    procs: [
      proc("p1", { host: undefined, port: undefined, state: "PENDING" }),
      proc("p2", { host: undefined, port: undefined, state: "PENDING" }),
    ],
  },
  { name: "no master chosen", inst: inst({ masterId: undefined }), procs: [proc("p1")] },
  {
    name: "promoting, not writable yet",
    inst: inst({ status: "FAILING_OVER", masterId: "p2", promotingId: "p2", epoch: 1 }),
    procs: [proc("p1", { state: "LOST" }), proc("p2"), proc("p3")],
    stats: [stats("c.p2.1", "slave")],
  },
  {
    name: "promoted, reports master",
    inst: inst({ status: "FAILING_OVER", masterId: "p2", promotingId: "p2", epoch: 1 }),
    procs: [proc("p1", { state: "LOST" }), proc("p2"), proc("p3")],
    stats: [stats("c.p2.1", "master")],
  },
  {
    name: "single",
    inst: inst({ type: "S", slaves: 0, status: "DEGRADED" }),
    procs: [proc("p1")],
  },
  {
    name: "RC, first shard's master",
    inst: inst({ type: "RC", masters: 2, slaves: 1, masterId: undefined }),
    procs: [
      proc("p1", { shard: 0 }),
      proc("p2", { shard: 1 }),
      proc("p3", { shard: 0 }),
      proc("p4", { shard: 1 }),
    ],
  },
  {
    name: "RC, first shard promoting",
    inst: inst({
      type: "RC",
      masters: 2,
      slaves: 1,
      masterId: undefined,
      shardMasters: ["p3", "p2"],
      promotingId: "p3",
      epoch: 4,
    }),
    procs: [
      proc("p1", { shard: 0, state: "LOST" }),
      proc("p2", { shard: 1 }),
      proc("p3", { shard: 0 }),
      proc("p4", { shard: 1 }),
    ],
    stats: [stats("c.p3.1", "slave")],
  },
  {
    name: "RC, first shard promoted",
    inst: inst({
      type: "RC",
      masters: 2,
      slaves: 1,
      masterId: undefined,
      shardMasters: ["p3", "p2"],
      promotingId: "p3",
      epoch: 4,
    }),
    procs: [
      proc("p1", { shard: 0, state: "LOST" }),
      proc("p2", { shard: 1 }),
      proc("p3", { shard: 0 }),
      proc("p4", { shard: 1 }),
    ],
    stats: [stats("c.p3.1", "master")],
  },
];

for (const c of CASES) {
  Deno.test(`statusHead agrees with instanceView: ${c.name}`, () => {
    const s = new Map(c.stats ?? []);
    const view = instanceView(c.inst, c.procs, s);
    const head = statusHead(c.inst, c.procs, s);
    assertEquals(head, {
      Status: view.Status,
      Master: view.Master ? { IP: view.Master.IP, Port: view.Master.Port } : null,
      Epoch: view.Epoch,
    });
  });
}

Deno.test("statusHead: a master being promoted is hidden until it reports master", () => {
  const c = CASES.find((x) => x.name === "promoting, not writable yet")!;
  assertEquals(statusHead(c.inst, c.procs, new Map(c.stats)).Master, null);
  const d = CASES.find((x) => x.name === "promoted, reports master")!;
  assertEquals(statusHead(d.inst, d.procs, new Map(d.stats)).Master, {
    IP: "127.0.0.1",
    Port: "7002",
  });
});
