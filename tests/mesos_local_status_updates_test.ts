/**
 * The agent's status update manager (protocol reference §6 item 15): one
 * update in flight per task, in order, resent with a doubling interval up
 * to the cap until acknowledged, nothing while paused, everything at once
 * on resend. Real timers with short intervals; the checks are on order and
 * on lower bounds of the gaps, never on how fast anything runs.
 */
import { assert, assertEquals } from "./_assert.ts";
import { StatusUpdateManager } from "../lib/mesos/local/status_updates.ts";
import type { TaskStatus } from "../lib/mesos/local/messages.ts";

function status(taskId: string, state: string, n: number): TaskStatus {
  const uuid = new Uint8Array(16);
  uuid[0] = n;
  return { task_id: { value: taskId }, state, uuid };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("status updates: in order, resent with a doubling interval until acknowledged", async () => {
  const sent: { task: string; n: number; at: number }[] = [];
  const manager = new StatusUpdateManager({
    initialIntervalMs: 40,
    maxIntervalMs: 160,
    forward: (_fid, s) => sent.push({ task: s.task_id.value, n: s.uuid![0]!, at: Date.now() }),
  });
  try {
    const a1 = status("a", "TASK_STARTING", 1);
    const a2 = status("a", "TASK_RUNNING", 2);
    assertEquals(manager.add("f", a1), "added");
    assertEquals(manager.add("f", a2), "added");
    assertEquals(manager.add("f", a1), "duplicate");
    assertEquals(manager.add("f", status("b", "TASK_RUNNING", 3)), "added");
    // a1 and b3 go out at once; a2 waits behind a1.
    assertEquals(sent.map((s) => `${s.task}${s.n}`), ["a1", "b3"]);
    assertEquals(manager.pendingCount("f"), 3);
    await until("a1 sent 5 times", () => sent.filter((s) => s.n === 1).length >= 5);
    const times = sent.filter((s) => s.n === 1).map((s) => s.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 40, 80, 160, 160 (capped): each gap at least its interval.
    for (const [i, least] of [40, 80, 160, 160].entries()) {
      assert(gaps[i]! >= least - 2, `gap ${i} is ${gaps[i]} ms, expected at least ${least}`);
    }
    assert(!sent.some((s) => s.n === 2), "a2 waits until a1 is acknowledged");
    // The ack takes a1 off; a2 goes out at once, with the interval reset.
    assertEquals(manager.acknowledge("f", "a", new Uint8Array(16).fill(9)), undefined);
    const acked = manager.acknowledge("f", "a", a1.uuid!);
    assertEquals(acked?.status.state, "TASK_STARTING");
    assertEquals(acked?.finished, false);
    assertEquals(sent.at(-1)?.n, 2);
    const a2At = sent.at(-1)!.at;
    const a1Count = sent.filter((s) => s.n === 1).length;
    await until("a2 resent", () => sent.filter((s) => s.n === 2).length >= 2);
    assert(sent.filter((s) => s.n === 2)[1]!.at - a2At >= 38, "a2's first resend after 40 ms");
    assertEquals(sent.filter((s) => s.n === 1).length, a1Count, "a1 is not resent after its ack");
    // Paused: nothing goes out; resendAll sends every update in flight at once.
    manager.pause();
    const before = sent.length;
    await new Promise((r) => setTimeout(r, 200));
    assertEquals(sent.length, before, "nothing is sent while paused");
    manager.resendAll();
    assertEquals(sent.slice(before).map((s) => `${s.task}${s.n}`).sort(), ["a2", "b3"]);
    assertEquals(manager.latestState("f", "a"), "TASK_RUNNING");
  } finally {
    manager.clear();
  }
});
