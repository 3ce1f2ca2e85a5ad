import assert from "node:assert/strict";
import {
  encodeTaskSpec,
  type RedisTaskSpec,
  type RedisTaskStatusData,
  statusStats,
} from "../lib/executor_messages.ts";
import {
  RedisExecutor,
  type RedisExecutorOptions,
  type TaskStatusUpdate,
} from "../lib/executor/mod.ts";
import type { ExecutorEvent } from "../lib/mesos/types.ts";
import { RedisClient, RedisProcess } from "../lib/redis/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { command, launch, RecordingDriver, subscribed } from "./_executor.ts";

function statusData(update: TaskStatusUpdate | undefined): RedisTaskStatusData {
  assert.ok(update?.data, "update carries data");
  return JSON.parse(new TextDecoder().decode(update.data));
}

function spec(procId: string, role: "master" | "slave", master?: number): RedisTaskSpec {
  return {
    instance: "inst",
    procId,
    role,
    port: freePort(),
    capacityMB: 12,
    dataDir: `redis-${procId}`,
    ...(master ? { master: { host: "127.0.0.1", port: master } } : {}),
  };
}

async function portClosed(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return false;
  } catch {
    return true;
  }
}

async function pidOf(port: number): Promise<number> {
  const client = new RedisClient({ port });
  try {
    return Number((await client.info()).fields.process_id);
  } finally {
    client.close();
  }
}

async function withExecutor(
  fn: (ex: RedisExecutor, driver: RecordingDriver) => Promise<void>,
  options: Partial<RedisExecutorOptions> = {},
): Promise<void> {
  const sandbox = await tempDir("executor");
  const driver = new RecordingDriver();
  const ex = new RedisExecutor({
    driver,
    sandbox,
    bind: "127.0.0.1",
    statsIntervalMs: 200,
    checkIntervalMs: 200,
    checkTimeoutMs: 500,
    maxFailures: 3,
    stopTimeoutMs: 3000,
    idleTimeoutMs: 0,
    ...options,
  });
  ex.handle(subscribed());
  try {
    await fn(ex, driver);
  } finally {
    await ex.abandon();
    await ex.flush(1000);
    await Deno.remove(sandbox, { recursive: true });
  }
}

const WAIT = { timeoutMs: 20_000, intervalMs: 50 };

