/**
 * Where a client can tell the local master from Mesos: one event per HTTP
 * chunk on the scheduler stream, `allocation_info` only for MULTI_ROLE
 * frameworks, and command tasks run by a command executor.
 */
import { decode } from "../lib/mesos/codec.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  ackFor,
  frameworkInfo,
  launch,
  type Msg,
  nextOffer,
  nextUpdate,
  startTestCluster,
  subscribe,
  type Subscription,
} from "./_mesos_local.ts";
import { waitFor } from "./_util.ts";

/** Reads the raw chunked body of a SUBSCRIBE response until `count` chunks came. */
async function rawChunks(url: string, body: string, count: number): Promise<Uint8Array[]> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const request = `POST /api/v1/scheduler HTTP/1.1\r\nHost: ${hostname}\r\n` +
    `Content-Type: application/json\r\nAccept: application/json\r\n` +
    `Content-Length: ${new TextEncoder().encode(body).length}\r\n\r\n${body}`;
  await conn.write(new TextEncoder().encode(request));
  let buf = new Uint8Array(0);
  const more = async () => {
    const b = new Uint8Array(65536);
    const n = await conn.read(b);
    if (n === null) throw new Error("The master closed the stream");
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(b.subarray(0, n), buf.length);
    buf = next;
  };
  const indexOf = (seq: string, from = 0) => {
    const s = new TextEncoder().encode(seq);
    outer: for (let i = from; i + s.length <= buf.length; i++) {
      for (let j = 0; j < s.length; j++) if (buf[i + j] !== s[j]) continue outer;
      return i;
    }
    return -1;
  };
  try {
    while (indexOf("\r\n\r\n") < 0) await more();
    const head = new TextDecoder().decode(buf.subarray(0, indexOf("\r\n\r\n")));
    assertMatch(head, /^HTTP\/1\.1 200/);
    assertMatch(head, /transfer-encoding: chunked/i);
    let at = indexOf("\r\n\r\n") + 4;
    const chunks: Uint8Array[] = [];
    while (chunks.length < count) {
      while (indexOf("\r\n", at) < 0) await more();
      const line = indexOf("\r\n", at);
      const size = parseInt(new TextDecoder().decode(buf.subarray(at, line)), 16);
      while (buf.length < line + 2 + size + 2) await more();
      chunks.push(buf.slice(line + 2, line + 2 + size));
      at = line + 2 + size + 2;
    }
    return chunks;
  } finally {
    conn.close();
  }
}

Deno.test("the local master writes one event per HTTP chunk, as Mesos does", async () => {
  const env = await startTestCluster({ agents: 2, heartbeatIntervalSeconds: 0.05 });
  try {
    const body = JSON.stringify({
      type: "SUBSCRIBE",
      subscribe: { framework_info: frameworkInfo() },
    });
    // SUBSCRIBED and the first HEARTBEAT are sent back to back, then offers
    // of two agents and more heartbeats.
    const chunks = await rawChunks(env.cluster.url, body, 8);
    const types: string[] = [];
    for (const chunk of chunks) {
      const text = new TextDecoder().decode(chunk);
      const newline = text.indexOf("\n");
      const length = Number(text.slice(0, newline));
      assertEquals(
        chunk.length - newline - 1,
        length,
        `one whole RecordIO record per chunk: ${JSON.stringify(text)}`,
      );
      types.push(
        decode<Msg>("mesos.v1.scheduler.Event", chunk.subarray(newline + 1), "application/json")
          .type,
      );
    }
    assertEquals(types.slice(0, 2), ["SUBSCRIBED", "HEARTBEAT"]);
    assert(types.includes("OFFERS"), `offers among ${types}`);
  } finally {
    await env.close();
  }
});

Deno.test("offers carry allocation_info only for frameworks with MULTI_ROLE", async () => {
  const env = await startTestCluster({ agents: 1 });
  try {
    const multi = await subscribe(env.cluster.url, {
      info: frameworkInfo({ roles: ["*"], capabilities: [{ type: "MULTI_ROLE" }] }),
    });
    const offer = await nextOffer(multi);
    assertEquals(offer.allocation_info, { role: "*" });
    assert(offer.resources.every((r: Msg) => r.allocation_info?.role === "*"));
    await multi.close();
    const plain = await subscribe(env.cluster.url);
    const other = await nextOffer(plain, undefined, 20_000);
    assertEquals(other.allocation_info, undefined);
    assert(other.resources.every((r: Msg) => r.allocation_info === undefined));
    await plain.close();
  } finally {
    await env.close();
  }
});

/** A command task (CommandInfo, no ExecutorInfo) for `offer`. */
function commandTask(id: string, offer: Msg, command: Msg, extra: Msg = {}): Msg {
  return {
    name: id,
    task_id: { value: id },
    agent_id: offer.agent_id,
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: 0.1 } },
      { name: "mem", type: "SCALAR", scalar: { value: 32 } },
    ],
    command,
    ...extra,
  };
}

