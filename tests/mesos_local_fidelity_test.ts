/**
 * Where a client can tell the local master from Mesos: one event per HTTP
 * chunk on the scheduler stream, `allocation_info` only for MULTI_ROLE
 * frameworks, static reservations offered only to their role (in the
 * framework's reservation format) and enforced on ACCEPT, and command tasks
 * run by a command executor.
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
  sleepingExecutor,
  startTestCluster,
  subscribe,
  type Subscription,
  taskInfo,
} from "./_mesos_local.ts";
import { reservePortRange } from "./_ports.ts";
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

/** The reservation of the tests below, on the port range from `B`. */
function reserved(B: number): string {
  return `cpus(redis):2;mem(redis):1024;ports(redis):[${B}-${B + 9}]`;
}

Deno.test("static reservations are offered only to frameworks in their role, as Mesos writes them", async () => {
  const range = reservePortRange(100);
  const B = range.base;
  const env = await startTestCluster({
    agents: 1,
    cpus: 3,
    mem: 2048,
    portsBase: B,
    portsPerAgent: 100,
    reserved: [reserved(B)],
  });
  try {
    // Without RESERVATION_REFINEMENT: the pre-refinement format (`role`).
    const legacy = await subscribe(env.cluster.url, {
      info: frameworkInfo({ roles: ["redis"], capabilities: [{ type: "MULTI_ROLE" }] }),
    });
    const offer = await nextOffer(legacy);
    assertEquals(offer.allocation_info, { role: "redis" });
    const show = (o: Msg) =>
      o.resources.map((r: Msg) =>
        `${r.name}:${
          r.scalar?.value ?? JSON.stringify(r.ranges.range)
        } role=${r.role} reservations=${
          JSON.stringify(r.reservations)
        } allocated=${r.allocation_info?.role}`
      ).sort();
    assertEquals(show(offer), [
      "cpus:1 role=* reservations=undefined allocated=redis",
      "cpus:2 role=redis reservations=undefined allocated=redis",
      "mem:1024 role=* reservations=undefined allocated=redis",
      "mem:1024 role=redis reservations=undefined allocated=redis",
      `ports:[{"begin":${B},"end":${B + 9}}] role=redis reservations=undefined allocated=redis`,
      `ports:[{"begin":${B + 10},"end":${B + 99}}] role=* reservations=undefined allocated=redis`,
    ]);
    await legacy.close();

    // With RESERVATION_REFINEMENT: a `reservations` stack of one STATIC entry.
    const refined = await subscribe(env.cluster.url, {
      info: frameworkInfo({
        roles: ["redis"],
        capabilities: [{ type: "MULTI_ROLE" }, { type: "RESERVATION_REFINEMENT" }],
      }),
    });
    const again = await nextOffer(refined, undefined, 20_000);
    assertEquals(show(again), [
      "cpus:1 role=undefined reservations=undefined allocated=redis",
      'cpus:2 role=undefined reservations=[{"type":"STATIC","role":"redis"}] allocated=redis',
      'mem:1024 role=undefined reservations=[{"type":"STATIC","role":"redis"}] allocated=redis',
      "mem:1024 role=undefined reservations=undefined allocated=redis",
      `ports:[{"begin":${B},"end":${
        B + 9
      }}] role=undefined reservations=[{"type":"STATIC","role":"redis"}] allocated=redis`,
      `ports:[{"begin":${B + 10},"end":${
        B + 99
      }}] role=undefined reservations=undefined allocated=redis`,
    ]);
    await refined.close();

    // A framework in another role never sees the reserved part.
    const other = await subscribe(env.cluster.url);
    const plain = await nextOffer(other, undefined, 20_000);
    assertEquals(show(plain), [
      "cpus:1 role=* reservations=undefined allocated=undefined",
      "mem:1024 role=* reservations=undefined allocated=undefined",
      `ports:[{"begin":${B + 10},"end":${
        B + 99
      }}] role=* reservations=undefined allocated=undefined`,
    ]);
    await other.close();
  } finally {
    await env.close();
    range.release();
  }
});

