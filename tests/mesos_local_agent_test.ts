/**
 * Local Mesos agents: the executor API and executor lifecycle (protocol
 * reference §6 items 15, 17, 20–25). The test plays the executor itself
 * against an executor process that only sleeps.
 */

import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  ackFor,
  executorCall,
  executorUpdate,
  frameworkInfo,
  launch,
  nextOffer,
  nextUpdate,
  sleepingExecutor,
  startTestCluster,
  subscribe,
  subscribeExecutor,
  taskInfo,
  uuid,
} from "./_mesos_local.ts";
import { waitFor } from "./_util.ts";

Deno.test("local agent enforces the executor API and delivers updates reliably", async (t) => {
  const env = await startTestCluster({ agents: 1, statusUpdateRetryMs: 200 });
  try {
    const sub = await subscribe(env.cluster.url, {
      info: frameworkInfo({ checkpoint: true, capabilities: [{ type: "PARTITION_AWARE" }] }),
    });
    const fid = sub.frameworkId;
    const agent = env.cluster.agent(0);
    const offer = await nextOffer(sub);
    const ex = sleepingExecutor("ex1", {
      command: { value: "sleep 60", environment: { variables: [{ name: "EXTRA", value: "yes" }] } },
    });
    assertEquals(
      await sub.call(
        launch([offer.id.value], [taskInfo("t1", offer, ex), taskInfo("t2", offer, ex)]),
      ),
      202,
    );
    await waitFor(
      "executor process",
      () => env.cluster.executor(0, fid, "ex1")?.state === "registering",
    );
    const ids = { framework_id: { value: fid }, executor_id: { value: "ex1" } };

    await t.step(
      "item 20: unknown framework or executor 400; calls before SUBSCRIBE 403; HEARTBEAT 202",
      async () => {
        assertEquals(
          await executorCall(agent.endpoint, {
            ...ids,
            framework_id: { value: "nope" },
            type: "MESSAGE",
            message: { data: uuid() },
          }),
          400,
        );
        assertEquals(
          await executorCall(agent.endpoint, {
            ...ids,
            executor_id: { value: "nope" },
            type: "MESSAGE",
            message: { data: uuid() },
          }),
          400,
        );
        assertEquals(
          await executorCall(agent.endpoint, { ...ids, ...executorUpdate("t1", "TASK_RUNNING") }),
          403,
        );
        assertEquals(await executorCall(agent.endpoint, { ...ids, type: "HEARTBEAT" }), 202);
        assertEquals(await executorCall(agent.endpoint, { ...ids, type: "UNKNOWN" }), 501);
        const noIds = await fetch(`http://${agent.endpoint}/api/v1/executor`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ type: "HEARTBEAT" }),
        });
        await noIds.body?.cancel();
        assertEquals(noIds.status, 400);
      },
    );

    await t.step("item 22: sandbox and environment of the executor process", async () => {
      const info = env.cluster.executor(0, fid, "ex1")!;
      assertMatch(
        info.sandbox,
        new RegExp(`/agents/${agent.id}/frameworks/${fid}/executors/ex1/runs/[0-9a-f-]{36}$`),
      );
      // Until the spawned process has exec'd the executor command, /proc shows
      // the environment it inherited (no MESOS_ variables yet): wait for the exec.
      const readEnviron = () => Deno.readTextFile(`/proc/${info.pid}/environ`).catch(() => "");
      let environ = await readEnviron();
      if (environ) {
        environ = await waitFor("the executor's own environment", async () => {
          const text = await readEnviron();
          return text.includes("MESOS_EXECUTOR_ID=") ? text : undefined;
        }, { timeoutMs: 10_000, intervalMs: 20 });
      }
      if (environ) {
        const vars = Object.fromEntries(
          environ.split("\0").filter(Boolean).map((l) => {
            const i = l.indexOf("=");
            return [l.slice(0, i), l.slice(i + 1)];
          }),
        );
        assertEquals(vars.MESOS_FRAMEWORK_ID, fid);
        assertEquals(vars.MESOS_EXECUTOR_ID, "ex1");
        assertEquals(vars.MESOS_AGENT_ENDPOINT, agent.endpoint);
        assertEquals(vars.MESOS_SLAVE_ID, agent.id);
        assertEquals(vars.MESOS_SLAVE_PID, `slave(1)@${agent.endpoint}`);
        assertEquals(vars.MESOS_DIRECTORY, info.sandbox);
        assertEquals(vars.MESOS_SANDBOX, info.sandbox);
        assertEquals(vars.MESOS_CHECKPOINT, "1");
        assertEquals(vars.MESOS_RECOVERY_TIMEOUT, "15mins");
        assertEquals(vars.MESOS_SUBSCRIPTION_BACKOFF_MAX, "2secs");
        assertEquals(vars.MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD, "500ms");
        assertEquals(vars.MESOS_HTTP_COMMAND_EXECUTOR, "0");
        assertEquals(vars.EXTRA, "yes");
        assert(vars.PATH);
      }
      assert((await Deno.stat(`${info.sandbox}/stdout`)).isFile);
      assert((await Deno.stat(`${info.sandbox}/stderr`)).isFile);
    });

    const conn = await subscribeExecutor(agent.endpoint, fid, "ex1");

    await t.step("item 22: queued tasks are delivered in order after SUBSCRIBE", async () => {
      const first = await conn.events.next((e) => e.type === "LAUNCH");
      const second = await conn.events.next((e) => e.type === "LAUNCH");
      assertEquals([first.launch.task.task_id.value, second.launch.task.task_id.value], [
        "t1",
        "t2",
      ]);
    });

    await t.step("item 21: UPDATE validation answers 400", async () => {
      assertEquals(
        await conn.call(executorUpdate("t1", "TASK_RUNNING", { uuid: new Uint8Array(8) })),
        400,
      );
      assertEquals(await conn.call(executorUpdate("t1", "TASK_RUNNING", { uuid: undefined })), 400);
      assertEquals(
        await conn.call(executorUpdate("t1", "TASK_RUNNING", { source: "SOURCE_AGENT" })),
        400,
      );
      assertEquals(await conn.call(executorUpdate("t1", "TASK_STAGING")), 400);
      assertEquals(
        await conn.call(executorUpdate("t1", "TASK_RUNNING", { executor_id: { value: "other" } })),
        400,
      );
    });

    await t.step(
      "item 21: wrong agent ignored without ACK; unknown task acknowledged",
      async () => {
        const wrong = executorUpdate("t1", "TASK_RUNNING", { agent_id: { value: "elsewhere" } });
        assertEquals(await conn.call(wrong), 202);
        const unknown = executorUpdate("ghost", "TASK_RUNNING");
        assertEquals(await conn.call(unknown), 202);
        const ack = await conn.events.next((e) => e.type === "ACKNOWLEDGED");
        assertEquals(ack.acknowledged.task_id.value, "ghost");
        assertEquals(ack.acknowledged.uuid, unknown.update.status.uuid);
      },
    );

    await t.step(
      "item 15: updates carry a uuid, are retried until ACK, one in flight per task",
      async () => {
        const running = executorUpdate("t1", "TASK_RUNNING");
        assertEquals(await conn.call(running), 202);
        const acked = await conn.events.next((e) => e.type === "ACKNOWLEDGED");
        assertEquals(acked.acknowledged.task_id.value, "t1");
        // A duplicate uuid is ignored.
        assertEquals(await conn.call(running), 202);
        const finished = executorUpdate("t1", "TASK_FINISHED");
        assertEquals(await conn.call(finished), 202);
        const u1 = await nextUpdate(sub.events, "t1", "TASK_RUNNING");
        assertEquals(u1.update.status.uuid, running.update.status.uuid);
        assertEquals(u1.update.status.source, "SOURCE_EXECUTOR");
        assertEquals(u1.update.status.agent_id.value, agent.id);
        const u2 = await nextUpdate(sub.events, "t1", "TASK_RUNNING", 2000); // retry of the same update
        assertEquals(u2.update.status.uuid, running.update.status.uuid);
        assert(
          !sub.events.events.some((e) =>
            e.type === "UPDATE" && e.update.status.state === "TASK_FINISHED"
          ),
        );
        // item 17: the terminal update already freed the task's resources on the master.
        assertEquals(env.cluster.taskState(fid, "t1"), "TASK_FINISHED");
        assertEquals(await sub.call(ackFor(u1)), 202);
        const u3 = await nextUpdate(sub.events, "t1", "TASK_FINISHED", 2000);
        assertEquals(await sub.call(ackFor(u3)), 202);
        assertEquals(env.cluster.taskState(fid, "t1"), undefined);
        const count = sub.events.events.filter((e) =>
          e.type === "UPDATE" && e.update.status.task_id.value === "t1"
        ).length;
        await new Promise((r) =>
          setTimeout(r, 500)
        );
        assertEquals(
          sub.events.events.filter((e) =>
            e.type === "UPDATE" && e.update.status.task_id.value === "t1"
          ).length,
          count,
        );
      },
    );

    await t.step(
      "item 23: re-SUBSCRIBE closes the old stream; unlisted STAGING tasks are dropped",
      async (t2) => {
        const again = await subscribeExecutor(agent.endpoint, fid, "ex1", {
          unacknowledged_tasks: [],
        });
        await conn.events.done;
        assert(conn.events.ended);
        const d = await nextUpdate(sub.events, "t2", "TASK_DROPPED");
        assertEquals(d.update.status.reason, "REASON_AGENT_RESTARTED");
        await sub.call(ackFor(d));

        await t2.step("MESSAGE both ways", async () => {
          await sub.call({
            type: "MESSAGE",
            message: {
              agent_id: { value: agent.id },
              executor_id: { value: "ex1" },
              data: new TextEncoder().encode("hi"),
            },
          });
          const m = await again.events.next((e) => e.type === "MESSAGE");
          assertEquals(new TextDecoder().decode(m.message.data), "hi");
          assertEquals(
            await again.call({
              type: "MESSAGE",
              message: { data: new TextEncoder().encode("back") },
            }),
            202,
          );
          const back = await sub.events.next((e) => e.type === "MESSAGE");
          assertEquals(new TextDecoder().decode(back.message.data), "back");
          assertEquals(back.message.executor_id.value, "ex1");
        });

        await t2.step(
          "item 24: SHUTDOWN event, grace period, process tree killed, FAILURE with status",
          async () => {
            const pid = env.cluster.executor(0, fid, "ex1")!.pid!;
            const offer2 = await nextOffer(sub);
            await sub.call(launch([offer2.id.value], [taskInfo("t3", offer2, ex)]));
            await again.events.next((e) => e.type === "LAUNCH");
            assertEquals(
              await sub.call({
                type: "SHUTDOWN",
                shutdown: { agent_id: { value: agent.id }, executor_id: { value: "ex1" } },
              }),
              202,
            );
            await again.events.next((e) => e.type === "SHUTDOWN");
            const failed = await nextUpdate(sub.events, "t3", "TASK_FAILED", 5000);
            assertEquals(failed.update.status.reason, "REASON_EXECUTOR_TERMINATED");
            assertEquals(failed.update.status.source, "SOURCE_AGENT");
            assertEquals(failed.update.status.uuid.length, 16);
            const failure = await sub.events.next((e) =>
              e.type === "FAILURE" && e.failure.executor_id
            );
            assertEquals(failure.failure.executor_id.value, "ex1");
            assertEquals(failure.failure.agent_id.value, agent.id);
            assertEquals(failure.failure.status, 9); // SIGKILL after the grace period
            let alive = true;
            try {
              Deno.kill(pid, "SIGCONT");
            } catch {
              alive = false;
            }
            assert(!alive, "executor process still alive");
            await sub.call(ackFor(failed));
            await again.close();
          },
        );
      },
    );

    await t.step(
      "item 22: fetch failure is TASK_FAILED; registration timeout TASK_FAILED",
      async () => {
        const offer3 = await nextOffer(sub);
        const badFetch = sleepingExecutor("ex-fetch", {
          command: { value: "sleep 60", uris: [{ value: "http://127.0.0.1:1/missing.sh" }] },
        });
        await sub.call(launch([offer3.id.value], [taskInfo("t-fetch", offer3, badFetch)]));
        const f = await nextUpdate(sub.events, "t-fetch", "TASK_FAILED");
        assertMatch(f.update.status.message, /missing\.sh/);
        await sub.call(ackFor(f));
      },
    );

    await sub.close();
  } finally {
    await env.close();
  }
});

