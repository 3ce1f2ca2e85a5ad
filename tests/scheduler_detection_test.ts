/**
 * The detection rules (`lib/scheduler/detection.ts`) as tables: when a
 * doubt about a RUNNING process is a verdict, when a direct check counts,
 * and who holds a copy of the data.
 */
import { assertEquals } from "./_assert.ts";
import {
  DEFAULT_DETECTION,
  hasOtherCopy,
  judgeLiveness,
  type LivenessInput,
  newProbeHistory,
  probeDue,
  type ProbeHistory,
  recordProbe,
} from "../lib/scheduler/detection.ts";
import { LivenessChecks } from "../lib/scheduler/liveness_checks.ts";
import type { ProcessRecord } from "../lib/model.ts";

const NOW = 1_000_000;

/** A process that sent stats a moment ago, nothing in doubt, another copy exists. */
function input(patch: Partial<LivenessInput> = {}): LivenessInput {
  return {
    now: NOW,
    statsAt: NOW - 500,
    streamFlowing: true,
    mesosState: "TASK_RUNNING",
    probeable: true,
    otherCopy: true,
    ...patch,
  };
}

/** Direct checks that failed `failures` times in a row, the first `spanMs` ago. */
function failing(failures: number, spanMs: number): ProbeHistory {
  return {
    failures,
    firstFailureAt: NOW - spanMs,
    lastStartedAt: NOW - 100,
    inFlight: false,
    lastError: "no answer within 1000 ms",
  };
}

/** Direct checks whose last one answered. */
const answering: ProbeHistory = {
  failures: 0,
  lastAnswerAt: NOW - 200,
  lastStartedAt: NOW - 300,
  inFlight: false,
};

Deno.test("judgeLiveness: the table", async (t) => {
  const silent = (ms: number) => ({ statsAt: NOW - ms });
  const cases: [string, Partial<LivenessInput>, string][] = [
    ["stats flowing, Mesos says RUNNING: alive", {}, "alive"],
    ["2.9 s without stats: alive", silent(2_900), "alive"],
    ["3 s without stats: in doubt", silent(3_000), "suspect"],
    ["Mesos TASK_UNREACHABLE: in doubt", { mesosState: "TASK_UNREACHABLE" }, "suspect"],
    ["Mesos TASK_UNKNOWN: in doubt", { mesosState: "TASK_UNKNOWN" }, "suspect"],
    ["Mesos TASK_LOST: in doubt", { mesosState: "TASK_LOST" }, "suspect"],
    ["executor's checks unanswered: in doubt", { unansweredSince: NOW - 1_500 }, "suspect"],
    // A process that answers stays, whatever the doubt and however long.
    [
      "60 s silent, Mesos unreachable, but it answers: kept in doubt",
      { ...silent(60_000), mesosState: "TASK_UNREACHABLE", probe: answering },
      "suspect",
    ],
    [
      "executor unanswered 60 s but it answers us: in doubt",
      { unansweredSince: NOW - 60_000, probe: answering },
      "suspect",
    ],
    // Confirmation needs enough failed checks over enough time.
    [
      "Mesos doubt, 2 failed checks: not yet",
      { mesosState: "TASK_UNREACHABLE", probe: failing(2, 3_000) },
      "suspect",
    ],
    [
      "Mesos doubt, 3 failed checks within 1.5 s: not yet",
      { mesosState: "TASK_UNREACHABLE", probe: failing(3, 1_500) },
      "suspect",
    ],
    [
      "Mesos doubt, 3 failed checks over 2 s: lost",
      { mesosState: "TASK_UNREACHABLE", probe: failing(3, 2_000) },
      "lost",
    ],
    [
      "Mesos doubt confirmed, the only copy: lost all the same (two independent signals)",
      { mesosState: "TASK_UNKNOWN", probe: failing(3, 2_000), otherCopy: false },
      "lost",
    ],
    // Time-outs alone must last lostAfterMs.
    [
      "9 s silent, checks failing: not yet",
      { ...silent(9_000), probe: failing(5, 5_000) },
      "suspect",
    ],
    ["10 s silent, checks failing: lost", { ...silent(10_000), probe: failing(5, 5_000) }, "lost"],
    [
      "10 s silent on a stalled event stream: not yet",
      { ...silent(10_000), probe: failing(5, 5_000), streamFlowing: false },
      "suspect",
    ],
    [
      "10 s silent, checks failing, the only copy: kept",
      { ...silent(10_000), probe: failing(5, 5_000), otherCopy: false },
      "kept",
    ],
    [
      "executor unanswered 9 s, checks failing: not yet",
      { unansweredSince: NOW - 9_000, probe: failing(3, 2_000) },
      "suspect",
    ],
    [
      "executor unanswered 10 s, checks failing: lost",
      { unansweredSince: NOW - 10_000, probe: failing(3, 2_000) },
      "lost",
    ],
    [
      "executor unanswered 10 s, checks failing, the only copy: kept",
      { unansweredSince: NOW - 10_000, probe: failing(3, 2_000), otherCopy: false },
      "kept",
    ],
    [
      "no address to check: Mesos doubt alone decides",
      { mesosState: "TASK_UNREACHABLE", probeable: false },
      "lost",
    ],
    [
      "no address to check, 10 s silent, the only copy: kept",
      { ...silent(10_000), probeable: false, otherCopy: false },
      "kept",
    ],
  ];
  for (const [name, patch, want] of cases) {
    await t.step(name, () => {
      assertEquals(judgeLiveness(input(patch)).verdict, want);
    });
  }
});