Deno.test("RedisExecutor runs, reports, promotes, re-points and fences redis tasks", async (t) => {
  await withExecutor(async (ex, driver) => {
    const m = spec("p1", "master");
    const unreachable = freePort();
    const s1 = spec("p2", "slave", unreachable);
    const s2 = spec("p3", "slave", m.port);

    await t.step("a master goes STARTING then RUNNING with {host, port}", async () => {
      ex.handle(launch("m", encodeTaskSpec(m)));
      await waitFor("master RUNNING", () => driver.last("m", "TASK_RUNNING"), WAIT);
      assert.deepEqual(driver.states("m"), ["TASK_STARTING", "TASK_RUNNING"]);
      const data = statusData(driver.last("m", "TASK_RUNNING"));
      assert.deepEqual({ host: data.host, port: data.port }, { host: "127.0.0.1", port: m.port });
      // The stats of the check that found it ready go with it.
      assert.equal(data.stats?.taskId, "m");
      assert.equal(data.stats?.role, "master");
      assert.equal(typeof data.statsAt, "number");
    });

    await t.step("a slave is RUNNING only once its initial sync is done", async () => {
      ex.handle(launch("s1", encodeTaskSpec(s1)));
      await waitFor("slave STARTING", () => driver.last("s1", "TASK_STARTING"), WAIT);
      // Its master does not exist: it answers PING but never syncs.
      await waitFor("slave stats", () => driver.latestStats("s1"), WAIT);
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(driver.states("s1"), ["TASK_STARTING"]);
      assert.equal(driver.latestStats("s1")?.inSync, false);
      ex.handle(command({
        kind: "replicaof",
        commandId: "c1",
        taskId: "s1",
        host: "127.0.0.1",
        port: m.port,
      }));
      await waitFor("slave RUNNING", () => driver.last("s1", "TASK_RUNNING"), WAIT);
      assert.deepEqual(driver.result("c1"), { kind: "result", commandId: "c1", ok: true });
      // Its TASK_RUNNING says it is in sync, as the scheduler reads it.
      const carried = statusStats("s1", driver.last("s1", "TASK_RUNNING")?.data);
      assert.equal(carried?.stats.role, "slave");
      assert.equal(carried?.stats.inSync, true);
      assert.ok(Math.abs(carried!.at - Date.now()) < 60_000, "read just now");
    });

    await t.step("stats messages carry every task", async () => {
      ex.handle(launch("s2", encodeTaskSpec(s2)));
      await waitFor("second slave RUNNING", () => driver.last("s2", "TASK_RUNNING"), WAIT);
      const stats = await waitFor("stats of all three", () => {
        const last = driver.messages.findLast((x) => x.kind === "stats");
        return last?.kind === "stats" && last.stats.length === 3 &&
            last.stats.find((s) => s.taskId === "m")?.connectedSlaves === 2 &&
            last.stats.every((s) => s.inSync)
          ? last.stats
          : undefined;
      }, WAIT);
      const master = stats.find((s) => s.taskId === "m")!;
      assert.equal(master.role, "master");
      assert.equal(master.maxMemory, 12 * 1024 * 1024);
      const slave = stats.find((s) => s.taskId === "s2")!;
      assert.equal(slave.role, "slave");
      assert.equal(slave.maxMemory, 12 * 1024 * 1024);
    });

    await t.step("promote answers the offset; replicaof re-points the other slave", async () => {
      const client = new RedisClient({ port: m.port });
      await client.call("SET", ["k", "before"]);
      client.close();
      ex.handle(command({ kind: "promote", commandId: "c2", taskId: "s1" }));
      const result = await waitFor("promote result", () => driver.result("c2"), WAIT);
      assert.equal(result.kind === "result" && result.ok, true, JSON.stringify(result));
      assert.equal(typeof (result.kind === "result" && result.replOffset), "number");
      assert.equal(driver.latestStats("s1")?.role, "master");
      ex.handle(command({
        kind: "replicaof",
        commandId: "c3",
        taskId: "s2",
        host: "127.0.0.1",
        port: s1.port,
      }));
      await waitFor("replicaof result", () => driver.result("c3"), WAIT);
      const s1c = new RedisClient({ port: s1.port });
      const s2c = new RedisClient({ port: s2.port });
      try {
        // The new master takes writes once its re-pointed slave is attached
        // (min-replicas-to-write 1): until then it answers NOREPLICAS.
        await waitFor("the new master to take a write", async () => {
          try {
            await s1c.call("SET", ["k", "after"]);
            return true;
          } catch (error) {
            if (/^NOREPLICAS/.test((error as Error).message)) return false;
            throw error;
          }
        }, WAIT);
        await waitFor(
          "write on new master reaches slave",
          async () => (await s2c.call("GET", ["k"])) === "after",
          WAIT,
        );
      } finally {
        s1c.close();
        s2c.close();
      }
    });

    await t.step("fence kills the old master: TASK_KILLED and the process gone", async () => {
      ex.handle(command({ kind: "fence", commandId: "c4", taskId: "m" }));
      const result = await waitFor("fence result", () => driver.result("c4"), WAIT);
      assert.equal(result.kind === "result" && result.ok, true);
      assert.equal(statusData(driver.last("m", "TASK_KILLED")).cause, "fenced");
      assert.ok(await portClosed(m.port));
    });

    await t.step("commands for unknown tasks fail with a message naming the task", async () => {
      ex.handle(command({ kind: "promote", commandId: "c5", taskId: "nope" }));
      const result = await waitFor("promote result", () => driver.result("c5"), WAIT);
      assert.deepEqual(result, {
        kind: "result",
        commandId: "c5",
        ok: false,
        error: 'Cannot promote task "nope": it does not run here',
      });
    });

    await t.step("KILL stops the task gracefully: TASK_KILLED and the process gone", async () => {
      ex.handle({ type: "KILL", kill: { task_id: { value: "s2" } } });
      const killed = await waitFor("KILLED", () => driver.last("s2", "TASK_KILLED"), WAIT);
      assert.equal(statusData(killed).cause, "killed");
      assert.equal(statusData(killed).exitCode, 0);
      assert.ok(await portClosed(s2.port));
      assert.deepEqual(ex.taskIds, ["s1"]);
    });

    await t.step("SHUTDOWN stops every task with TASK_KILLED", async () => {
      ex.handle({ type: "SHUTDOWN" });
      await ex.idle();
      assert.ok(driver.last("s1", "TASK_KILLED"));
      assert.deepEqual(ex.taskIds, []);
      assert.ok(await portClosed(s1.port));
    });
  }, { startingUpdateDelayMs: 0 });
});

