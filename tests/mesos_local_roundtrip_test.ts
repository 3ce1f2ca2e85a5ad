/**
 * Local Mesos cluster end to end: a real custom executor process fetched
 * over HTTP (protobuf and JSON), scheduler failover keeping tasks, and the
 * scheduler client's heartbeat watchdog against a frozen stream.
 */

import type { ContentType } from "../lib/mesos/codec.ts";
import { SchedulerClient, type SchedulerState } from "../lib/mesos/scheduler_client.ts";
import { assert, assertEquals } from "./_assert.ts";
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
  taskInfo,
} from "./_mesos_local.ts";
import { waitFor } from "./_util.ts";

const FIXTURE = new URL("./fixtures/echo_executor.ts", import.meta.url).pathname;

for (const contentType of ["application/x-protobuf", "application/json"] as ContentType[]) {
  Deno.test(`round trip with a fetched custom executor (${contentType})`, async () => {
    const script = `#!/bin/sh\nexec "${Deno.execPath()}" run -A "${FIXTURE}"\n`;
    const files = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) =>
        new URL(req.url).pathname === "/echo.sh"
          ? new Response(script)
          : new Response("not found", { status: 404 }),
    );
    const env = await startTestCluster({ agents: 1, statusUpdateRetryMs: 300 });
    try {
      const sub = await subscribe(env.cluster.url, { contentType });
      const offer = await nextOffer(sub);
      const executor = {
        executor_id: { value: "echo" },
        type: "CUSTOM",
        command: {
          value: "exec ./bin/echo-executor",
          uris: [{
            value: `http://127.0.0.1:${files.addr.port}/echo.sh`,
            executable: true,
            output_file: "bin/echo-executor",
          }],
          environment: { variables: [{ name: "ECHO_CONTENT_TYPE", value: contentType }] },
        },
        resources: [{ name: "cpus", type: "SCALAR", scalar: { value: 0.1 } }],
      };
      const task = taskInfo("echo-task", offer, executor, {
        resources: [
          { name: "cpus", type: "SCALAR", scalar: { value: 1 } },
          { name: "mem", type: "SCALAR", scalar: { value: 64 } },
          { name: "ports", type: "RANGES", ranges: { range: [{ begin: 31000, end: 31000 }] } },
        ],
      });
      assertEquals(await sub.call(launch([offer.id.value], [task])), 202);
      const running = await nextUpdate(sub.events, "echo-task", "TASK_RUNNING", 30_000);
      assertEquals(running.update.status.uuid.length, 16);
      assertEquals(await sub.call(ackFor(running)), 202);

      const sandbox = env.cluster.executor(0, sub.frameworkId, "echo")!.sandbox;
      const stat = await Deno.stat(`${sandbox}/bin/echo-executor`);
      assert(((stat.mode ?? 0) & 0o111) !== 0, "fetched file is not executable");
      const vars = JSON.parse(await Deno.readTextFile(`${sandbox}/env.json`));
      assertEquals(vars.MESOS_SANDBOX, sandbox);
      assertEquals(vars.MESOS_CHECKPOINT, "0");
      assertEquals(vars.MESOS_RECOVERY_TIMEOUT, undefined);

      assertEquals(
        await sub.call({
          type: "MESSAGE",
          message: {
            agent_id: offer.agent_id,
            executor_id: { value: "echo" },
            data: new TextEncoder().encode("ping"),
          },
        }),
        202,
      );
      const echo = await sub.events.next((e) => e.type === "MESSAGE", 10_000);
      assertEquals(new TextDecoder().decode(echo.message.data), "echo:ping");

      assertEquals(
        await sub.call({ type: "KILL", kill: { task_id: { value: "echo-task" } } }),
        202,
      );
      const killed = await nextUpdate(sub.events, "echo-task", "TASK_KILLED", 10_000);
      assertEquals(killed.update.status.source, "SOURCE_EXECUTOR");
      assertEquals(await sub.call(ackFor(killed)), 202);
      await waitFor(
        "task forgotten",
        () => env.cluster.taskState(sub.frameworkId, "echo-task") === undefined,
      );
      await new Promise((r) => setTimeout(r, 800)); // > 2 retry intervals
      const kills = sub.events.events.filter((e: Msg) =>
        e.type === "UPDATE" && e.update.status.state === "TASK_KILLED"
      );
      assertEquals(kills.length, 1, "TASK_KILLED was resent after its ACK");
      assertEquals(env.cluster.pendingUpdates(sub.frameworkId), 0);

      assertEquals(await sub.call({ type: "TEARDOWN" }), 202);
      await sub.events.done;
      await waitFor(
        "executor gone",
        () => env.cluster.executor(0, sub.frameworkId, "echo") === undefined,
        {
          timeoutMs: 10_000,
        },
      );
    } finally {
      await env.close();
      await files.shutdown();
    }
  });
}

