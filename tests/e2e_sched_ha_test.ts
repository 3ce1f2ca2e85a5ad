/**
 * End to end: two `sched` processes for one framework (same store prefix,
 * real etcd / ZooKeeper) with the local Mesos cluster in the test process, so
 * tasks outlive the schedulers. One leads, the other answers 503 naming it;
 * when the leader is SIGKILLed the standby takes over within the lock ttl
 * (session timeout) plus a few seconds, with the instances, addresses, data
 * and processes unchanged, and a restarted old leader stands by. A leader
 * paused past its ttl steps down to standby when it resumes (no exit).
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { type Service, startEtcd, startZooKeeper } from "./_services.ts";
import {
  apiFetch,
  create,
  deleteAndWait,
  list,
  redisPids,
  type Sched,
  spawnListening,
  status,
  waitRunning,
} from "./_sched.ts";
import { assertKeys, logTail, writeAcked } from "./_failover.ts";
import { startLocalCluster } from "../lib/mesos/local/mod.ts";
import { BLOCK_SIZE, reservePortRange } from "./_ports.ts";

/** What both schedulers share; only the HTTP port and the log differ. */
interface Shared {
  dir: string;
  dbType: "etcd" | "zookeeper";
  dbEndpoint: string;
  master: string;
  prefix: string;
  artifactPort: number;
  ttlSeconds: number;
}

/** A sched process the test can pause and whose exit code it can read. */
interface Proc extends Sched {
  /** Sends a signal (SIGSTOP / SIGCONT). */
  signal(signal: Deno.Signal): void;
  /** The exit code once it exited. */
  readonly exited: Promise<number>;
}

/**
 * Starts a sched process and waits until its API answers at all (as the
 * leader, or read-only as a standby); `name` keeps its config and log apart.
 */
