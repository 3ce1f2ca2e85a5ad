/**
 * End to end: the scheduler is SIGKILLed and restarted while the local Mesos
 * cluster (its own process) and etcd keep running. Instances are listed at
 * once, keep their addresses and data, no redis-server is duplicated, and new
 * CREATEs work.
 */
import { assert, assertEquals } from "./_assert.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { startEtcd } from "./_services.ts";
import { BLOCK_SIZE, reservePortRange } from "./_ports.ts";
import {
  create,
  deleteAndWait,
  list,
  redisPids,
  startSched,
  waitRunning,
  withRedis,
} from "./_sched.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: "sched SIGKILL and restart keeps instances, addresses, data and processes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-restart");
    const etcd = await startEtcd();
    const mesosPort = freePort();
    const ports = reservePortRange(3 * BLOCK_SIZE);
    const mesos = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}cmd/mesos_local.ts`,
        "--agents",
        "3",
        "--port",
        String(mesosPort),
        "--work-dir",
        `${dir}/mesos`,
        // A range held for this test (see _ports.ts).
        "--ports-base",
        String(ports.base),
        "--ports-per-agent",
        String(BLOCK_SIZE),
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const stdout = mesos.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let sched = undefined as Awaited<ReturnType<typeof startSched>> | undefined;
    try {
      // mesos_local prints its URL once ready.
      let printed = "";
      while (!printed.includes("\n")) {
        const { value, done } = await stdout.read();
        if (done) throw new Error("mesos_local exited before printing its URL");
        printed += value;
      }
      assert(printed.includes(`:${mesosPort}`), printed);
      const options = {
        dir,
        dbType: "etcd" as const,
        dbEndpoint: etcd.endpoint,
        master: `127.0.0.1:${mesosPort}`,
      };
      sched = await startSched(options);
      assertEquals((await create(sched, "keep", 30, 1)).status, 201);
      const before = await waitRunning(sched, "keep", 90_000);
      await withRedis(before.Master!, (r) => r.set("survives", "yes"));

      await sched.kill();
      const logOffset = sched.log().length;
      sched = await startSched({
        ...options,
        prefix: sched.prefix,
        httpPort: sched.httpPort,
        artifactPort: sched.artifactPort,
      });
      // Listed at once, with the same addresses.
      const first = await list(sched);
      assertEquals(first.map((v) => v.Name), ["keep"]);
      const after = await waitRunning(sched, "keep", 60_000);
      assertEquals(after.Master!.Port, before.Master!.Port);
      assertEquals(after.Slaves.map((s) => s.Port), before.Slaves.map((s) => s.Port));
      await withRedis(after.Master!, async (r) => assertEquals(await r.get("survives"), "yes"));
      for (const p of [after.Master!, ...after.Slaves]) {
        assertEquals((await redisPids(p.Port)).length, 1, `one redis-server on ${p.Port}`);
      }
      // Nothing was relaunched.
      assert(!/Launching keep\./.test(sched.log().slice(logOffset)), "no relaunch after restart");
      // New work is accepted once this process holds the leader lock (the
      // killed one's lease runs out within its ttl; until then STATUS is
      // served read-only and changes answer 503).
      const restarted = sched;
      const accepted = await waitFor("the restarted sched to accept a CREATE", async () => {
        const res = await create(restarted, "fresh", 20, 0);
        return res.status === 503 ? undefined : res;
      }, { timeoutMs: 30_000, intervalMs: 500 });
      assertEquals(accepted.status, 201, accepted.text);
      await waitRunning(sched, "fresh", 60_000);

      // A clean stop (SIGTERM) with a remote master leaves the tasks running.
      await sched.stop();
      for (const p of [after.Master!, ...after.Slaves]) {
        assertEquals((await redisPids(p.Port)).length, 1, `still running on ${p.Port}`);
      }
      sched = await startSched({
        ...options,
        prefix: sched.prefix,
        httpPort: sched.httpPort,
        artifactPort: sched.artifactPort,
      });
      assertEquals((await list(sched)).map((v) => v.Name), ["keep", "fresh"]);
      await waitRunning(sched, "keep", 60_000);
      await deleteAndWait(sched, "fresh");
      await deleteAndWait(sched, "keep");
    } finally {
      await sched?.stop();
      mesos.kill("SIGTERM");
      await stdout.cancel().catch(() => {});
      await mesos.status;
      ports.release();
      await etcd.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