Deno.test("ACCEPT: tasks must use reserved and unreserved resources as offered (TASK_ERROR otherwise)", async () => {
  const range = reservePortRange(100);
  const B = range.base;
  const env = await startTestCluster({
    agents: 1,
    cpus: 3,
    mem: 2048,
    portsBase: B,
    portsPerAgent: 100,
    reserved: [reserved(B)],
  });
  const sub = await subscribe(env.cluster.url, {
    info: frameworkInfo({ roles: ["redis"], capabilities: [{ type: "MULTI_ROLE" }] }),
  });
  try {
    const cpus = (value: number, role?: string) => ({
      name: "cpus",
      type: "SCALAR",
      scalar: { value },
      ...(role ? { role } : {}),
    });
    const mem = (value: number, role?: string) => ({
      name: "mem",
      type: "SCALAR",
      scalar: { value },
      ...(role ? { role } : {}),
    });
    const port = (p: number, role?: string) => ({
      name: "ports",
      type: "RANGES",
      ranges: { range: [{ begin: p, end: p }] },
      ...(role ? { role } : {}),
    });
    const refused: [string, Msg[], RegExp][] = [
      // 1.5 unreserved cpus (with the executor's 0.1): only 1 is unreserved,
      // the other 2 are reserved.
      [
        "as-unreserved",
        [cpus(1.4), mem(64)],
        /asks for 1.5 unreserved cpus, but the offers hold 1 \(the offers hold cpus reserved for role "redis"\)/,
      ],
      // A reserved port asked for as unreserved, and the other way round.
      [
        "port-unreserved",
        [cpus(0.1), mem(64), port(B)],
        new RegExp(
          `asks for unreserved ports \\[${B}-${B}\\], but the offers hold \\[${B + 10}-${
            B + 99
          }\\]`,
        ),
      ],
      [
        "port-reserved",
        [cpus(0.1), mem(64), port(B + 50, "redis")],
        new RegExp(`asks for ports reserved for role "redis" \\[${B + 50}-${B + 50}\\]`),
      ],
      // More reserved than there is.
      [
        "too-much",
        [cpus(2.5, "redis"), mem(64)],
        /asks for 2.5 cpus reserved for role "redis", but the offers hold 2/,
      ],
      // Reserved for a role the offer is not for.
      [
        "other-role",
        [cpus(0.1, "web"), mem(64)],
        /reserved for role "web", but the offer is allocated to role "redis"/,
      ],
    ];
    for (const [id, resources, want] of refused) {
      const offer = await nextOffer(sub, undefined, 20_000);
      const task = taskInfo(
        id,
        offer,
        sleepingExecutor(`ex-${id}`, {
          resources: [cpus(0.1), mem(32)],
        }),
        { resources },
      );
      assertEquals(await sub.call(launch([offer.id.value], [task], { refuse_seconds: 0 })), 202);
      const u = await nextUpdate(sub.events, id, "TASK_ERROR");
      assertEquals(u.update.status.reason, "REASON_TASK_INVALID");
      assertMatch(u.update.status.message, want);
      assertEquals(env.cluster.taskState(sub.frameworkId, id), undefined, "not launched");
    }
    // Reserved resources used as offered launch, next to unreserved ones,
    // and the executor may use reserved ones too.
    const offer = await nextOffer(sub, undefined, 20_000);
    const task = taskInfo(
      "fits",
      offer,
      sleepingExecutor("ex-fits", {
        resources: [cpus(0.1, "redis"), mem(32, "redis")],
      }),
      {
        resources: [
          cpus(1.9, "redis"),
          cpus(1),
          mem(990, "redis"),
          port(B, "redis"),
          port(B + 10),
        ],
      },
    );
    assertEquals(await sub.call(launch([offer.id.value], [task], { refuse_seconds: 0 })), 202);
    // The executor (a sleep) reports nothing; the master tracks the task
    // from the launch on, and would have sent TASK_ERROR instead.
    await waitFor(
      "the task to be staged",
      () => env.cluster.taskState(sub.frameworkId, "fits") !== undefined,
    );
    assertEquals(
      sub.events.events.filter((e: Msg) => e.update?.status?.task_id?.value === "fits"),
      [],
    );
    const [seen] = env.cluster.tasks(sub.frameworkId);
    assertEquals(
      seen!.resources.map((r: Msg) => `${r.name}:${r.role ?? "*"}:${r.allocation_info?.role}`),
      [
        "cpus:redis:redis",
        "cpus:*:redis",
        "mem:redis:redis",
        "ports:redis:redis",
        "ports:*:redis",
      ],
    );
    // What is left is offered again, reserved and unreserved apart.
    const rest = await nextOffer(sub, undefined, 20_000);
    assertEquals(
      rest.resources.map((r: Msg) =>
        `${r.name}(${r.role}):${r.scalar?.value ?? JSON.stringify(r.ranges.range)}`
      ),
      [
        "mem(*):1024",
        "mem(redis):2",
        `ports(*):[{"begin":${B + 11},"end":${B + 99}}]`,
        `ports(redis):[{"begin":${B + 1},"end":${B + 9}}]`,
      ],
    );
  } finally {
    await sub.close();
    await env.close();
    range.release();
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