Deno.test("RedisExecutor skips TASK_STARTING for a task that is RUNNING or ended within startingUpdateDelayMs", async (t) => {
  await withExecutor(async (ex, driver) => {
    await t.step("a master goes from STAGING straight to RUNNING", async () => {
      const m = spec("p1", "master");
      ex.handle(launch("m", encodeTaskSpec(m)));
      await waitFor("master RUNNING", () => driver.last("m", "TASK_RUNNING"), WAIT);
      assert.deepEqual(driver.states("m"), ["TASK_RUNNING"]);
    });

    await t.step("a start that fails sends only TASK_FAILED", async () => {
      const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        const m = { ...spec("p2", "master"), port: (taken.addr as Deno.NetAddr).port };
        ex.handle(launch("f", encodeTaskSpec(m)));
        const failed = await waitFor("FAILED", () => driver.last("f", "TASK_FAILED"), WAIT);
        assert.equal(statusData(failed).cause, "start_failed");
        assert.deepEqual(driver.states("f"), ["TASK_FAILED"]);
      } finally {
        taken.close();
      }
    });
  }, { startingUpdateDelayMs: 60_000 });
});

Deno.test("RedisExecutor sends TASK_STARTING for a task still starting after startingUpdateDelayMs", async () => {
  await withExecutor(async (ex, driver) => {
    // Its master does not exist: the slave never syncs, so it stays starting.
    const s = spec("p1", "slave", freePort());
    ex.handle(launch("s", encodeTaskSpec(s)));
    await waitFor("slave STARTING", () => driver.last("s", "TASK_STARTING"), WAIT);
    assert.deepEqual(driver.states("s"), ["TASK_STARTING"]);
    ex.handle({ type: "KILL", kill: { task_id: { value: "s" } } });
    await waitFor("KILLED", () => driver.last("s", "TASK_KILLED"), WAIT);
    assert.deepEqual(driver.states("s"), ["TASK_STARTING", "TASK_KILLED"]);
  }, { startingUpdateDelayMs: 300 });
});

Deno.test("RedisExecutor refuses a negative startingUpdateDelayMs", () => {
  assert.throws(
    () =>
      new RedisExecutor({
        driver: new RecordingDriver(),
        sandbox: "/tmp",
        startingUpdateDelayMs: -1,
      }),
    /option "startingUpdateDelayMs" must be 0 or more, but got -1/,
  );
});

Deno.test("RedisExecutor reports a redis-server killed by SIGKILL as TASK_FAILED", async () => {
  await withExecutor(async (ex, driver) => {
    const s = spec("p1", "master");
    ex.handle(launch("t", encodeTaskSpec(s)));
    await waitFor("RUNNING", () => driver.last("t", "TASK_RUNNING"), WAIT);
    Deno.kill(await pidOf(s.port), "SIGKILL");
    const failed = await waitFor("FAILED", () => driver.last("t", "TASK_FAILED"), WAIT);
    assert.match(
      failed.message ?? "",
      /^redis-server \(pid \d+, port \d+\) was killed by SIGKILL$/,
    );
    assert.deepEqual(statusData(failed), {
      host: "127.0.0.1",
      port: s.port,
      cause: "exited",
      signal: "SIGKILL",
    });
    assert.deepEqual(ex.taskIds, []);
  });
});

