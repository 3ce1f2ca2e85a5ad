/**
 * The executor's self-fence on real redis-servers: `min-replicas-to-write`
 * from the task spec (launch and promotion), and the agent lease — with no
 * contact with the agent for `leaseMs`, masters refuse writes until the
 * agent is heard from again.
 */
import assert from "node:assert/strict";
import {
  decodeMessage,
  encodeMessage,
  encodeTaskSpec,
  type ExecutorToScheduler,
  type RedisTaskSpec,
  type SchedulerToExecutor,
} from "../lib/executor_messages.ts";
import { type ExecutorDriver, RedisExecutor, type TaskStatusUpdate } from "../lib/executor/mod.ts";
import type { ExecutorEvent } from "../lib/mesos/types.ts";
import { RedisClient } from "../lib/redis/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { subscribed } from "./_executor.ts";

/** Records what the executor sends; while `down`, MESSAGE calls fail as with a lost agent. */
class FlakyDriver implements ExecutorDriver {
  updates: TaskStatusUpdate[] = [];
  messages: ExecutorToScheduler[] = [];
  down = false;
  update(status: TaskStatusUpdate): void {
    this.updates.push(status);
  }
  message(data: Uint8Array): void {
    if (this.down) throw new Error("Connection refused");
    this.messages.push(decodeMessage<ExecutorToScheduler>(data));
  }
  running(taskId: string): boolean {
    return this.updates.some((u) => u.task_id.value === taskId && u.state === "TASK_RUNNING");
  }
  result(commandId: string): ExecutorToScheduler | undefined {
    return this.messages.find((m) => m.kind === "result" && m.commandId === commandId);
  }
}

function launch(taskId: string, spec: RedisTaskSpec): ExecutorEvent {
  return {
    type: "LAUNCH",
    launch: {
      task: {
        name: taskId,
        task_id: { value: taskId },
        agent_id: { value: "agent-1" },
        data: encodeTaskSpec(spec),
      },
    },
  };
}

function spec(procId: string, role: "master" | "slave", extra: Partial<RedisTaskSpec> = {}) {
  return {
    instance: "inst",
    procId,
    role,
    port: freePort(),
    capacityMB: 12,
    dataDir: `redis-${procId}`,
    ...extra,
  } satisfies RedisTaskSpec;
}

function command(msg: SchedulerToExecutor): ExecutorEvent {
  return { type: "MESSAGE", message: { data: encodeMessage(msg) } };
}

/** `SET key v` on `port`: "OK" or the error redis answered. */
async function trySet(client: RedisClient, key: string): Promise<string> {
  try {
    return String(await client.call("SET", [key, "v"], 2000));
  } catch (error) {
    return (error as Error).message;
  }
}

async function configGet(client: RedisClient, name: string): Promise<string> {
  const answer = await client.call("CONFIG", ["GET", name], 2000) as string[];
  return answer[1]!;
}

const LEASE_MS = 600;
const WAIT = { timeoutMs: 20_000, intervalMs: 20 };