Deno.test("judgeLiveness: reasons name every doubt and the checks", () => {
  const lost = judgeLiveness(input({
    statsAt: NOW - 12_000,
    mesosState: "TASK_UNREACHABLE",
    probe: failing(3, 2_000),
  }));
  assertEquals(lost, {
    verdict: "lost",
    state: "TASK_UNREACHABLE",
    reason:
      "Mesos reports TASK_UNREACHABLE; no stats from its executor for 12 s and it does not answer the scheduler (3 checks, last: no answer within 1000 ms)",
  });
  const silentLost = judgeLiveness(input({ statsAt: NOW - 10_000, probe: failing(3, 2_000) }));
  assertEquals(silentLost.verdict === "lost" && silentLost.state, "TASK_UNKNOWN");
  const kept = judgeLiveness(input({
    unansweredSince: NOW - 11_000,
    procState: "sleeping",
    probe: failing(4, 3_000),
    otherCopy: false,
  }));
  assertEquals(kept, {
    verdict: "kept",
    reason:
      "Its executor's checks unanswered for 11 s (process sleeping) and it does not answer the scheduler (4 checks, last: no answer within 1000 ms); not replaced: it holds the only copy of the data",
  });
  const suspect = judgeLiveness(input({ statsAt: NOW - 4_000 }));
  assertEquals(suspect, {
    verdict: "suspect",
    doubt: "no stats from its executor for 4 s",
    askMesos: true,
  });
  const mesosOnly = judgeLiveness(input({ mesosState: "TASK_UNKNOWN" }));
  assertEquals(mesosOnly.verdict === "suspect" && mesosOnly.askMesos, false);
});

Deno.test("probeDue: one check at a time, one per interval", () => {
  const every = DEFAULT_DETECTION.probeIntervalMs;
  const cases: [string, ProbeHistory | undefined, boolean][] = [
    ["never checked", undefined, true],
    ["fresh history", newProbeHistory(), true],
    ["one in flight", { ...newProbeHistory(), inFlight: true, lastStartedAt: NOW - 5_000 }, false],
    ["started less than an interval ago", { ...answering, lastStartedAt: NOW - every + 1 }, false],
    ["started an interval ago", { ...answering, lastStartedAt: NOW - every }, true],
  ];
  for (const [name, history, want] of cases) assertEquals(probeDue(history, NOW), want, name);
});