Deno.test("RedisExecutor kills a hung (SIGSTOP) redis-server and reports TASK_FAILED", async () => {
  await withExecutor(async (ex, driver) => {
    const s = spec("p1", "master");
    ex.handle(launch("t", encodeTaskSpec(s)));
    await waitFor("RUNNING", () => driver.last("t", "TASK_RUNNING"), WAIT);
    const pid = await pidOf(s.port);
    Deno.kill(pid, "SIGSTOP");
    const failed = await waitFor("FAILED", () => driver.last("t", "TASK_FAILED"), WAIT);
    assert.match(failed.message ?? "", /^redis-server stopped answering/);
    assert.equal(statusData(failed).cause, "hung");
    assert.ok(await portClosed(s.port));
  });
});

Deno.test("RedisExecutor fails a task whose TaskInfo.data is bad or clashes, naming the problem", async () => {
  await withExecutor(async (ex, driver) => {
    const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    const good = spec("p1", "master");
    const cases: [string, Uint8Array | undefined, string][] = [
      ["none", undefined, 'Cannot launch task "none": TaskInfo.data is missing'],
      [
        "text",
        new TextEncoder().encode("{oops"),
        'Cannot launch task "text": TaskInfo.data is not JSON',
      ],
      [
        "port",
        bytes({ ...good, port: "abc" }),
        'Cannot launch task "port": TaskInfo.data field "port" must be a port number (1-65535), but got "abc"',
      ],
      [
        "slave",
        bytes({ ...good, role: "slave" }),
        'Cannot launch task "slave": TaskInfo.data field "master" must be {host, port} of the master to replicate from, but got nothing',
      ],
      [
        "dir",
        bytes({ ...good, dataDir: "../x" }),
        'Cannot launch task "dir": TaskInfo.data field "dataDir" must be one path segment of letters, digits, ".", "_" and "-", but got "../x"',
      ],
    ];
    for (const [id, data] of cases) ex.handle(launch(id, data));
    await ex.idle();
    for (const [id, , message] of cases) {
      const failed = driver.last(id, "TASK_FAILED");
      assert.equal(failed?.message, message);
      assert.equal(failed?.reason, "REASON_TASK_INVALID");
      assert.deepEqual(driver.states(id), ["TASK_FAILED"]);
    }
    ex.handle(launch("g1", encodeTaskSpec(good)));
    await waitFor("RUNNING", () => driver.last("g1", "TASK_RUNNING"), WAIT);
    ex.handle(launch("g2", encodeTaskSpec({ ...good, dataDir: "other" })));
    ex.handle(launch("g3", encodeTaskSpec({ ...good, port: freePort() })));
    await ex.idle();
    assert.equal(
      driver.last("g2", "TASK_FAILED")?.message,
      `Cannot launch task "g2": port ${good.port} is used by task "g1"`,
    );
    assert.equal(
      driver.last("g3", "TASK_FAILED")?.message,
      `Cannot launch task "g3": data dir "${good.dataDir}" is used by task "g1"`,
    );
  });
});

Deno.test("RedisExecutor answers KILL of an unknown task with TASK_KILLED and says when idle", async () => {
  let idle = false;
  await withExecutor(async (ex, driver) => {
    ex.handle({ type: "KILL", kill: { task_id: { value: "ghost" } } });
    await ex.idle();
    assert.deepEqual(driver.states("ghost"), ["TASK_KILLED"]);
    await waitFor("idle", () => idle, WAIT);
  }, { idleTimeoutMs: 300, onIdle: () => idle = true });
});

