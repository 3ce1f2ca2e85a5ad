/**
 * The master lost at each step of a resize, end to end on the local cluster
 * with the real `sched` process: a client writes with `WAIT 1 1000`
 * throughout; each resize's master redis-server is SIGKILLed as soon as
 * STATUS shows the step named (before the new slave syncs, with the new
 * slave in sync beside the old one, as the old slave is retired and a second
 * new slave joins to take the master's place). Every time the change
 * completes with a slave promoted in the master's place, and no write the
 * client had acknowledged is lost.
 */
import { assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { create, deleteAndWait, redisPids, type Sched, status, waitRunning } from "./_sched.ts";
import { logTail, startFailoverEnv } from "./_failover.ts";
import { stopWriter, update, type UpdateView, waitUpdated, Writer } from "./_update.ts";

/**
 * The steps of a 1+1 resize before its planned switch, in order, as STATUS
 * names them (`Update.Phase`). The third begins in the planning pass that
 * retires the old slave: a kill then is the double fault of a master lost
 * just as its old slave goes. The planned switch itself ("switching master")
 * is over within milliseconds when the new slaves are streaming, too soon to
 * be hit from STATUS.
 */
const STEPS = [
  "replacing slaves (1 old left, 0 new in sync)",
  "replacing slaves (1 old left, 1 new in sync)",
  "adding slaves to replace the master",
];

Deno.test({
  name: "UPDATE: the master SIGKILLed at each step of a resize: each change completes " +
    "and no acknowledged write is lost",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-update-kill-points", 3);
    const sched = (): Sched => env.sched;
    let writer: Writer | undefined;
    try {
      assertEquals((await create(sched(), "kp", 100, 1)).status, 201);
      await waitRunning(sched(), "kp", 90_000);
      let capacity = 100;
      const landed: string[] = [];
      for (const [target, step] of STEPS.entries()) {
        const before = (await status(sched(), "kp"))!;
        const pids = await redisPids(before.Master!.Port);
        assertEquals(pids.length, 1, `one redis-server on ${before.Master!.Port}`);
        writer = new Writer(sched, "kp");
        // Writes flowing before the change: the old slave acknowledges them.
        await new Promise((r) => setTimeout(r, 300));
        capacity += 20;
        const answer = await update(sched(), "kp", { Capacity: capacity });
        assertEquals(answer.status, 202, answer.text);
        // The step, or a later one when it went by between two looks.
        const seen = await waitFor(`the step "${step}"`, async () => {
          const view = (await status(sched(), "kp")) as UpdateView | undefined;
          const phase = view?.Update?.Phase;
          if (!view?.Update) return "the change over";
          const at = STEPS.findIndex((s) => phase?.startsWith(s));
          return at >= target ? phase : undefined;
        }, { timeoutMs: 60_000, intervalMs: 5 });
        try {
          Deno.kill(pids[0]!, "SIGKILL");
          landed.push(seen);
        } catch { /* the planned switch stopped it first */ }
        const view = await waitUpdated(sched, "kp", 1);
        assertEquals(view.Capacity, capacity, `killed at "${seen}"`);
        const { missing } = await stopWriter(writer, sched(), "kp");
        writer = undefined;
        assertEquals(
          missing.length,
          0,
          `killed at "${seen}"; lost: ${missing.slice(0, 10)}${logTail(sched(), 200)}`,
        );
      }
      console.log(`the master was killed at: ${landed.join("; ")}`);
      // Every kill came before the planned switch, so each found the master alive.
      assertEquals(landed.length, STEPS.length, landed.join("; "));
      await deleteAndWait(sched(), "kp");
    } finally {
      await writer?.stop();
      await env.close();
    }
  },
});