Deno.test("recordProbe: answers reset, failures count, stalls do not", async (t) => {
  const check = { timeoutMs: 1_000 };
  const inFlight: ProbeHistory = { ...failing(2, 1_000), inFlight: true };
  await t.step("an answer resets the failures", () => {
    const h = recordProbe(inFlight, { ok: true, role: "master", latencyMs: 3 }, check, NOW);
    assertEquals(h, { failures: 0, inFlight: false, lastAnswerAt: NOW, lastStartedAt: NOW - 100 });
  });
  await t.step("a refusal counts", () => {
    const h = recordProbe(
      newProbeHistory(),
      { ok: false, error: "Connection refused", latencyMs: 2, timedOut: false },
      check,
      NOW,
    );
    assertEquals([h.failures, h.firstFailureAt, h.lastError], [1, NOW, "Connection refused"]);
  });
  await t.step("a time-out noticed on time counts, keeping the first failure's time", () => {
    const h = recordProbe(
      inFlight,
      { ok: false, error: "no answer within 1000 ms", latencyMs: 1_050, timedOut: true },
      check,
      NOW,
    );
    assertEquals([h.failures, h.firstFailureAt, h.inFlight], [3, NOW - 1_000, false]);
  });
  await t.step("a time-out noticed 2 s late does not count", () => {
    const h = recordProbe(
      inFlight,
      { ok: false, error: "no answer within 1000 ms", latencyMs: 3_000, timedOut: true },
      check,
      NOW,
    );
    assertEquals([h.failures, h.inFlight], [2, false]);
  });
  await t.step("a time-out across a stall of the scheduler does not count", () => {
    const h = recordProbe(
      inFlight,
      { ok: false, error: "no answer within 1000 ms", latencyMs: 1_010, timedOut: true },
      { timeoutMs: 1_000, stalledMs: 800 },
      NOW,
    );
    assertEquals(h.failures, 2);
  });
});

function proc(id: string, patch: Partial<ProcessRecord> = {}): ProcessRecord {
  return {
    id,
    taskId: `i.${id}.1`,
    role: id === "p1" ? "master" : "slave",
    state: "RUNNING",
    updatedAt: 0,
    ...patch,
  };
}

Deno.test("hasOtherCopy: the master, or a slave in sync, running and not in doubt", async (t) => {
  const synced = { role: "slave" as const, inSync: true };
  const syncing = { role: "slave" as const, inSync: false };
  const cases: [
    string,
    string,
    ProcessRecord[],
    [string, { role: "master" | "slave"; inSync: boolean }][],
    string[],
    boolean,
  ][] = [
    ["an S master: none", "p1", [proc("p1")], [], [], false],
    [
      "a master with a slave in sync",
      "p1",
      [proc("p1"), proc("p2")],
      [["i.p2.1", synced]],
      [],
      true,
    ],
    [
      "a master whose slave still syncs",
      "p1",
      [proc("p1"), proc("p2")],
      [["i.p2.1", syncing]],
      [],
      false,
    ],
    ["a master whose slave sent no stats", "p1", [proc("p1"), proc("p2")], [], [], false],
    [
      "a master whose synced slave is itself in doubt",
      "p1",
      [proc("p1"), proc("p2")],
      [["i.p2.1", synced]],
      ["i.p2.1"],
      false,
    ],
    [
      "a master whose synced slave is LOST",
      "p1",
      [proc("p1"), proc("p2", { state: "LOST" })],
      [["i.p2.1", synced]],
      [],
      false,
    ],
    ["a slave of a running master", "p2", [proc("p1"), proc("p2")], [], [], true],
    ["a slave of a master in doubt", "p2", [proc("p1"), proc("p2")], [], ["i.p1.1"], false],
    [
      "a slave of a master in doubt, with another slave in sync",
      "p2",
      [proc("p1"), proc("p2"), proc("p3")],
      [["i.p3.1", synced]],
      ["i.p1.1"],
      true,
    ],
  ];
  for (const [name, self, procs, stats, doubted, want] of cases) {
    await t.step(name, () => {
      const me = procs.find((p) => p.id === self)!;
      assertEquals(hasOtherCopy(me, procs, "p1", new Map(stats), new Set(doubted)), want);
    });
  }
});

Deno.test("LivenessChecks: one check at a time; its deadline doubles with each failure, to 5 s", async () => {
  const deadlines: number[] = [];
  let clock = NOW;
  const checks = new LivenessChecks({}, (t) => {
    deadlines.push(t.timeoutMs);
    return Promise.resolve({
      ok: false,
      error: "Connection refused",
      latencyMs: 1,
      timedOut: false,
    });
  }, () => clock);
  for (let i = 0; i < 5; i++) {
    let record: (() => void) | undefined;
    assertEquals(checks.probeIfDue("t", { host: "127.0.0.1", port: 1 }, (r) => record = r), true);
    assertEquals(
      checks.probeIfDue("t", { host: "127.0.0.1", port: 1 }, () => {}),
      false,
      "in flight",
    );
    await checks.settled();
    record!();
    clock += DEFAULT_DETECTION.probeIntervalMs;
  }
  assertEquals(deadlines, [1_000, 2_000, 4_000, 5_000, 5_000]);
  assertEquals(checks.history("t")?.failures, 5);
  checks.clear("t");
  assertEquals(checks.history("t"), undefined);
});