Deno.test("RedisExecutor stops a slave that never syncs: KILL while starting, sync timeout", async (t) => {
  await withExecutor(async (ex, driver) => {
    await t.step("KILL before RUNNING gives TASK_KILLED and no RUNNING", async () => {
      const s = spec("p1", "slave", freePort());
      ex.handle(launch("a", encodeTaskSpec(s)));
      await waitFor("STARTING", () => driver.last("a", "TASK_STARTING"), WAIT);
      ex.handle({ type: "KILL", kill: { task_id: { value: "a" } } });
      await waitFor("KILLED", () => driver.last("a", "TASK_KILLED"), WAIT);
      assert.deepEqual(driver.states("a"), ["TASK_STARTING", "TASK_KILLED"]);
      await waitFor("port closed", () => portClosed(s.port), WAIT);
    });

    await t.step("no sync within syncTimeoutMs gives TASK_FAILED", async () => {
      const s = spec("p2", "slave", freePort());
      ex.handle(launch("b", encodeTaskSpec(s)));
      const failed = await waitFor("FAILED", () => driver.last("b", "TASK_FAILED"), WAIT);
      assert.match(
        failed.message ?? "",
        /^Slave did not finish its initial sync with 127\.0\.0\.1:\d+ within 1 s$/,
      );
      assert.equal(statusData(failed).cause, "sync_timeout");
      assert.deepEqual(driver.states("b"), ["TASK_STARTING", "TASK_FAILED"]);
      await waitFor("port closed", () => portClosed(s.port), WAIT);
    });
  }, { syncTimeoutMs: 1000, startingUpdateDelayMs: 0 });
});

Deno.test("RedisExecutor answers the current offset and refuses commands of an older epoch", async () => {
  await withExecutor(async (ex, driver) => {
    const s = { ...spec("m1", "master"), epoch: 3 };
    ex.handle(launch("t-epoch", encodeTaskSpec(s)));
    await waitFor("RUNNING", () => driver.states("t-epoch").includes("TASK_RUNNING"), WAIT);
    ex.handle(command({ kind: "offset", commandId: "o1", taskId: "t-epoch", epoch: 3 }));
    const offset = await waitFor("offset result", () => driver.result("o1"), WAIT);
    assert.equal(offset.kind === "result" && offset.ok, true);
    assert.equal(typeof (offset.kind === "result" && offset.replOffset), "number");
    ex.handle(
      command({
        kind: "replicaof",
        commandId: "r1",
        taskId: "t-epoch",
        host: "x",
        port: 1,
        epoch: 2,
      }),
    );
    const refused = await waitFor("replicaof result", () => driver.result("r1"), WAIT);
    assert.equal(refused.kind === "result" && refused.ok, false);
    assert.match(
      refused.kind === "result" ? refused.error ?? "" : "",
      /epoch 2 is older than 3/,
    );
    const client = new RedisClient({ port: s.port });
    try {
      assert.equal(await client.role(), "master", "the refused command did nothing");
    } finally {
      client.close();
    }
    await waitFor("stats with the epoch", () => driver.latestStats("t-epoch")?.epoch === 3, WAIT);
  });
});

Deno.test("RedisExecutor runs slaves without AOF and turns it on at promotion, before it answers: no acknowledged write is lost", async () => {
  await withExecutor(async (ex, driver) => {
    const m = spec("p1", "master");
    const s = spec("p2", "slave", m.port);
    ex.handle(launch("m", encodeTaskSpec(m)));
    await waitFor("master RUNNING", () => driver.last("m", "TASK_RUNNING"), WAIT);
    ex.handle(launch("s", encodeTaskSpec(s)));
    await waitFor("slave RUNNING", () => driver.last("s", "TASK_RUNNING"), WAIT);
    const master = new RedisClient({ port: m.port });
    const slave = new RedisClient({ port: s.port });
    const aofEnabled = async (c: RedisClient) =>
      /aof_enabled:1/.test(String(await c.call("INFO", ["persistence"])));
    try {
      assert.equal(await aofEnabled(master), true, "a master keeps an AOF");
      assert.equal(await aofEnabled(slave), false, "a slave starts without one");
      const acked: string[] = [];
      for (let i = 0; i < 200; i++) {
        await master.call("SET", [`k${i}`, `v${i}`]);
        // WAIT returns as soon as the slave acknowledges; the 5 s are for a busy machine.
        if (Number(await master.call("WAIT", [1, 5000])) >= 1) acked.push(`k${i}`);
      }
      assert.equal(acked.length, 200);
      const dir = (await slave.call("CONFIG", ["GET", "dir"]) as string[])[1]!;

      ex.handle(command({ kind: "promote", commandId: "p", taskId: "s" }));
      const result = await waitFor("promote result", () => driver.result("p"), WAIT);
      assert.equal(result.kind === "result" && result.ok, true, JSON.stringify(result));
      // Reported master: its AOF is on and holds everything. Kill it at once
      // (no time for a late rewrite) and start a server on its data dir.
      const persistence = String(await slave.call("INFO", ["persistence"]));
      assert.match(persistence, /aof_enabled:1/);
      assert.match(persistence, /aof_rewrite_in_progress:0/);
      Deno.kill(await pidOf(s.port), "SIGKILL");
      await waitFor("the slave's end", () => driver.last("s", "TASK_FAILED"), WAIT);
      const restarted = await RedisProcess.start({
        port: freePort(),
        dataDir: dir,
        maxMemoryMB: 16,
      });
      try {
        const values = await restarted.client.call("MGET", acked) as (string | null)[];
        assert.deepEqual(values, acked.map((k) => `v${k.slice(1)}`));
      } finally {
        await restarted.stop({ graceful: false });
      }
    } finally {
      master.close();
      slave.close();
    }
  });
});

