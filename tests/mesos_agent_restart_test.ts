/**
 * `LocalCluster.restartAgent`: an agent restarting with checkpointing keeps
 * its executors; an `ExecutorClient` executor reconnects with backoff and
 * resends what the agent had not acknowledged, gives up after the recovery
 * timeout, and tasks of an agent that was unreachable meanwhile come back
 * with REASON_AGENT_REREGISTERED (protocol reference §2.6, §4.7, §6 items
 * 23 and 25).
 */

import type { LocalClusterOptions } from "../lib/mesos/local/mod.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  ackFor,
  executorUpdate,
  frameworkInfo,
  launch,
  type Msg,
  nextOffer,
  nextUpdate,
  sleepingExecutor,
  startTestCluster,
  subscribe,
  subscribeExecutor,
  type Subscription,
  taskInfo,
} from "./_mesos_local.ts";
import { waitFor } from "./_util.ts";

const FIXTURE = new URL("./fixtures/client_executor.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

const CHECKPOINTING = frameworkInfo({
  checkpoint: true,
  capabilities: [{ type: "PARTITION_AWARE" }],
});

const clientExecutor = {
  executor_id: { value: "client" },
  type: "CUSTOM",
  command: { value: `exec "${Deno.execPath()}" run -A "${FIXTURE}"` },
  resources: [{ name: "cpus", type: "SCALAR", scalar: { value: 0.1 } }],
};

/** A cluster with one agent, a checkpointing framework and task "t1" RUNNING (acknowledged). */
async function runningTask(options: Partial<LocalClusterOptions>) {
  const env = await startTestCluster({ agents: 1, statusUpdateRetryMs: 1_000, ...options });
  let sub: Subscription | undefined;
  try {
    sub = await subscribe(env.cluster.url, { info: structuredClone(CHECKPOINTING) });
    const offer = await nextOffer(sub);
    assertEquals(
      await sub.call(
        launch([offer.id.value], [taskInfo("t1", offer, clientExecutor)], { refuse_seconds: 0.2 }),
      ),
      202,
    );
    const running = await nextUpdate(sub.events, "t1", "TASK_RUNNING", 30_000);
    assertEquals(await sub.call(ackFor(running)), 202);
    const s = sub;
    const messages = () =>
      s.events.events.filter((e: Msg) => e.type === "MESSAGE").map((e: Msg) =>
        decoder.decode(e.message.data)
      );
    await waitFor("the ack report", () => messages().some((m) => m.startsWith("acked:t1:")), {
      timeoutMs: 10_000,
    });
    const executor = env.cluster.executor(0, sub.frameworkId, "client")!;
    const message = async (text: string) => {
      const status = await s.call({
        type: "MESSAGE",
        message: {
          agent_id: offer.agent_id,
          executor_id: { value: "client" },
          data: new TextEncoder().encode(text),
        },
      });
      assertEquals(status, 202);
      await waitFor(`the echo of "${text}"`, () => messages().includes(`echo:${text}`), {
        timeoutMs: 10_000,
      });
    };
    return { env, sub, offer, executor, message };
  } catch (error) {
    await sub?.close();
    await env.close();
    throw error;
  }
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

Deno.test("an agent restart keeps the executor, which re-subscribes and resends its update", async () => {
  const { env, sub, executor, message } = await runningTask({
    agentPingTimeoutMs: 10_000,
    recoveryTimeoutMs: 20_000,
    subscriptionBackoffMaxMs: 200,
  });
  try {
    const fid = sub.frameworkId;
    const pid = executor.pid!;
    const port = env.cluster.agent(0).port;
    const agentId = env.cluster.agent(0).id;
    // The executor sends an update 300 ms from now: the agent is down then.
    await message("later:t1:300:while-down");
    const isLate = (e: Msg) =>
      e.type === "UPDATE" && e.update.status.task_id.value === "t1" &&
      e.update.status.message === "while-down";
    const restarting = env.cluster.restartAgent(0, { downMs: 1_000 });
    await new Promise((r) => setTimeout(r, 100));
    assert(!env.cluster.agent(0).running, "the agent still serves");
    await new Promise((r) => setTimeout(r, 700));
    assert(alive(pid), "the executor died with the agent");
    assert(!sub.events.events.some(isLate), "the update got through while the agent was down");
    await restarting;

    const view = env.cluster.agent(0);
    assertEquals([view.running, view.port, view.id], [true, port, agentId]);
    await waitFor(
      "the executor to re-subscribe",
      () => env.cluster.executor(0, fid, "client")?.subscribed,
      {
        timeoutMs: 5_000,
      },
    );
    assertEquals(env.cluster.executor(0, fid, "client")!.pid, pid);
    assertEquals(env.cluster.taskState(fid, "t1"), "TASK_RUNNING");

    const late = await sub.events.next(isLate, 10_000, "the update sent while the agent was down");
    assertEquals(late.update.status.source, "SOURCE_EXECUTOR");
    assertEquals(late.update.status.agent_id.value, agentId);
    assertEquals(late.update.status.uuid.length, 16);
    assertEquals(await sub.call(ackFor(late)), 202);
    await waitFor("no pending update", () => env.cluster.pendingUpdates(fid) === 0);

    await message("after-restart");
    assert(alive(pid));
    const stdout = await Deno.readTextFile(`${executor.sandbox}/stdout`);
    assertEquals(stdout.match(/event SUBSCRIBED/g)?.length, 2, stdout);
    const stderr = await Deno.readTextFile(`${executor.sandbox}/stderr`);
    assertMatch(stderr, /waits for the next SUBSCRIBE/);
    // No task was failed, lost or dropped by the restart.
    const states = sub.events.events.filter((e: Msg) => e.type === "UPDATE")
      .map((e: Msg) => e.update.status.state);
    assertEquals(states, ["TASK_RUNNING", "TASK_RUNNING"]);
    assert(!sub.events.events.some((e: Msg) => e.type === "FAILURE"));
  } finally {
    await sub.close();
    await env.close();
  }
});

Deno.test("an executor gives up after the recovery timeout and its task ends failed", async () => {
  const { env, sub, executor } = await runningTask({
    agentPingTimeoutMs: 10_000,
    recoveryTimeoutMs: 1_000,
    subscriptionBackoffMaxMs: 200,
  });
  try {
    const pid = executor.pid!;
    const restarting = env.cluster.restartAgent(0, { downMs: 2_500 });
    await waitFor("the executor to exit", () => !alive(pid), { timeoutMs: 2_400, intervalMs: 50 });
    assert(!env.cluster.agent(0).running, "the agent came back too early for this test");
    await restarting;

    const failed = await nextUpdate(sub.events, "t1", "TASK_FAILED");
    assertEquals(failed.update.status.source, "SOURCE_AGENT");
    assertEquals(failed.update.status.reason, "REASON_EXECUTOR_TERMINATED");
    assertEquals(failed.update.status.uuid.length, 16);
    const failure = await sub.events.next(
      (e) => e.type === "FAILURE" && e.failure.executor_id?.value === "client",
      5_000,
      "FAILURE of the executor",
    );
    assertEquals(failure.failure.status ?? 0, 0, "the executor did not exit cleanly");
    assertEquals(await sub.call(ackFor(failed)), 202);
    await waitFor("the master to forget t1", () => !env.cluster.taskState(sub.frameworkId, "t1"));
    const stderr = await Deno.readTextFile(`${executor.sandbox}/stderr`);
    assertMatch(stderr, /Executor gives up: Could not reach the agent within 1000 ms/);
  } finally {
    await sub.close();
    await env.close();
  }
});

Deno.test("an agent down past the ping timeout is unreachable, then re-registers with its task running", async () => {
  const { env, sub, executor, message } = await runningTask({
    agentPingTimeoutMs: 300,
    recoveryTimeoutMs: 20_000,
    subscriptionBackoffMaxMs: 200,
  });
  try {
    const fid = sub.frameworkId;
    const agentId = env.cluster.agent(0).id;
    const restarting = env.cluster.restartAgent(0, { downMs: 1_200 });
    const unreachable = await nextUpdate(sub.events, "t1", "TASK_UNREACHABLE", 2_000);
    assertEquals(unreachable.update.status.reason, "REASON_AGENT_REMOVED");
    assertEquals(unreachable.update.status.uuid, undefined);
    await sub.events.next(
      (e) => e.type === "FAILURE" && e.failure.agent_id.value === agentId && !e.failure.executor_id,
      2_000,
      "FAILURE of the agent",
    );
    assertEquals(env.cluster.taskState(fid, "t1"), "TASK_UNREACHABLE");
    await restarting;

    const back = await nextUpdate(sub.events, "t1", "TASK_RUNNING", 5_000);
    assertEquals(back.update.status.reason, "REASON_AGENT_REREGISTERED");
    assertEquals(back.update.status.source, "SOURCE_MASTER");
    assertEquals(back.update.status.agent_id.value, agentId);
    assertEquals(back.update.status.uuid, undefined);
    assertEquals(env.cluster.taskState(fid, "t1"), "TASK_RUNNING");
    await waitFor(
      "the executor to re-subscribe",
      () => env.cluster.executor(0, fid, "client")?.subscribed,
      {
        timeoutMs: 5_000,
      },
    );
    assertEquals(env.cluster.executor(0, fid, "client")!.pid, executor.pid);
    await message("after-reregistration");
    // The agent offers again.
    await nextOffer(sub, agentId, 5_000);
  } finally {
    await sub.close();
    await env.close();
  }
});

Deno.test("after a restart the agent drops unlisted STAGING tasks and destroys executors that do not come back", async () => {
  const env = await startTestCluster({
    agents: 1,
    agentPingTimeoutMs: 10_000,
    executorReregistrationTimeoutMs: 300,
  });
  let conns: { close(): Promise<void> }[] = [];
  try {
    const sub = await subscribe(env.cluster.url, { info: structuredClone(CHECKPOINTING) });
    const offer = await nextOffer(sub);
    const tasks = [
      taskInfo("staged", offer, sleepingExecutor("back")),
      taskInfo("kept", offer, sleepingExecutor("back")),
      taskInfo("gone", offer, sleepingExecutor("away")),
    ];
    assertEquals(await sub.call(launch([offer.id.value], tasks)), 202);
    const fid = sub.frameworkId;
    const endpoint = env.cluster.agent(0).endpoint;
    await waitFor(
      "both executors",
      () =>
        env.cluster.executor(0, fid, "back")?.state === "registering" &&
        env.cluster.executor(0, fid, "away")?.state === "registering",
    );
    const back = await subscribeExecutor(endpoint, fid, "back");
    const away = await subscribeExecutor(endpoint, fid, "away");
    conns = [back, away];
    await back.events.next((e) => e.type === "LAUNCH", 5_000, "LAUNCH staged");
    await back.events.next((e) => e.type === "LAUNCH", 5_000, "LAUNCH kept");
    await away.events.next((e) => e.type === "LAUNCH", 5_000, "LAUNCH gone");
    assertEquals(await away.call(executorUpdate("gone", "TASK_RUNNING")), 202);
    const goneRunning = await nextUpdate(sub.events, "gone", "TASK_RUNNING");
    assertEquals(await sub.call(ackFor(goneRunning)), 202);
    const awayPid = env.cluster.executor(0, fid, "away")!.pid!;

    await env.cluster.restartAgent(0, { downMs: 200 });
    await back.events.done;
    await away.events.done;
    // "back" re-subscribes listing only "kept" as unacknowledged; "away" stays silent.
    const keptInfo = tasks[1];
    const again = await subscribeExecutor(endpoint, fid, "back", {
      unacknowledged_tasks: [keptInfo],
    });
    conns.push(again);
    const dropped = await nextUpdate(sub.events, "staged", "TASK_DROPPED");
    assertEquals(dropped.update.status.reason, "REASON_AGENT_RESTARTED");
    assertEquals(dropped.update.status.source, "SOURCE_AGENT");
    assertEquals(env.cluster.taskState(fid, "kept"), "TASK_STAGING");

    const gone = await nextUpdate(sub.events, "gone", "TASK_GONE", 5_000);
    assertEquals(gone.update.status.reason, "REASON_EXECUTOR_REREGISTRATION_TIMEOUT");
    assertEquals(gone.update.status.source, "SOURCE_AGENT");
    await sub.events.next(
      (e) => e.type === "FAILURE" && e.failure.executor_id?.value === "away",
      5_000,
      "FAILURE of the executor that did not come back",
    );
    await waitFor("the silent executor to be killed", () => !alive(awayPid), { timeoutMs: 5_000 });
    assert(env.cluster.executor(0, fid, "back")?.subscribed);
    await sub.close();
  } finally {
    for (const conn of conns) await conn.close();
    await env.close();
  }
});