async function spawnSched(shared: Shared, name: string, wantPort?: number): Promise<Proc> {
  const dir = `${shared.dir}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const logFile = `${dir}/sched.log`;
  const { proc, httpPort } = await spawnListening(dir, (httpPort) => ({
    Master: shared.master,
    DBType: shared.dbType,
    DBEndPoint: shared.dbEndpoint,
    LogFile: logFile,
    ArtifactIP: "127.0.0.1",
    // The same for both: only the leader binds it, and the ExecutorInfo (its
    // URL) must stay equal for the executors already running on the agents.
    ArtifactPort: shared.artifactPort,
    HTTPPort: httpPort,
    HTTPAddress: "127.0.0.1",
    StorePrefix: shared.prefix,
    LeaderTTLSeconds: shared.ttlSeconds,
  }), wantPort);
  const url = `http://127.0.0.1:${httpPort}`;
  const sched: Proc = {
    signal: proc.signal,
    exited: proc.exitCode,
    url,
    httpPort,
    artifactPort: shared.artifactPort,
    prefix: shared.prefix,
    logFile,
    options: { dir, dbType: shared.dbType },
    log: proc.log,
    stop: proc.stop,
    kill: proc.kill,
    terminate: (signal) => signal === "SIGKILL" ? proc.kill() : proc.stop(),
    api: apiFetch(url, {}),
  };
  try {
    await waitFor(`sched ${name} to answer`, async () => {
      if (proc.exited) throw new Error(`sched ${name} exited: ${sched.log()}`);
      const res = await fetch(`${url}/v1/STATUS`);
      await res.body?.cancel();
      return true;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } catch (error) {
    await sched.kill();
    throw error;
  }
  return sched;
}

/**
 * Whether `sched` leads: a standby answers STATUS too (read-only, from the
 * store, marked `X-Mrr-Role: standby`) but refuses every change with 503.
 */
async function leads(sched: Sched): Promise<boolean> {
  const res = await fetch(`${sched.url}/v1/STATUS`, { signal: AbortSignal.timeout(3_000) });
  await res.body?.cancel();
  return res.status === 200 && res.headers.get("x-mrr-role") === null;
}

/** DELETE of a name nobody uses: 404 from a leader, 503 naming the leader from a standby. */
async function probe(sched: Sched): Promise<{ status: number; text: string; leader: string }> {
  const res = await fetch(`${sched.url}/v1/DELETE/no-such-instance`, {
    method: "DELETE",
    signal: AbortSignal.timeout(3_000),
  });
  return {
    status: res.status,
    text: (await res.text()).trim(),
    leader: res.headers.get("x-mrr-leader") ?? "",
  };
}

/** The STATUS list as a standby serves it: 200, marked standby, names in order. */
async function standbyList(sched: Sched): Promise<string[]> {
  const res = await fetch(`${sched.url}/v1/STATUS`, { signal: AbortSignal.timeout(3_000) });
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("x-mrr-role"), "standby");
  return (await res.json() as { Name: string }[]).map((i) => i.Name);
}

async function haScenario(
  t: Deno.TestContext,
  dbType: "etcd" | "zookeeper",
  start: () => Promise<Service>,
  ttlSeconds: number,
): Promise<void> {
  const dir = await tempDir(`e2e-ha-${dbType}`);
  const svc = await start();
  const ports = reservePortRange(3 * BLOCK_SIZE);
  const { url, cluster } = await startLocalCluster({
    agents: 3,
    workDir: `${dir}/mesos`,
    portsBase: ports.base,
    portsPerAgent: BLOCK_SIZE,
  });
  const shared: Shared = {
    dir,
    dbType,
    dbEndpoint: svc.endpoint,
    master: new URL(url).host,
    prefix: `/mrr-ha-${crypto.randomUUID().slice(0, 8)}`,
    artifactPort: freePort(),
    ttlSeconds,
  };
  const running: Proc[] = [];
  try {
    let a = await spawnSched(shared, "a");
    running.push(a);
    await waitFor("A to lead", () => leads(a), { timeoutMs: 20_000 });
    const b = await spawnSched(shared, "b");
    running.push(b);

    await t.step("B stands by and answers 503 naming A", async () => {
      const answer = await waitFor("B to name A", async () => {
        const p = await probe(b);
        return p.leader ? p : undefined;
      }, { timeoutMs: 10_000 });
      assertEquals(answer.status, 503);
      assertEquals(answer.text, `This scheduler is standing by; the leader is at ${a.url}`);
      assertEquals(answer.leader, a.url);
      const post = await create(b, "nope", 20, 0);
      assertEquals(post.status, 503, "a standby refuses CREATE too");
      assertEquals(await standbyList(b), [], "a standby lists what the store holds");
      await waitFor("B logs that it stands by", () => /Standing by: .*leader is at /.test(b.log()));
      assert(!/Leading:/.test(b.log()), "B does not lead");
    });

    let before!: Awaited<ReturnType<typeof waitRunning>>;
    let values!: Map<string, string>;
    await t.step("an MS 1+2 instance created through A runs and takes data", async () => {
      assertEquals((await create(a, "ha", 30, 2)).status, 201);
      before = await waitRunning(a, "ha", 60_000);
      values = await writeAcked(before, 50, "ha");
    });

    await t.step("SIGKILL A: B takes over with the same instance, data and processes", async () => {
      await a.kill();
      const killedAt = Date.now();
      const logOffset = b.log().length;
      await waitFor("B to lead", () => leads(b), {
        timeoutMs: (ttlSeconds + 15) * 1000,
        intervalMs: 100,
      });
      const took = Date.now() - killedAt;
      console.log(`  ${dbType}: B served as leader ${took} ms after A's SIGKILL`);
      assert(took < (ttlSeconds + 8) * 1000, `takeover took ${took} ms${logTail(b)}`);
      // Listed at once with the same addresses.
      const first = await list(b);
      assertEquals(first.map((v) => v.Name), ["ha"]);
      assertEquals(first[0]!.Master?.Port, before.Master!.Port);
      const after = await waitRunning(b, "ha", 30_000);
      assertEquals(after.Master!.Port, before.Master!.Port);
      assertEquals(
        after.Slaves.map((s) => s.Port).sort(),
        before.Slaves.map((s) => s.Port).sort(),
      );
      for (const p of [after.Master!, ...after.Slaves]) {
        assertEquals((await redisPids(p.Port)).length, 1, `one redis-server on ${p.Port}`);
      }
      await assertKeys(after.Master!, values);
      assert(!/Launching ha\./.test(b.log().slice(logOffset)), `no relaunch${logTail(b)}`);
    });

    await t.step("a new CREATE works through B", async () => {
      assertEquals((await create(b, "fresh", 20, 0)).status, 201);
      await waitRunning(b, "fresh", 60_000);
    });

    await t.step("A restarted stands by, naming B", async () => {
      running.splice(running.indexOf(a), 1);
      a = await spawnSched(shared, "a", a.httpPort); // the same address when it is free
      running.push(a);
      const answer = await waitFor("A to name B", async () => {
        const p = await probe(a);
        return p.leader ? p : undefined;
      }, { timeoutMs: 10_000 });
      assertEquals(answer.status, 503);
      assertMatch(answer.text, new RegExp(`standing by; the leader is at ${b.url}$`));
      assertEquals((await status(b, "ha"))?.Name, "ha");
      // A restarted scheduler lists every instance at once, while standing by.
      assertEquals(await standbyList(a), ["ha", "fresh"]);
    });

    let leader: Proc = b;
    if (dbType === "etcd") {
      await t.step(
        "B paused past its ttl: A takes over, B steps down to standby when resumed",
        async () => {
          const aLogOffset = a.log().length; // A's log file holds its first life too
          b.signal("SIGSTOP");
          const stoppedAt = Date.now();
          try {
            // A takes the lock once B's lease ran out; it serves only once B
            // freed the (shared, same-host) ArtifactPort.
            await waitFor("A to take the lock", () => /Leading:/.test(a.log().slice(aLogOffset)), {
              timeoutMs: (ttlSeconds + 15) * 1000,
            });
            console.log(`  A took the lock ${Date.now() - stoppedAt} ms after B's SIGSTOP`);
          } finally {
            b.signal("SIGCONT");
          }
          await waitFor("B to step down", () => /Stepped down: /.test(b.log()), {
            timeoutMs: 15_000,
          });
          assertMatch(b.log(), /Lost leadership: /);
          await waitFor("A to serve", () => leads(a), {
            timeoutMs: 15_000,
          });
          // B runs on as a standby naming A (no exit, no second leader).
          const answer = await waitFor("B to name A", async () => {
            const p = await probe(b);
            return p.leader === a.url ? p : undefined;
          }, { timeoutMs: 15_000 });
          assertEquals(answer.status, 503);
          const code = await Promise.race([b.exited, Promise.resolve("running")]);
          assertEquals(code, "running", `B still runs${logTail(b)}`);
          leader = a;
          const after = await waitRunning(a, "ha", 30_000);
          assertEquals(after.Master!.Port, before.Master!.Port);
          for (const p of [after.Master!, ...after.Slaves]) {
            assertEquals((await redisPids(p.Port)).length, 1, `one redis-server on ${p.Port}`);
          }
          await assertKeys(after.Master!, values);
        },
      );
    }

    await t.step("clean up through the leader", async () => {
      // Whichever leads now: with a short ttl on a busy machine the lock may
      // have moved again since the last step.
      const now = await waitFor("a leader", async () => {
        for (const s of [leader, ...running]) if (await leads(s).catch(() => false)) return s;
        return undefined;
      }, { timeoutMs: 30_000 });
      await deleteAndWait(now, "fresh");
      await deleteAndWait(now, "ha");
    });
  } finally {
    for (const s of running) await s.stop().catch(() => {});
    await cluster.stop().catch(() => {});
    ports.release();
    await svc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "two schedulers on etcd: one leads, the other stands by and takes over a SIGKILL",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) => haScenario(t, "etcd", startEtcd, 4),
});

Deno.test({
  name: "two schedulers on ZooKeeper: one leads, the other stands by and takes over a SIGKILL",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: (t) => haScenario(t, "zookeeper", startZooKeeper, 10),
});