Deno.test("RedisExecutor keeps data dirs under dataRoot and purges one no task uses", async (t) => {
  const dataRoot = await tempDir("executor-data");
  try {
    await withExecutor(async (ex, driver) => {
      const s = spec("d1", "master");
      await t.step("the data dir is under dataRoot, not the sandbox", async () => {
        ex.handle(launch("d", encodeTaskSpec(s)));
        await waitFor("RUNNING", () => driver.last("d", "TASK_RUNNING"), WAIT);
        assert.ok(Deno.statSync(`${dataRoot}/${s.dataDir}`).isDirectory);
      });
      await t.step("purge is refused while a task uses the dir", async () => {
        ex.handle(command({ kind: "purge", commandId: "p1", taskId: "d", dataDir: s.dataDir }));
        const result = await waitFor("purge result", () => driver.result("p1"), WAIT);
        assert.deepEqual(result, {
          kind: "result",
          commandId: "p1",
          ok: false,
          error: `Cannot purge data dir "${s.dataDir}": task "d" uses it`,
        });
        assert.ok(Deno.statSync(`${dataRoot}/${s.dataDir}`).isDirectory);
      });
      await t.step("after the kill, purge removes it; a bad name is refused", async () => {
        ex.handle({ type: "KILL", kill: { task_id: { value: "d" } } } as ExecutorEvent);
        await waitFor("KILLED", () => driver.last("d", "TASK_KILLED"), WAIT);
        ex.handle(command({ kind: "purge", commandId: "p2", taskId: "d", dataDir: s.dataDir }));
        const ok = await waitFor("purge result", () => driver.result("p2"), WAIT);
        assert.equal(ok.kind === "result" && ok.ok, true);
        assert.throws(() => Deno.statSync(`${dataRoot}/${s.dataDir}`), Deno.errors.NotFound);
        ex.handle(command({ kind: "purge", commandId: "p3", taskId: "d", dataDir: ".." }));
        const bad = await waitFor("purge result", () => driver.result("p3"), WAIT);
        assert.equal(bad.kind === "result" && bad.error, 'Cannot purge a data dir: bad name ".."');
      });
    }, { dataRoot });
  } finally {
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
});

Deno.test("RedisExecutor sends routine stats one message at a time: those asked for meanwhile leave as one, with every task", async () => {
  // The agent accepts a message only when the test says so.
  let accept: (() => void) | undefined;
  const gated = new RecordingDriver();
  const record = gated.message.bind(gated);
  gated.message = (data: Uint8Array) => {
    record(data);
    return new Promise<void>((resolve) => accept = resolve) as unknown as void;
  };
  const stats = () => gated.messages.filter((m) => m.kind === "stats");
  const sandbox = await tempDir("executor");
  const ex = new RedisExecutor({
    driver: gated,
    sandbox,
    bind: "127.0.0.1",
    statsIntervalMs: 60_000, // no tick within the test: only the RUNNING reports send stats
    checkIntervalMs: 200,
    checkTimeoutMs: 5000, // no "unresponsive" report (an urgent stats message) on a busy machine
    idleTimeoutMs: 0,
  });
  ex.handle(subscribed());
  try {
    const ids = ["a", "b", "c"];
    for (const id of ids) ex.handle(launch(id, encodeTaskSpec(spec(id, "master"))));
    await waitFor(
      "three TASK_RUNNING",
      () => ids.every((id) => gated.states(id).includes("TASK_RUNNING")),
      WAIT,
    );
    // The first RUNNING sent its stats; the next two wait for the agent to accept them.
    assert.equal(stats().length, 1);
    accept!();
    await waitFor("the second stats message", () => stats().length === 2, WAIT);
    const second = stats()[1]!;
    assert.ok(second.kind === "stats");
    assert.deepEqual(second.stats.map((s) => s.taskId).sort(), ids);
    accept!();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stats().length, 2, "nothing was left to send");
  } finally {
    accept?.();
    await ex.abandon();
    await ex.flush(1000);
    await Deno.remove(sandbox, { recursive: true });
  }
});

