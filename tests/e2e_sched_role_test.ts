/**
 * End to end: `sched` with `Role` set on a local cluster whose agents
 * reserve resources for that role (two agents partly, one wholly). A 1+2
 * instance runs and serves with its redis tasks' cpus and mem taken from
 * the reservations; executors use unreserved resources where there are
 * some and reserved ones on the wholly reserved agent; after a SIGKILL and
 * restart of sched the stored ExecutorInfo is reused (the master refuses a
 * different one for a running executor) and a new instance runs on every
 * agent again.
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { BLOCK_SIZE, reservePortRange, takePort } from "./_ports.ts";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import type { Resource } from "../lib/mesos/local/messages.ts";
import { EXECUTOR_ID } from "../lib/scheduler/tasks.ts";
import {
  create,
  deleteAndWait,
  redisPids,
  type Sched,
  startSched,
  waitRunning,
  withRedis,
} from "./_sched.ts";

const ROLE = "redis";

/** `name:role` of a resource (`*` when unreserved), as the scheduler sends it (no refinement). */
function tag(r: Resource): string {
  return `${r.name}:${r.role ?? "*"}`;
}

Deno.test({
  name: "sched with Role uses the agents' reserved resources, also after a restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-role");
    const masterPort = takePort();
    const ports = reservePortRange(3 * BLOCK_SIZE);
    const range = (i: number) => ({
      begin: ports.base + i * BLOCK_SIZE,
      end: ports.base + (i + 1) * BLOCK_SIZE - 1,
    });
    // Agents 0 and 1: part reserved (1 cpu, 512 MB, their first 10 ports);
    // agent 2: all of it.
    const part = (i: number) =>
      `cpus(${ROLE}):1;mem(${ROLE}):512;ports(${ROLE}):[${range(i).begin}-${range(i).begin + 9}]`;
    const whole = `cpus(${ROLE}):4;mem(${ROLE}):4096;ports(${ROLE}):[${range(2).begin}-${
      range(2).end
    }]`;
    const { cluster } = await startLocalCluster({
      agents: 3,
      port: masterPort,
      workDir: `${dir}/mesos`,
      cpus: 4,
      mem: 4096,
      portsBase: ports.base,
      portsPerAgent: BLOCK_SIZE,
      reserved: [part(0), part(1), whole],
    });
    let sched: Sched | undefined;
    try {
      const options = {
        dir,
        dbType: "embedded" as const,
        master: `127.0.0.1:${masterPort}`,
        config: { Role: ROLE },
      };
      sched = await startSched(options);
      assertEquals((await create(sched, "resv", 30, 2)).status, 201);
      const before = await waitRunning(sched, "resv", 120_000);
      await withRedis(before.Master!, (r) => r.set("k", "v"));
      const slave = before.Slaves[0]!;
      await waitFor("the slave to replicate", async () => {
        return await withRedis(slave, async (r) => (await r.get("k")) === "v");
      }, { timeoutMs: 60_000, intervalMs: 200 });

      const fw = cluster.frameworks().find((f) => f.name === "MrRedis");
      assert(fw, `the framework subscribed: ${JSON.stringify(cluster.frameworks())}`);
      assertEquals(fw.roles, [ROLE]);
      // The redis processes' tasks (`<name>.p<N>.<run>`; the proxies' are `.x<N>`).
      const redisTasks = () =>
        cluster.tasks(fw.id).filter((t) => t.state === "TASK_RUNNING" && /\.p\d+\./.test(t.taskId));
      const running = redisTasks();
      assertEquals(running.length, 3, JSON.stringify(running));
      assertEquals(new Set(running.map((t) => t.agentId)).size, 3, "one task on each agent");
      const agentIndex = (id: string) => cluster.agents().findIndex((a) => a.id === id);
      for (const task of running) {
        // cpus and mem come from the reservation (reserved first), all
        // allocated to the role; the ports from the entry that holds them.
        assertEquals(
          task.resources.filter((r) => r.name !== "ports").map(tag),
          ["cpus:redis", "mem:redis"],
          `${task.taskId}: ${JSON.stringify(task.resources)}`,
        );
        assert(task.resources.every((r) => r.allocation_info?.role === ROLE));
        const i = agentIndex(task.agentId);
        for (const p of task.resources.filter((r) => r.name === "ports")) {
          const port = p.ranges!.range![0]!.begin;
          const reserved = i === 2 || port <= range(i).begin + 9;
          assertEquals(p.role, reserved ? ROLE : "*", `${task.taskId} port ${port}`);
        }
      }
      // Executors: unreserved where the agent has some, reserved on agent 2.
      const executorTags = (i: number) =>
        cluster.executorInfo(i, fw.id, EXECUTOR_ID)?.resources?.map((r) => tag(r as Resource));
      assertEquals(executorTags(0), ["cpus:*", "mem:*"]);
      assertEquals(executorTags(1), ["cpus:*", "mem:*"]);
      assertEquals(executorTags(2), ["cpus:redis", "mem:redis"]);

      // SIGKILL and restart: instances stay, and launches on the agents
      // with running executors (agent 2's is a reserved one, read back from
      // the store) are accepted by the master.
      const logOffset = sched.log().length;
      await sched.kill();
      sched = await startSched({
        ...options,
        prefix: sched.prefix,
        httpPort: sched.httpPort,
        artifactPort: sched.artifactPort,
      });
      const after = await waitRunning(sched, "resv", 60_000);
      await withRedis(after.Master!, async (r) => assertEquals(await r.get("k"), "v"));
      for (const p of [after.Master!, ...after.Slaves]) {
        assertEquals((await redisPids(p.Port)).length, 1, `one redis-server on ${p.Port}`);
      }
      const restarted = sched;
      const accepted = await waitFor("the restarted sched to accept a CREATE", async () => {
        const res = await create(restarted, "resv2", 30, 2);
        return res.status === 503 ? undefined : res;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      assertEquals(accepted.status, 201, accepted.text);
      const second = await waitRunning(sched, "resv2", 120_000);
      await withRedis(second.Master!, async (r) => assertEquals(await r.ping(), "PONG"));
      const log = sched.log().slice(logOffset);
      assert(!/ExecutorInfo for executor/.test(log), "no launch refused for a changed executor");
      const now = redisTasks();
      assertEquals(now.length, 6, JSON.stringify(now.map((t) => [t.taskId, t.state])));
      assertEquals(new Set(now.map((t) => t.agentId)).size, 3);
      assertEquals(executorTags(2), ["cpus:redis", "mem:redis"]);
      for (const task of now) {
        assertEquals(task.resources.filter((r) => r.name !== "ports").map(tag), [
          "cpus:redis",
          "mem:redis",
        ]);
      }
      await deleteAndWait(sched, "resv2");
      await deleteAndWait(sched, "resv");
    } finally {
      await sched?.stop();
      await cluster.stop();
      ports.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "sched starts its local cluster with LocalReserved and refuses a running one that differs",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-role-config");
    const ports = reservePortRange(2 * BLOCK_SIZE);
    const agent1 = `1=cpus(${ROLE}):4;mem(${ROLE}):4096;ports(${ROLE}):[${
      ports.base + BLOCK_SIZE
    }-${ports.base + 2 * BLOCK_SIZE - 1}]`;
    const options = {
      dir,
      dbType: "embedded" as const,
      master: "local:2",
      localPortsBase: ports.base,
      config: { Role: ROLE, LocalReserved: agent1 },
    };
    let sched: Sched | undefined;
    try {
      sched = await startSched(options);
      // Agent 1 has nothing unreserved: with one process per agent, the
      // instance runs only if the reserved offer reached the scheduler.
      assertEquals((await create(sched, "cfg", 30, 1)).status, 201);
      const view = await waitRunning(sched, "cfg", 120_000);
      await withRedis(view.Master!, async (r) => assertEquals(await r.ping(), "PONG"));
      const ports1 = [view.Master!, ...view.Slaves].map((p) => Number(p.Port))
        .filter((p) => p >= ports.base + BLOCK_SIZE);
      assertEquals(ports1.length, 1, "one process on the wholly reserved agent 1");
      const state = JSON.parse(await Deno.readTextFile(`${dir}/local/cluster.json`));
      assertEquals(state.reserved, ["", agent1.slice(2)]);

      // The cluster outlives sched; one asked for other reservations is refused.
      await sched.terminate!("SIGTERM");
      const error = await startSched({
        ...options,
        prefix: sched.prefix,
        httpPort: sched.httpPort,
        artifactPort: sched.artifactPort,
        config: { Role: ROLE, LocalReserved: `0=cpus(${ROLE}):1` },
      }).then(() => undefined, (e: Error) => e);
      assert(error, "a sched asking for other reservations does not start");
      assert(
        /has the reserved resources .* but .* are asked for; stop it first/.test(error.message),
        error.message,
      );
    } finally {
      await sched?.stop();
      ports.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
