/**
 * `lib/mesos/executor_client.ts`: stout durations and the executor
 * environment, a real executor process built on `ExecutorClient` against
 * the local cluster (LAUNCH, reliable updates, MESSAGE, KILL, SHUTDOWN),
 * and an in-process client (refused updates, giving up without checkpoint).
 */

import type { ContentType } from "../lib/mesos/codec.ts";
import {
  ExecutorCallError,
  ExecutorClient,
  ExecutorEnvError,
  parseDuration,
  readExecutorEnv,
} from "../lib/mesos/executor_client.ts";
import type { ExecutorEvent } from "../lib/mesos/types.ts";
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import {
  ackFor,
  launch,
  type Msg,
  nextOffer,
  nextUpdate,
  sleepingExecutor,
  startTestCluster,
  subscribe,
  taskInfo,
} from "./_mesos_local.ts";
import { waitFor } from "./_util.ts";

const FIXTURE = new URL("./fixtures/client_executor.ts", import.meta.url).pathname;
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("stout durations parse into milliseconds; junk is refused naming the value", () => {
  assertEquals(parseDuration("15mins"), 900_000);
  assertEquals(parseDuration("2secs"), 2_000);
  assertEquals(parseDuration("1.5mins"), 90_000);
  assertEquals(parseDuration("100ms"), 100);
  assertEquals(parseDuration("1weeks"), 604_800_000);
  const error = assertThrows(() => parseDuration("5 minutes"));
  assert(error instanceof TypeError);
  assertMatch(error.message, /"5 minutes"/);
  assertThrows(() => parseDuration("-2secs"));
  assertThrows(() => parseDuration("secs"));
});

Deno.test("the executor environment is read with defaults; a missing or bad variable is named", () => {
  const base = {
    MESOS_FRAMEWORK_ID: "f1",
    MESOS_EXECUTOR_ID: "e1",
    MESOS_AGENT_ENDPOINT: "127.0.0.1:5051",
  };
  assertEquals(readExecutorEnv(base), {
    frameworkId: "f1",
    executorId: "e1",
    agentEndpoint: "127.0.0.1:5051",
    checkpoint: false,
    recoveryTimeoutMs: 900_000,
    subscriptionBackoffMaxMs: 2_000,
    shutdownGracePeriodMs: 5_000,
  });
  const checkpointing = readExecutorEnv({
    ...base,
    MESOS_CHECKPOINT: "1",
    MESOS_RECOVERY_TIMEOUT: "1.5mins",
    MESOS_SUBSCRIPTION_BACKOFF_MAX: "500ms",
    MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: "2secs",
  });
  assertEquals(checkpointing.checkpoint, true);
  assertEquals(checkpointing.recoveryTimeoutMs, 90_000);
  assertEquals(checkpointing.subscriptionBackoffMaxMs, 500);
  assertEquals(checkpointing.shutdownGracePeriodMs, 2_000);

  const { MESOS_FRAMEWORK_ID: _, ...noFramework } = base;
  const missing = assertThrows(() => readExecutorEnv(noFramework));
  assert(missing instanceof ExecutorEnvError);
  assertMatch(missing.message, /MESOS_FRAMEWORK_ID/);
  const bad = assertThrows(() => readExecutorEnv({ ...base, MESOS_RECOVERY_TIMEOUT: "soon" }));
  assert(bad instanceof ExecutorEnvError);
  assertMatch(bad.message, /MESOS_RECOVERY_TIMEOUT.*"soon"/);
  assertThrows(() => new ExecutorClient({ env: noFramework, onEvent: () => {} }));
});

