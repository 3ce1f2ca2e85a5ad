/**
 * A single server (S) resized end to end on the local cluster, with the real
 * `sched` process, while a client writes without `WAIT`: a write is
 * acknowledged by the server's `OK` alone, so the new process must get every
 * one of them before the old one is killed (the planned switch drains it).
 */
import { assertEquals } from "./_assert.ts";
import { create, deleteAndWait, type Sched, status, waitRunning } from "./_sched.ts";
import { logTail, startFailoverEnv } from "./_failover.ts";
import { maxMemoryMB, stopWriter, update, waitUpdated, Writer } from "./_update.ts";

Deno.test({
  name: "UPDATE resizes a single server 100 → 200 → 300 MB under writes with no WAIT: " +
    "no acknowledged write lost, one promotion per resize",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-update-single", 2);
    const sched = (): Sched => env.sched;
    let writer: Writer | undefined;
    try {
      assertEquals((await create(sched(), "one", 100, 0)).status, 201);
      await waitRunning(sched(), "one", 90_000);
      writer = new Writer(sched, "one", { waitReplica: false });
      const epoch0 = (await status(sched(), "one"))!.Epoch ?? 0;
      for (const [i, capacity] of [200, 300].entries()) {
        const answer = await update(sched(), "one", { Capacity: capacity });
        assertEquals(answer.status, 202, answer.text);
        const view = await waitUpdated(sched, "one", 0);
        assertEquals(view.Capacity, capacity);
        assertEquals(view.Type, "S");
        assertEquals((view.Epoch ?? 0) - epoch0, i + 1, "one promotion per resize");
        assertEquals(await maxMemoryMB(view.Master!), capacity);
      }
      const { missing } = await stopWriter(writer, sched(), "one");
      writer = undefined;
      assertEquals(missing.length, 0, `lost: ${missing.slice(0, 10)}${logTail(sched(), 300)}`);
      await deleteAndWait(sched(), "one");
    } finally {
      await writer?.stop();
      await env.close();
    }
  },
});