Deno.test("local agent fails tasks whose executor never subscribes", async () => {
  const env = await startTestCluster({ agents: 1, executorRegistrationTimeoutMs: 300 });
  try {
    const sub = await subscribe(env.cluster.url);
    const offer = await nextOffer(sub);
    await sub.call(
      launch([offer.id.value], [taskInfo("t-slow", offer, sleepingExecutor("ex-slow"))]),
    );
    const u = await nextUpdate(sub.events, "t-slow", "TASK_FAILED", 5000);
    assertEquals(u.update.status.reason, "REASON_EXECUTOR_REGISTRATION_TIMEOUT");
    await sub.events.next((e) =>
      e.type === "FAILURE" && e.failure.executor_id?.value === "ex-slow"
    );
    await sub.close();
  } finally {
    await env.close();
  }
});

Deno.test("local master declares a stopped agent unreachable and a new one registers", async () => {
  const env = await startTestCluster({ agents: 2, agentPingTimeoutMs: 300 });
  try {
    const pa = await subscribe(env.cluster.url, {
      info: frameworkInfo({ capabilities: [{ type: "PARTITION_AWARE" }] }),
    });
    const agent0 = env.cluster.agent(0);
    const offer = await nextOffer(pa, agent0.id);
    await pa.call(
      launch([offer.id.value], [taskInfo("t-lost", offer, sleepingExecutor("ex-lost"))]),
    );
    await waitFor("executor", () => env.cluster.executor(0, pa.frameworkId, "ex-lost")?.pid);
    // Get an outstanding offer for agent 0 again: filters are cleared by REVIVE.
    await pa.call({ type: "REVIVE" });
    const outstanding = await nextOffer(pa, agent0.id);
    await env.cluster.stopAgent(0);
    const u = (await nextUpdate(pa.events, "t-lost", "TASK_UNREACHABLE", 5000)).update.status;
    assertEquals(u.reason, "REASON_AGENT_REMOVED");
    assertEquals(u.source, "SOURCE_MASTER");
    assertEquals(u.uuid, undefined);
    assert(u.unreachable_time.nanoseconds > 0);
    const rescind = await pa.events.next((e) => e.type === "RESCIND");
    assertEquals(rescind.rescind.offer_id.value, outstanding.id.value);
    const failure = await pa.events.next((e) => e.type === "FAILURE");
    assertEquals(failure.failure.agent_id.value, agent0.id);
    assertEquals(failure.failure.executor_id, undefined);
    await env.cluster.startAgent(0);
    const fresh = env.cluster.agent(0);
    assert(fresh.id !== agent0.id && fresh.running);
    assertEquals(fresh.ports, agent0.ports);
    await nextOffer(pa, fresh.id);
    await pa.call({
      type: "RECONCILE",
      reconcile: { tasks: [{ task_id: { value: "t-lost" }, agent_id: { value: agent0.id } }] },
    });
    const r = await pa.events.next((e) =>
      e.type === "UPDATE" && e.update.status.reason === "REASON_RECONCILIATION"
    );
    assertEquals(r.update.status.state, "TASK_UNREACHABLE");
    await pa.close();
  } finally {
    await env.close();
  }
});