for (const contentType of ["application/x-protobuf", "application/json"] as ContentType[]) {
  Deno.test(`an ExecutorClient executor runs, echoes, kills and shuts down (${contentType})`, async () => {
    const env = await startTestCluster({ agents: 1, statusUpdateRetryMs: 2_000 });
    try {
      const sub = await subscribe(env.cluster.url, { contentType });
      const offer = await nextOffer(sub);
      const executor = {
        executor_id: { value: "client" },
        type: "CUSTOM",
        command: {
          value: `exec "${Deno.execPath()}" run -A "${FIXTURE}"`,
          environment: { variables: [{ name: "CLIENT_CONTENT_TYPE", value: contentType }] },
        },
        resources: [{ name: "cpus", type: "SCALAR", scalar: { value: 0.1 } }],
      };
      const tasks = ["t1", "t2"].map((id) => taskInfo(id, offer, executor));
      assertEquals(await sub.call(launch([offer.id.value], tasks)), 202);
      const messages = () =>
        sub.events.events.filter((e: Msg) => e.type === "MESSAGE").map((e: Msg) =>
          new TextDecoder().decode(e.message.data)
        );

      for (const id of ["t1", "t2"]) {
        const running = await nextUpdate(sub.events, id, "TASK_RUNNING", 30_000);
        const status = running.update.status;
        assertEquals(status.source, "SOURCE_EXECUTOR");
        assertEquals(status.executor_id.value, "client");
        assertEquals(status.uuid.length, 16);
        // The executor heard ACKNOWLEDGED for exactly this update.
        const acked = `acked:${id}:${hex(status.uuid)}:`;
        const line = await waitFor(
          `the ${id} ack report`,
          () => messages().find((m: string) => m.startsWith(acked)),
          { timeoutMs: 10_000 },
        );
        assertEquals(await sub.call(ackFor(running)), 202);
        if (id === "t2") assertEquals(line, `${acked}0`);
      }
      const sandbox = env.cluster.executor(0, sub.frameworkId, "client")!.sandbox;

      const message = (text: string) =>
        sub.call({
          type: "MESSAGE",
          message: {
            agent_id: offer.agent_id,
            executor_id: { value: "client" },
            data: new TextEncoder().encode(text),
          },
        });
      assertEquals(await message("ping"), 202);
      await waitFor("the echo", () => messages().includes("echo:ping"), { timeoutMs: 10_000 });

      assertEquals(await sub.call({ type: "KILL", kill: { task_id: { value: "t1" } } }), 202);
      const killed = await nextUpdate(sub.events, "t1", "TASK_KILLED");
      assertEquals(killed.update.status.source, "SOURCE_EXECUTOR");
      assertEquals(await sub.call(ackFor(killed)), 202);

      assertEquals(
        await sub.call({
          type: "SHUTDOWN",
          shutdown: { executor_id: { value: "client" }, agent_id: offer.agent_id },
        }),
        202,
      );
      const last = await nextUpdate(sub.events, "t2", "TASK_KILLED");
      assertEquals(last.update.status.source, "SOURCE_EXECUTOR");
      assertEquals(await sub.call(ackFor(last)), 202);
      const failure = await sub.events.next(
        (e) => e.type === "FAILURE" && e.failure.executor_id?.value === "client",
        10_000,
        "FAILURE of the executor",
      );
      assertEquals(failure.failure.status ?? 0, 0, "the executor did not exit cleanly");
      const stdout = await Deno.readTextFile(`${sandbox}/stdout`);
      assertMatch(stdout, /shutdown with 0 unacknowledged/);
      assertEquals(env.cluster.pendingUpdates(sub.frameworkId), 0);
      await sub.close();
    } finally {
      await env.close();
    }
  });
}

Deno.test("an in-process ExecutorClient: a refused update is dropped; without checkpoint it gives up", async () => {
  const env = await startTestCluster({ agents: 1, executorShutdownGracePeriodMs: 300 });
  let client: ExecutorClient | undefined;
  try {
    const sub = await subscribe(env.cluster.url);
    const offer = await nextOffer(sub);
    const task = taskInfo("t", offer, sleepingExecutor("inproc"));
    assertEquals(await sub.call(launch([offer.id.value], [task])), 202);
    await waitFor(
      "the executor to be started",
      () => env.cluster.executor(0, sub.frameworkId, "inproc"),
    );

    const events: ExecutorEvent[] = [];
    const { promise: gaveUp, resolve } = Promise.withResolvers<string>();
    client = new ExecutorClient({
      env: {
        MESOS_FRAMEWORK_ID: sub.frameworkId,
        MESOS_EXECUTOR_ID: "inproc",
        MESOS_AGENT_ENDPOINT: env.cluster.agent(0).endpoint,
        MESOS_CHECKPOINT: "0",
      },
      contentType: "application/json",
      onEvent: (e) => void events.push(e),
      onGiveUp: (reason) => resolve(reason),
    });
    client.start();
    await waitFor("LAUNCH", () => events.find((e) => e.type === "LAUNCH"), { timeoutMs: 10_000 });
    assertEquals(events[0]?.type, "SUBSCRIBED");
    assert(client.subscribed);

    const refused = await assertRejects(() =>
      client!.update({ task_id: { value: "t" }, state: "TASK_STAGING" })
    );
    assert(refused instanceof ExecutorCallError);
    assertEquals(refused.status, 400);
    assertEquals(client.unacknowledgedUpdates.length, 0, "a refused update was kept");

    const status = await client.update({ task_id: { value: "t" }, state: "TASK_RUNNING" });
    const running = await nextUpdate(sub.events, "t", "TASK_RUNNING");
    assertEquals(hex(running.update.status.uuid), hex(status.uuid!));
    await waitFor("ACKNOWLEDGED", () => client!.unacknowledgedUpdates.length === 0);
    assertEquals(await sub.call(ackFor(running)), 202);

    assertEquals(
      await sub.call({
        type: "SHUTDOWN",
        shutdown: { executor_id: { value: "inproc" }, agent_id: offer.agent_id },
      }),
      202,
    );
    // The agent sends SHUTDOWN and ends the stream when it destroys the
    // container after the grace period; a client of a non-checkpointing
    // framework then gives up.
    assertMatch(await gaveUp, /does not checkpoint/);
    assert(!client.subscribed);
    await sub.close();
  } finally {
    await client?.stop();
    await env.close();
  }
});
