/**
 * UPDATE end to end on the local cluster (3 agents, embedded store), with
 * the real `sched` process: scale 1+1 → 1+3 → 1+1 and resize 100 → 200 MB
 * while a client writes with `WAIT 1 1000` (no acknowledged write lost, at
 * most one promotion per resize), a scheduler SIGKILLed in the middle of a
 * resize resumes it, concurrent UPDATEs get 409.
 */
import { assert, assertEquals } from "./_assert.ts";
import { waitFor } from "./_util.ts";
import { create, deleteAndWait, type Sched, status, waitRunning } from "./_sched.ts";
import { logTail, startFailoverEnv } from "./_failover.ts";
import {
  maxMemoryMB,
  stopWriter,
  update,
  type UpdateView,
  waitUpdated,
  Writer,
} from "./_update.ts";

Deno.test({
  name:
    "UPDATE scales 1+1 → 1+3 → 1+1 and resizes 100 → 200 → 250 MB (two at once: 409; sched SIGKILLed midway) " +
    "while a client writes with WAIT 1 1000: no acknowledged write lost, one promotion per resize",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const env = await startFailoverEnv("e2e-update", 3);
    const sched = (): Sched => env.sched;
    let writer: Writer | undefined;
    try {
      // Distribution 2: 1+3 fits on 3 agents.
      assertEquals((await create(sched(), "upd", 100, 1, { Distribution: 2 })).status, 201);
      await waitRunning(sched(), "upd", 90_000);
      writer = new Writer(sched, "upd");
      const epoch0 = (await status(sched(), "upd"))!.Epoch ?? 0;

      await t.step("scale up 1+1 → 1+3: new slaves launch and sync, no promotion", async () => {
        const answer = await update(sched(), "upd", { Slaves: 3 });
        assertEquals(answer, { status: 202, text: "Request Accepted, Instance will be updated." });
        const view = await waitUpdated(sched, "upd", 3);
        assertEquals(view.SlavesWanted, 3);
        assertEquals(view.Epoch ?? 0, epoch0, "scaling promotes nobody");
        assertEquals(view.Type, "MS");
      });

      await t.step(
        "scale down 1+3 → 1+1: the slaves with the lowest offsets go, the master stays",
        async () => {
          const before = (await status(sched(), "upd"))!;
          const answer = await update(sched(), "upd", { Slaves: 1 });
          assertEquals(answer.status, 202, answer.text);
          const view = await waitUpdated(sched, "upd", 1);
          assertEquals(view.Master!.Port, before.Master!.Port, "the master is never removed");
          assertEquals(view.Epoch ?? 0, epoch0);
          assertEquals(view.SlavesWanted, 1);
        },
      );

      await t.step(
        "resize 100 → 200 MB (a concurrent UPDATE gets 409): rolling replacement, one promotion",
        async () => {
          // Two UPDATEs at once: the scheduler takes one, the other gets 409
          // (a resize takes seconds, so the first is still running).
          const answers = await Promise.all([
            update(sched(), "upd", { Capacity: 200 }),
            update(sched(), "upd", { Capacity: 200 }),
          ]);
          const codes = answers.map((a) => a.status).sort();
          assertEquals(codes, [202, 409], JSON.stringify(answers));
          const refused = answers.find((a) => a.status === 409)!.text;
          assert(
            /^Instance "upd" is already being updated \(.*\); one change at a time/.test(refused),
            refused,
          );
          const during = (await status(sched(), "upd")) as UpdateView;
          assertEquals(during.Update?.Target.Capacity, 200, JSON.stringify(during));
          const view = await waitUpdated(sched, "upd", 1);
          assertEquals(view.Capacity, 200);
          assertEquals((view.Epoch ?? 0) - epoch0, 1, "exactly one promotion");
          for (const p of [view.Master!, ...view.Slaves]) {
            assertEquals(p.MemoryCapacity, 200);
            assertEquals(await maxMemoryMB(p), 200);
          }
          assert(/resized: 100 MB, 1 slave.* → 200 MB/.test(view.LastEvent ?? ""), view.LastEvent!);
          const events = await (await sched().api("/v1/EVENTS/upd")).json() as {
            Kind: string;
            From?: number;
            To?: number;
          }[];
          const kinds = events.map((e) => `${e.Kind} ${e.From ?? ""}→${e.To ?? ""}`);
          assert(kinds.includes("scaled 1→3"), kinds.join(", "));
          assert(kinds.includes("scaled 3→1"), kinds.join(", "));
          assert(kinds.includes("resized 100→200"), kinds.join(", "));
        },
      );

      await t.step("a sched SIGKILLed in the middle of a resize resumes it", async () => {
        const epoch1 = (await status(sched(), "upd"))!.Epoch ?? 0;
        const answer = await update(sched(), "upd", { Capacity: 250 });
        assertEquals(answer.status, 202, answer.text);
        // Midway: a new 250 MB process runs beside the old ones.
        await waitFor("a 250 MB process running", async () => {
          const v = (await status(sched(), "upd")) as UpdateView | undefined;
          return v?.Update &&
            v.Slaves.some((s) => s.MemoryCapacity === 250 && s.State === "RUNNING");
        }, { timeoutMs: 120_000, intervalMs: 100 });
        await env.restartSched("kill");
        const resumed = (await status(sched(), "upd")) as UpdateView;
        assertEquals(resumed.Update?.Target.Capacity, 250, "the change survived the restart");
        const view = await waitUpdated(sched, "upd", 1);
        assertEquals(view.Capacity, 250);
        assertEquals((view.Epoch ?? 0) - epoch1, 1, "exactly one promotion");
        for (const p of [view.Master!, ...view.Slaves]) assertEquals(await maxMemoryMB(p), 250);
      });

      await t.step("no acknowledged write was lost", async () => {
        const result = await stopWriter(writer!, sched(), "upd");
        writer = undefined;
        const missing = result.missing;
        // Writes fail only around the two promotions (one per resize): the
        // scale steps and the scheduler's restart cost none.
        assert(
          result.outages <= 2,
          `${result.outages} outages: ${result.outageErrors.join("; ")}${logTail(sched(), 150)}`,
        );
        assertEquals(missing.length, 0, `lost: ${missing.slice(0, 10)}${logTail(sched(), 600)}`);
      });
      await deleteAndWait(sched(), "upd");
    } finally {
      await writer?.stop();
      await env.close();
    }
  },
});