/** Waits for the update of `taskId` in `state`, ACKs it and returns its status. */
async function acked(sub: Subscription, taskId: string, state: string): Promise<Msg> {
  const u = await nextUpdate(sub.events, taskId, state, 60_000);
  assertEquals(await sub.call(ackFor(u)), 202);
  return u.update.status;
}

Deno.test("command tasks run under a command executor: FINISHED, FAILED and KILLED as in Mesos", async (t) => {
  const env = await startTestCluster({ agents: 1 });
  const sub = await subscribe(env.cluster.url, {
    info: frameworkInfo({ capabilities: [{ type: "TASK_KILLING_STATE" }] }),
  });
  try {
    await t.step("a command that exits 0 is TASK_FINISHED", async () => {
      const offer = await nextOffer(sub, undefined, 20_000);
      const cmd = {
        value: 'echo "in $MESOS_SANDBOX with $GREETING" > out.txt',
        environment: { variables: [{ name: "GREETING", value: "hello" }] },
      };
      assertEquals(
        await sub.call(launch([offer.id.value], [commandTask("c-ok", offer, cmd)])),
        202,
      );
      const starting = await acked(sub, "c-ok", "TASK_STARTING");
      assertEquals(starting.source, "SOURCE_EXECUTOR");
      assertEquals(starting.executor_id.value, "c-ok", "the executor id is the task id");
      await acked(sub, "c-ok", "TASK_RUNNING");
      const done = await acked(sub, "c-ok", "TASK_FINISHED");
      assertEquals(done.message, "Command exited with status 0");
      const runs =
        `${env.workDir}/agents/${offer.agent_id.value}/frameworks/${sub.frameworkId}/executors/c-ok/runs`;
      const [run] = await Array.fromAsync(Deno.readDir(runs));
      const sandbox = `${runs}/${run!.name}`;
      assertEquals(await Deno.readTextFile(`${sandbox}/out.txt`), `in ${sandbox} with hello\n`);
    });

    await t.step("a command that exits 3 is TASK_FAILED with its status", async () => {
      const offer = await nextOffer(sub, undefined, 20_000);
      const task = commandTask("c-fail", offer, { value: "exit 3" });
      assertEquals(await sub.call(launch([offer.id.value], [task])), 202);
      await acked(sub, "c-fail", "TASK_STARTING");
      await acked(sub, "c-fail", "TASK_RUNNING");
      const failed = await acked(sub, "c-fail", "TASK_FAILED");
      assertEquals(failed.message, "Command exited with status 3");
    });

    await t.step("KILL: TASK_KILLING, SIGTERM, then TASK_KILLED", async () => {
      const offer = await nextOffer(sub, undefined, 20_000);
      const task = commandTask("c-kill", offer, { value: "exec sleep 120" });
      assertEquals(await sub.call(launch([offer.id.value], [task])), 202);
      await acked(sub, "c-kill", "TASK_STARTING");
      await acked(sub, "c-kill", "TASK_RUNNING");
      assertEquals(await sub.call({ type: "KILL", kill: { task_id: { value: "c-kill" } } }), 202);
      await acked(sub, "c-kill", "TASK_KILLING");
      const killed = await acked(sub, "c-kill", "TASK_KILLED");
      assertEquals(killed.message, "Command terminated with signal SIGTERM");
    });

    await t.step(
      "KILL of a command that ignores SIGTERM: SIGKILL after the grace period",
      async () => {
        const offer = await nextOffer(sub, undefined, 20_000);
        const task = commandTask("c-stubborn", offer, {
          value: "trap '' TERM; touch trapped; exec sleep 120",
        }, { kill_policy: { grace_period: { nanoseconds: 300_000_000 } } });
        assertEquals(await sub.call(launch([offer.id.value], [task])), 202);
        await acked(sub, "c-stubborn", "TASK_STARTING");
        await acked(sub, "c-stubborn", "TASK_RUNNING");
        // Kill only once the shell ignores SIGTERM (RUNNING comes when it starts).
        const runs =
          `${env.workDir}/agents/${offer.agent_id.value}/frameworks/${sub.frameworkId}/executors/c-stubborn/runs`;
        await waitFor("the command to ignore SIGTERM", async () => {
          for await (const run of Deno.readDir(runs)) {
            if (await Deno.stat(`${runs}/${run.name}/trapped`).then(() => true, () => false)) {
              return true;
            }
          }
          return false;
        }, { timeoutMs: 60_000 });
        assertEquals(
          await sub.call({ type: "KILL", kill: { task_id: { value: "c-stubborn" } } }),
          202,
        );
        await acked(sub, "c-stubborn", "TASK_KILLING");
        const killed = await acked(sub, "c-stubborn", "TASK_KILLED");
        assertEquals(killed.message, "Command terminated with signal SIGKILL");
      },
    );
  } finally {
    await sub.close();
    await env.close();
  }
});