Deno.test("statusStats reads only whole stats of the task the update is about", () => {
  const whole = {
    taskId: "t",
    role: "slave",
    memoryUsed: 1,
    maxMemory: 2,
    uptime: 3,
    clients: 1,
    replOffset: 9,
    inSync: true,
    lastIoSeconds: 0,
    connectedSlaves: 0,
  };
  const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  assert.deepEqual(statusStats("t", bytes({ host: "h", stats: whole, statsAt: 5 })), {
    stats: whole,
    at: 5,
  });
  for (
    const [why, data] of [
      ["no data", undefined],
      ["not JSON", new TextEncoder().encode("{")],
      ["JSON null", bytes(null)],
      ["no stats (an older executor)", bytes({ host: "h", port: 1 })],
      ["another task's", bytes({ stats: { ...whole, taskId: "u" }, statsAt: 5 })],
      ["no time", bytes({ stats: whole })],
      ["a bad role", bytes({ stats: { ...whole, role: "boss" }, statsAt: 5 })],
      ["inSync not a boolean", bytes({ stats: { ...whole, inSync: "yes" }, statsAt: 5 })],
      ["a count missing", bytes({ stats: { ...whole, replOffset: undefined }, statsAt: 5 })],
    ] as const
  ) {
    assert.equal(statusStats("t", data), undefined, why);
  }
});

/**
 * Launches a master (task `m`, with `master` over its spec) and its slave
 * (task `s`); resolves with their specs once both are RUNNING.
 */
async function runningPair(
  ex: RedisExecutor,
  driver: RecordingDriver,
  master: Partial<RedisTaskSpec> = {},
): Promise<{ m: RedisTaskSpec; s: RedisTaskSpec }> {
  const m = { ...spec("p1", "master"), ...master };
  const s = spec("p2", "slave", m.port);
  ex.handle(launch("m", encodeTaskSpec(m)));
  ex.handle(launch("s", encodeTaskSpec(s)));
  await waitFor(
    "both RUNNING",
    () => driver.last("m", "TASK_RUNNING") && driver.last("s", "TASK_RUNNING"),
    WAIT,
  );
  return { m, s };
}