Deno.test("RedisExecutor fences its masters when the agent lease runs out", async (t) => {
  const sandbox = await tempDir("executor-lease");
  const driver = new FlakyDriver();
  let connected = true;
  const lines: string[] = [];
  const ex = new RedisExecutor({
    driver,
    sandbox,
    bind: "127.0.0.1",
    statsIntervalMs: 100,
    checkIntervalMs: 200,
    idleTimeoutMs: 0,
    leaseMs: LEASE_MS,
    connected: () => connected,
    log: (line) => lines.push(line),
  });
  ex.handle(subscribed());
  // An S master (spec without the field), an MS master and its slave (spec without the field).
  const solo = spec("s1", "master");
  const m = spec("p1", "master", { minReplicasToWrite: 1, minReplicasMaxLagSeconds: 3 });
  const s = spec("p2", "slave", { master: { host: "127.0.0.1", port: m.port } });
  const soloC = new RedisClient({ port: solo.port });
  const mC = new RedisClient({ port: m.port });
  const sC = new RedisClient({ port: s.port });
  try {
    await t.step(
      "launch settings: 0 for a master by default, the spec's, 1 for a slave",
      async () => {
        ex.handle(launch("solo", solo));
        ex.handle(launch("m", m));
        await waitFor("masters RUNNING", () => driver.running("solo") && driver.running("m"), WAIT);
        ex.handle(launch("s", s));
        await waitFor("slave RUNNING", () => driver.running("s"), WAIT);
        assert.equal(await configGet(soloC, "min-replicas-to-write"), "0");
        assert.equal(await configGet(mC, "min-replicas-to-write"), "1");
        assert.equal(await configGet(mC, "min-replicas-max-lag"), "3");
        assert.equal(await configGet(sC, "min-replicas-to-write"), "1");
        assert.equal(await configGet(sC, "min-replicas-max-lag"), "5");
        assert.equal(await trySet(soloC, "a"), "OK");
        await waitFor(
          "a write on the MS master",
          async () => (await trySet(mC, "a")) === "OK",
          WAIT,
        );
      },
    );

    await t.step("agent unreachable past the lease: every master refuses writes", async () => {
      connected = false;
      driver.down = true;
      const t0 = Date.now();
      await waitFor("NOREPLICAS on both masters", async () => {
        return /NOREPLICAS/.test(await trySet(soloC, "b")) &&
          /NOREPLICAS/.test(await trySet(mC, "b"));
      }, { timeoutMs: LEASE_MS * 5, intervalMs: 20 });
      const ms = Date.now() - t0;
      console.log(`masters refused writes ${ms} ms after the agent went away (lease ${LEASE_MS})`);
      assert.ok(ms >= LEASE_MS - 200, `fenced after ${ms} ms, before the lease ran out`);
      assert.equal(ex.leaseLost, true);
      assert.equal(await soloC.call("GET", ["a"], 2000), "v", "reads still work");
      assert.ok(lines.some((l) => /No contact with the agent for \d+ ms/.test(l)));
    });

    await t.step("messages the agent accepts without a subscription renew nothing", async () => {
      driver.down = false; // still not subscribed
      await new Promise((r) => setTimeout(r, LEASE_MS));
      assert.equal(ex.leaseLost, true);
      assert.match(await trySet(soloC, "c"), /NOREPLICAS/);
    });

    await t.step("re-subscribed: writes are taken again, MS settings restored", async () => {
      connected = true;
      ex.handle(subscribed());
      assert.equal(ex.leaseLost, false);
      await waitFor("writes on both masters", async () => {
        return (await trySet(soloC, "d")) === "OK" && (await trySet(mC, "d")) === "OK";
      }, WAIT);
      assert.equal(await configGet(soloC, "min-replicas-to-write"), "0");
      assert.equal(await configGet(mC, "min-replicas-to-write"), "1");
    });

    await t.step("the lease holds while the agent accepts stats messages", async () => {
      await new Promise((r) => setTimeout(r, LEASE_MS * 3));
      assert.equal(ex.leaseLost, false);
      assert.equal(await trySet(soloC, "e"), "OK");
    });

    await t.step("a promoted slave gets min-replicas-to-write 1", async () => {
      await soloC.call("CONFIG", ["SET", "min-replicas-to-write", "0"], 2000);
      await sC.call("CONFIG", ["SET", "min-replicas-to-write", "0"], 2000);
      ex.handle(command({ kind: "promote", commandId: "c1", taskId: "s" }));
      const result = await waitFor("promote result", () => driver.result("c1"), WAIT);
      assert.equal(result.kind === "result" && result.ok, true, JSON.stringify(result));
      assert.equal(await configGet(sC, "min-replicas-to-write"), "1");
      // No replica follows it: an isolated new master does not take writes.
      assert.match(await trySet(sC, "f"), /NOREPLICAS/);
    });

    await t.step("a second outage fences again and a reconnect lifts it again", async () => {
      connected = false;
      driver.down = true;
      await waitFor("fenced again", () => ex.leaseLost, { timeoutMs: LEASE_MS * 5 });
      await waitFor("NOREPLICAS on the S master", async () => {
        return /NOREPLICAS/.test(await trySet(soloC, "g"));
      }, { timeoutMs: 5000, intervalMs: 20 });
      connected = true;
      driver.down = false;
      ex.handle(subscribed());
      await waitFor("writes again", async () => (await trySet(soloC, "h")) === "OK", WAIT);
    });
  } finally {
    soloC.close();
    mC.close();
    sC.close();
    await ex.abandon();
    await ex.flush(1000);
    await Deno.remove(sandbox, { recursive: true });
  }
});

Deno.test("RedisExecutor refuses a negative lease", () => {
  assert.throws(
    () => new RedisExecutor({ driver: new FlakyDriver(), sandbox: "/tmp", leaseMs: -1 }),
    /option "leaseMs" must be 0 or more, but got -1/,
  );
});
