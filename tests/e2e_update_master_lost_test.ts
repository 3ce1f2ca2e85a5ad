/**
 * A double fault in a resize, end to end on the local cluster with the real
 * `sched` process: a client writes with `WAIT 1 1000`, the resize retires the
 * old slave once a new one is in sync, and the master's redis-server is
 * SIGKILLed the moment the old slave stops answering. The new slave is
 * promoted; it must hold every write the client had acknowledged. A new
 * slave fresh from its sync can be online for up to a second before its
 * master streams to it, so the old slave may go only once the master streams
 * to the new one (`streamingSlaves`).
 */
import type { Redis } from "ioredis";
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { create, deleteAndWait, redisOf, type Sched, status, waitRunning } from "./_sched.ts";
import { logTail, pidOfPort, startFailoverEnv } from "./_failover.ts";
import { stopWriter, update, waitUpdated, Writer } from "./_update.ts";

/** Resolves once `client` stops answering PING (its server is gone). */
async function gone(client: Redis): Promise<void> {
  await waitFor("the old slave retired", async () => {
    try {
      await client.ping();
      return false;
    } catch {
      return true;
    }
  }, { timeoutMs: 30_000, intervalMs: 5 });
}

Deno.test({
  name: "UPDATE: the master SIGKILLed the moment a resize retired the old slave: " +
    "the new slave is promoted with every acknowledged write",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-update-lost", 3);
    const sched = (): Sched => env.sched;
    let writer: Writer | undefined;
    let oldSlave: Redis | undefined;
    try {
      assertEquals((await create(sched(), "dbl", 100, 1)).status, 201);
      const before = await waitRunning(sched(), "dbl", 90_000);
      oldSlave = redisOf(before.Slaves[0]!);
      oldSlave.on("error", () => {});
      await oldSlave.connect();
      const masterPid = await pidOfPort(before.Master!.Port);
      writer = new Writer(sched, "dbl");
      // Writes flowing before the change: the old slave acknowledges them.
      await new Promise((r) => setTimeout(r, 500));
      const answer = await update(sched(), "dbl", { Capacity: 200 });
      assertEquals(answer.status, 202, answer.text);
      await gone(oldSlave).catch(async (e) => {
        throw new Error(
          `${e.message}; ${JSON.stringify(await status(sched(), "dbl"))}${logTail(sched(), 60)}`,
        );
      });
      Deno.kill(masterPid, "SIGKILL");
      const view = await waitUpdated(sched, "dbl", 1);
      assertEquals(view.Capacity, 200);
      assert(view.Master!.Port !== before.Master!.Port, "a new master");
      const { missing } = await stopWriter(writer, sched(), "dbl");
      writer = undefined;
      assertEquals(missing.length, 0, `lost: ${missing.slice(0, 10)}${logTail(sched(), 300)}`);
      await deleteAndWait(sched(), "dbl");
    } finally {
      oldSlave?.disconnect();
      await writer?.stop();
      await env.close();
    }
  },
});