Deno.test("a scheduler whose stream dies re-subscribes within the failover timeout and keeps its tasks", async () => {
  const env = await startTestCluster({ agents: 1 }); // update retries every 10 s: resends below are immediate
  try {
    const first = await subscribe(env.cluster.url, {
      info: frameworkInfo({ failover_timeout: 30 }),
    });
    const fid = first.frameworkId;
    const offer = await nextOffer(first);
    await first.call(
      launch([offer.id.value], [taskInfo("kept", offer, sleepingExecutor("ex-kept"))]),
    );
    await waitFor(
      "executor",
      () => env.cluster.executor(0, fid, "ex-kept")?.state === "registering",
    );
    const conn = await subscribeExecutor(env.cluster.agent(0).endpoint, fid, "ex-kept");
    await conn.events.next((e) => e.type === "LAUNCH");
    await conn.call(executorUpdate("kept", "TASK_RUNNING"));
    const u = await nextUpdate(first.events, "kept", "TASK_RUNNING");
    await first.close(); // not acknowledged
    await waitFor("disconnect noticed", () => !env.cluster.isConnected(fid));
    assertEquals(await first.call({ type: "REVIVE" }), 403);
    assertEquals(env.cluster.taskState(fid, "kept"), "TASK_RUNNING");

    const second = await subscribe(env.cluster.url, {
      info: frameworkInfo({ failover_timeout: 30 }),
      frameworkId: fid,
    });
    assertEquals(second.frameworkId, fid);
    const resent = await nextUpdate(second.events, "kept", "TASK_RUNNING", 2000);
    assertEquals(resent.update.status.uuid, u.update.status.uuid);
    await second.call(ackFor(resent));
    await second.call({ type: "RECONCILE", reconcile: { tasks: [] } });
    const r = await second.events.next((e) =>
      e.type === "UPDATE" && e.update.status.reason === "REASON_RECONCILIATION"
    );
    assertEquals(r.update.status.state, "TASK_RUNNING");
    await conn.close();
    await second.close();
  } finally {
    await env.close();
  }
});

Deno.test("the scheduler client's heartbeat watchdog re-subscribes when the stream goes silent", async () => {
  const env = await startTestCluster({ agents: 1, heartbeatIntervalSeconds: 0.2 });
  const states: SchedulerState[] = [];
  const client = new SchedulerClient({
    master: env.cluster.url,
    frameworkInfo: { user: "test", name: "watchdog", failover_timeout: 30 },
    heartbeatMissLimit: 2,
    backoff: { minMs: 50, maxMs: 200 },
    onEvent: () => {},
    onStateChange: (s) => states.push(s),
  });
  try {
    client.start();
    await waitFor("subscribed", () => client.state === "subscribed" && client.frameworkId, {
      timeoutMs: 10_000,
    });
    const fid = client.frameworkId!;
    env.cluster.freezeSchedulerStream(fid);
    const before = states.length;
    await waitFor(
      "re-subscription",
      () => states.slice(before).includes("subscribed") && env.cluster.isConnected(fid),
      { timeoutMs: 10_000 },
    );
    assertEquals(client.frameworkId, fid);
  } finally {
    await client.stop();
    await env.close();
  }
});