Deno.test("a fence with drainMs stops the master's writes and kills it only once a replica has them all", async () => {
  await withExecutor(async (ex, driver) => {
    const { m, s } = await runningPair(ex, driver, { minReplicasToWrite: 1 });
    // Writes are taken once the master counts its replica (min-replicas-to-write 1).
    await waitFor(
      "the master to count its replica",
      () => driver.latestStats("m")?.goodSlaves === 1,
      WAIT,
    );
    const mc = new RedisClient({ port: m.port });
    const sc = new RedisClient({ port: s.port });
    const slavePid = await pidOf(s.port);
    try {
      // A replica that takes nothing for now (as a new one does until its first ACK).
      Deno.kill(slavePid, "SIGSTOP");
      for (let i = 0; i < 200; i++) await mc.call("SET", [`k${i}`, `v${i}`]);

      // Bad drains are refused, naming the field; nothing is stopped.
      ex.handle(command({ kind: "fence", commandId: "bad", taskId: "m", drainMs: -5 }));
      const bad = await waitFor("bad fence result", () => driver.result("bad"), WAIT);
      assert.deepEqual(bad, {
        kind: "result",
        commandId: "bad",
        ok: false,
        error:
          'Cannot fence task "m": drainMs must be a whole number of ms from 0 to 60000, but got -5',
      });
      assert.equal(await mc.call("SET", ["still", "writable"]), "OK");

      // The scheduler sends the fence and the KILL together. The master takes
      // writes a little longer (waiting for its replica while they flow), then
      // refuses them and waits for its replica.
      ex.handle(command({ kind: "fence", commandId: "f", taskId: "m", drainMs: 20_000 }));
      ex.handle({ type: "KILL", kill: { task_id: { value: "m" } } });
      const accepted: string[] = [];
      await waitFor("writes refused", async () => {
        const key = `probe${accepted.length}`;
        try {
          await mc.call("SET", [key, "x"]);
          accepted.push(key);
          return false;
        } catch (error) {
          if (/^NOREPLICAS/.test((error as Error).message)) return true;
          throw error;
        }
      }, WAIT);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(driver.result("f"), undefined, "the fence waits for the replica");
      assert.equal(driver.last("m", "TASK_KILLED"), undefined);
      const offset = Number((await mc.info()).fields.master_repl_offset);

      Deno.kill(slavePid, "SIGCONT");
      const result = await waitFor("fence result", () => driver.result("f"), WAIT);
      assert.equal(result.kind === "result" && result.ok, true, JSON.stringify(result));
      await waitFor("master gone", () => portClosed(m.port), WAIT);
      assert.ok(driver.last("m", "TASK_KILLED"));
      const info = await sc.info();
      assert.ok(
        Number(info.fields.slave_repl_offset) >= offset,
        `replica at ${info.fields.slave_repl_offset}, master took writes up to ${offset}`,
      );
      assert.equal(await sc.call("GET", ["k199"]), "v199");
      assert.equal(await sc.call("GET", ["still"]), "writable");
      for (const key of accepted) assert.equal(await sc.call("GET", [key]), "x", key);
    } finally {
      try {
        Deno.kill(slavePid, "SIGCONT");
      } catch { /* gone */ }
      mc.close();
      sc.close();
    }
    // The replica is stopped on purpose: its checks must not kill it as a hang.
  }, { maxFailures: 1000 });
});

Deno.test("a master reports the slaves it streams to: one that stops taking the stream while writes flow is not counted until it takes it again", async () => {
  await withExecutor(async (ex, driver) => {
    const { m, s } = await runningPair(ex, driver);
    // Nothing written yet: the replica has all the master has.
    await waitFor(
      "the replica counted",
      () => driver.latestStats("m")?.streamingSlaves === 1,
      WAIT,
    );
    const mc = new RedisClient({ port: m.port });
    const slavePid = await pidOf(s.port);
    try {
      // A replica that takes nothing (as a new one until the master streams to it).
      Deno.kill(slavePid, "SIGSTOP");
      for (let i = 0; i < 200; i++) await mc.call("SET", [`k${i}`, `v${i}`]);
      await waitFor(
        "the replica not counted",
        () => driver.latestStats("m")?.streamingSlaves === 0,
        WAIT,
      );
      // Redis itself still has it online.
      assert.match((await mc.info()).fields.slave0 ?? "", /state=online/);
      Deno.kill(slavePid, "SIGCONT");
      await waitFor(
        "the replica counted again",
        () => driver.latestStats("m")?.streamingSlaves === 1,
        WAIT,
      );
      const sc = new RedisClient({ port: s.port });
      try {
        assert.equal(await sc.call("GET", ["k199"]), "v199");
      } finally {
        sc.close();
      }
    } finally {
      try {
        Deno.kill(slavePid, "SIGCONT");
      } catch { /* gone */ }
      mc.close();
    }
    // The replica is stopped on purpose: its checks must not kill it as a hang.
  }, { maxFailures: 1000 });
});
