import assert from "node:assert/strict";
import {
  parseInfo,
  RedisClient,
  RedisMonitor,
  type RedisMonitorEvent,
  RedisProcess,
  RedisStartError,
  statsFromInfo,
  StreamingSlaves,
} from "../lib/redis/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

/** Starts redis-servers in a temp dir and stops them all at the end. */
async function withRedis(
  prefix: string,
  fn: (
    start: (name: string, opts?: { replicaOf?: RedisProcess }) => Promise<RedisProcess>,
    dir: string,
  ) => Promise<void>,
): Promise<void> {
  const dir = await tempDir(prefix);
  const procs: RedisProcess[] = [];
  try {
    await fn(async (name, opts = {}) => {
      const p = await RedisProcess.start({
        port: freePort(),
        dataDir: `${dir}/${name}`,
        maxMemoryMB: 16,
        ...(opts.replicaOf ? { replicaOf: { host: "127.0.0.1", port: opts.replicaOf.port } } : {}),
      });
      procs.push(p);
      return p;
    }, dir);
  } finally {
    for (const p of procs) p.kill("SIGCONT");
    await Promise.all(procs.map((p) => p.stop({ graceful: false })));
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("parseInfo reads the fields of a slave and computes its stats", () => {
  const text = [
    "# Server",
    "redis_version:7.0.15",
    "uptime_in_seconds:12",
    "# Clients",
    "connected_clients:3",
    "# Stats",
    "instantaneous_ops_per_sec:42",
    "# Memory",
    "used_memory:1024",
    "maxmemory:16777216",
    "maxmemory_policy:noeviction",
    "# Replication",
    "role:slave",
    "master_host:127.0.0.1",
    "master_port:6379",
    "master_link_status:up",
    "master_last_io_seconds_ago:1",
    "master_sync_in_progress:0",
    "slave_repl_offset:420",
    "connected_slaves:0",
    "master_repl_offset:420",
    "",
  ].join("\r\n");
  const info = parseInfo(text);
  assert.deepEqual(info.masterPort, 6379);
  // Every field, also those parseInfo does not read, is in `fields`.
  assert.deepEqual(info.fields.redis_version, "7.0.15");
  assert.deepEqual(Object.keys(info.fields).length, 16);
  assert.deepEqual(statsFromInfo("t1", info), {
    taskId: "t1",
    role: "slave",
    memoryUsed: 1024,
    maxMemory: 16777216,
    uptime: 12,
    clients: 3,
    opsPerSec: 42,
    replOffset: 420,
    inSync: true,
    lastIoSeconds: 1,
    connectedSlaves: 0,
    goodSlaves: 0,
  });
  const syncing = parseInfo(text.replace("master_sync_in_progress:0", "master_sync_in_progress:1"));
  assert.deepEqual(statsFromInfo("t1", syncing).inSync, false);
  const down = parseInfo(text.replace("master_link_status:up", "master_link_status:down"));
  assert.deepEqual(statsFromInfo("t1", down).inSync, false);
  assert.throws(
    () => parseInfo("# Server\r\nredis_version:7\r\n"),
    /^TypeError: Cannot parse INFO: .*no role field$/,
  );
});

Deno.test("parseInfo counts the slaves a master counts for min-replicas-to-write", () => {
  const master = (extra: string[]) =>
    parseInfo(
      [
        "# Replication",
        "role:master",
        "connected_slaves:2",
        "slave0:ip=127.0.0.1,port=7001,state=online,offset=10,lag=0",
        "slave1:ip=127.0.0.1,port=7002,state=wait_bgsave,offset=0,lag=0",
        ...extra,
        "master_repl_offset:10",
        "",
      ].join("\r\n"),
    );
  // Without min-replicas-to-write set, INFO has no min_slaves_good_slaves: online ones count.
  assert.deepEqual(master([]).goodSlaves, 1);
  assert.deepEqual(statsFromInfo("t", master([])).goodSlaves, 1);
  // With it set, redis's own count (lag taken into account) decides.
  assert.deepEqual(master(["min_slaves_good_slaves:0"]).goodSlaves, 0);
  assert.deepEqual(statsFromInfo("t", master(["min_slaves_good_slaves:2"])).goodSlaves, 2);
});

Deno.test("parseInfo reads a master's slave lines", () => {
  const info = parseInfo(
    [
      "role:master",
      "connected_slaves:2",
      "slave0:ip=10.0.0.7,port=7001,state=online,offset=10,lag=0",
      "slave1:ip=10.0.0.8,port=7002,state=send_bulk,offset=0,lag=0",
      "master_repl_offset:10",
    ].join("\r\n"),
  );
  assert.deepEqual(info.slaves, [
    { addr: "10.0.0.7:7001", online: true, offset: 10 },
    { addr: "10.0.0.8:7002", online: false, offset: 0 },
  ]);
});

Deno.test("StreamingSlaves counts a slave once it acknowledges past its first offset, or all", () => {
  const master = (offset: number, ...slaves: string[]) =>
    parseInfo(
      [
        "role:master",
        ...slaves.map((s, i) => `slave${i}:${s},lag=0`),
        `master_repl_offset:${offset}`,
      ].join("\r\n"),
    );
  const a = (offset: number, state = "online") => `ip=h,port=1,state=${state},offset=${offset}`;
  const b = (offset: number, state = "online") => `ip=h,port=2,state=${state},offset=${offset}`;
  // A new master with nothing written: its slaves have all there is, acknowledged or not.
  assert.deepEqual(new StreamingSlaves().update(master(0, a(0), b(0, "send_bulk"))), 1);
  const streams = new StreamingSlaves();
  // `a` has everything the master has; `b` is online but has not acknowledged yet.
  assert.deepEqual(streams.update(master(100, a(100), b(0))), 1);
  // Writes go on: `a` acknowledges them; `b` acknowledged its sync offset only.
  assert.deepEqual(streams.update(master(300, a(250), b(100))), 1);
  assert.deepEqual(streams.update(master(500, a(480), b(100))), 1);
  // The master streams to `b` at last: it acknowledges past its first offset.
  assert.deepEqual(streams.update(master(700, a(690), b(650))), 2);
  assert.deepEqual(streams.count, 2);
  // `b` syncs again (not online): it starts over, and so does its first offset.
  assert.deepEqual(streams.update(master(900, a(890), b(0, "wait_bgsave"))), 1);
  assert.deepEqual(streams.update(master(1100, a(1100), b(900))), 1);
  assert.deepEqual(streams.update(master(1300, a(1290), b(1200))), 2);
  // A slave gone and back is new again; nothing written since: it has all there is.
  assert.deepEqual(streams.update(master(1300, a(1300))), 1);
  assert.deepEqual(streams.update(master(1300, a(1300), b(1300))), 2);
  assert.deepEqual(streams.update(master(1500, a(1500), b(1300))), 1);
});

Deno.test("StreamingSlaves starts every slave over when the master served a full sync since", () => {
  const master = (offset: number, fullSyncs: number, ...offsets: number[]) =>
    parseInfo(
      [
        "role:master",
        ...offsets.map((o, i) => `slave${i}:ip=h,port=${i + 1},state=online,offset=${o},lag=0`),
        `master_repl_offset:${offset}`,
        `sync_full:${fullSyncs}`,
      ].join("\r\n"),
    );
  const streams = new StreamingSlaves();
  assert.deepEqual(streams.update(master(100, 1, 100)), 1);
  assert.deepEqual(streams.update(master(300, 1, 250)), 1);
  // The slave synced again between two answers, unseen: its offset alone does not tell.
  assert.deepEqual(streams.update(master(500, 2, 400)), 0);
  assert.deepEqual(streams.update(master(700, 2, 650)), 1);
});

Deno.test("RedisProcess runs a master with two slaves that replicate, promote and re-point", async (t) => {
  await withRedis("repl", async (start) => {
    const master = await start("m");
    const [s1, s2] = await Promise.all([
      start("s1", { replicaOf: master }),
      start("s2", { replicaOf: master }),
    ]);

    await t.step("maxmemory equals the capacity and eviction is off", async () => {
      const info = await master.client.info();
      assert.deepEqual(info.maxMemory, 16 * 1024 * 1024);
      assert.deepEqual(info.maxMemoryPolicy, "noeviction");
      assert.deepEqual(info.fields.aof_enabled, "1");
    });

    await t.step("slaves come in sync and receive writes", async () => {
      for (const s of [s1!, s2!]) {
        await waitFor(
          "slave in sync",
          async () => statsFromInfo("x", await s.client.info()).inSync,
        );
      }
      await master.client.call("SET", ["k", "v1"]);
      for (const s of [s1!, s2!]) {
        await waitFor("key on slave", async () => (await s.client.call("GET", ["k"])) === "v1");
      }
      const stats = statsFromInfo("m", await master.client.info());
      assert.deepEqual(stats.role, "master");
      assert.deepEqual(stats.connectedSlaves, 2);
    });

    await t.step(
      "a new (empty) slave loads its full sync from the socket, not a file",
      async () => {
        for (const s of [s1!, s2!]) {
          s.flushLog();
          const log = await Deno.readTextFile(s.logFile);
          assert.ok(/streamed RDB from master with EOF to parser/.test(log), log);
          const files = [...Deno.readDirSync(s.dataDir)].map((e) => e.name);
          assert.deepEqual(files.filter((f) => f.endsWith(".rdb")), [], `${files}`);
        }
      },
    );

    await t.step("a promoted slave becomes master and the other slave follows it", async () => {
      const before = (await s1!.client.info()).slaveReplOffset;
      const offset = await s1!.client.promote();
      assert.ok(offset >= before, `offset ${offset} < ${before}`);
      assert.deepEqual(await s1!.client.role(), "master");
      await s2!.client.replicaOf("127.0.0.1", s1!.port);
      await s1!.client.call("SET", ["k", "v2"]);
      await waitFor(
        "key from new master",
        async () => (await s2!.client.call("GET", ["k"])) === "v2",
      );
      const info = await s2!.client.info();
      assert.deepEqual(info.masterPort, s1!.port);
      assert.ok(statsFromInfo("s2", info).inSync);
    });

    await t.step("a graceful stop ends the process with code 0", async () => {
      const exit = await s2!.stop();
      assert.deepEqual(exit, { code: 0, signal: null });
    });

    await t.step("the log file holds the last lines once the process has ended", async () => {
      // Lines wait in memory for up to LOG_FLUSH_MS; the end of the output writes them.
      const log = await Deno.readTextFile(s2!.logFile);
      assert.match(log.trimEnd().split("\n").at(-1)!, /ready to exit, bye bye/i);
    });
  });
});

Deno.test("RedisProcess restarted in place keeps its data (AOF)", async () => {
  await withRedis("aof", async (_start, dir) => {
    const opts = { port: freePort(), dataDir: `${dir}/d`, maxMemoryMB: 8 };
    const first = await RedisProcess.start(opts);
    try {
      await first.client.call("SET", ["kept", "yes"]);
    } finally {
      await first.stop();
    }
    const second = await RedisProcess.start(opts);
    try {
      assert.deepEqual(await second.client.call("GET", ["kept"]), "yes");
    } finally {
      await second.stop();
    }
  });
});

Deno.test("RedisProcess.start fails naming the port when it is taken", async () => {
  const dir = await tempDir("busy");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    await assert.rejects(
      () => RedisProcess.start({ port, dataDir: `${dir}/d`, maxMemoryMB: 8, startTimeoutMs: 5000 }),
      (error) => {
        assert.ok(error instanceof RedisStartError, String(error));
        assert.match(
          error.message,
          new RegExp(`^Cannot start redis-server on port ${port}: it exited`),
        );
        return true;
      },
    );
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function monitored(
  p: RedisProcess,
): Promise<{ monitor: RedisMonitor; events: RedisMonitorEvent[] }> {
  const events: RedisMonitorEvent[] = [];
  const monitor = new RedisMonitor(p, {
    intervalMs: 200,
    timeoutMs: 500,
    maxFailures: 3,
    onEvent: (e) => void events.push(e),
  });
  monitor.start();
  await waitFor("first info", () => events.some((e) => e.kind === "info"));
  return { monitor, events };
}

Deno.test("RedisMonitor reports a stopped (SIGSTOP) process as hung", async () => {
  await withRedis("hung", async (start) => {
    const p = await start("d");
    const { monitor, events } = await monitored(p);
    try {
      const began = Date.now();
      p.kill("SIGSTOP");
      const hung = await waitFor("hung event", () => events.find((e) => e.kind === "hung"), {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      const took = Date.now() - began;
      assert.ok(took < 5000, `hang seen after ${took} ms`);
      assert.deepEqual(hung.kind === "hung" && hung.failures, 3);
      assert.ok(!events.some((e) => e.kind === "exited"));
    } finally {
      await monitor.stop();
    }
  });
});

Deno.test("RedisMonitor reports an exit at once", async () => {
  await withRedis("exit", async (start) => {
    const p = await start("d");
    const { monitor, events } = await monitored(p);
    try {
      p.kill("SIGKILL");
      const exited = await waitFor("exit event", () => events.find((e) => e.kind === "exited"), {
        timeoutMs: 5000,
        intervalMs: 10,
      });
      assert.deepEqual(exited.kind === "exited" && exited.exit.signal, "SIGKILL");
      assert.ok(!events.some((e) => e.kind === "hung"));
    } finally {
      await monitor.stop();
    }
  });
});

Deno.test("RedisClient times out against a stopped server and recovers after", async () => {
  await withRedis("client", async (start) => {
    const p = await start("d");
    const client = new RedisClient({ port: p.port, timeoutMs: 300 });
    try {
      await client.ping();
      p.kill("SIGSTOP");
      await assert.rejects(() => client.ping(), /got no answer within 300 ms/);
      p.kill("SIGCONT");
      await waitFor("ping after SIGCONT", async () => (await client.ping(), true));
    } finally {
      client.close();
    }
  });
});

Deno.test("RedisProcess takes a relative binary path from the current directory", async () => {
  await withRedis("relbin", async (_start, dir) => {
    await Deno.mkdir(`${dir}/bin`);
    const real = new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", "command -v redis-server"] }).output()).stdout,
    ).trim();
    await Deno.symlink(real, `${dir}/bin/redis-server`);
    const up = Deno.cwd().split("/").filter(Boolean).map(() => "..").join("/");
    const p = await RedisProcess.start({
      binary: `${up}${dir}/bin/redis-server`,
      port: freePort(),
      dataDir: `${dir}/d`,
      maxMemoryMB: 8,
    });
    assert.deepEqual(await p.stop(), { code: 0, signal: null });
  });
});

Deno.test("enableAof turns the AOF on with its first rewrite done and gives the server its hz back", async () => {
  await withRedis("enable-aof", async (_start, dir) => {
    const proc = await RedisProcess.start({
      port: freePort(),
      dataDir: `${dir}/d`,
      maxMemoryMB: 8,
      appendOnly: false,
    });
    try {
      await proc.client.call("SET", ["k", "v"]);
      await proc.client.call("CONFIG", ["SET", "hz", "7"]);
      await proc.client.enableAof(10_000);
      const info = String(await proc.client.call("INFO", ["persistence"]));
      assert.match(info, /aof_enabled:1\r\n/);
      assert.match(info, /aof_rewrite_in_progress:0\r\n/);
      assert.match(info, /aof_last_bgrewrite_status:ok\r\n/);
      assert.deepEqual(await proc.client.call("CONFIG", ["GET", "hz"]), ["hz", "7"]);
      // Already on: nothing to do, hz untouched.
      await proc.client.enableAof(10_000);
      assert.deepEqual(await proc.client.call("CONFIG", ["GET", "hz"]), ["hz", "7"]);
    } finally {
      await proc.stop();
    }
  });
});

Deno.test("RedisProcess writes its log in batches, at once on flushLog", async () => {
  await withRedis("batched-log", async (start) => {
    const proc = await start("m");
    proc.flushLog();
    const first = await Deno.readTextFile(proc.logFile);
    assert.match(first, /Ready to accept connections/);
    // A line logged now (BGSAVE logs its start and end) reaches the file
    // within LOG_FLUSH_MS, with no flush.
    await proc.client.call("BGSAVE", []);
    await waitFor(
      "the new line in the log file",
      async () => /Background saving terminated/.test(await Deno.readTextFile(proc.logFile)),
    );
  });
});
