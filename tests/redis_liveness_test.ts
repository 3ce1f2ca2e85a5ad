/**
 * The executor's rules for telling a slow redis-server from a dead one
 * (`lib/redis/liveness.ts`, `lib/redis/stall_meter.ts`) as tables, and the
 * monitor built on them against a real redis-server: a long script (alive,
 * silent) is reported unresponsive and never hung; `SIGSTOP` is hung.
 */
import { assertEquals } from "./_assert.ts";
import {
  adaptiveTimeoutMs,
  classifyFailure,
  judgeUnanswered,
  LatencyWindow,
  parseProcStat,
  type ProcState,
} from "../lib/redis/liveness.ts";
import { stalledWithin } from "../lib/redis/stall_meter.ts";
import { nextCheckDelayMs, RedisMonitor, type RedisMonitorEvent } from "../lib/redis/monitor.ts";
import { RedisProcess } from "../lib/redis/server.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

Deno.test("adaptiveTimeoutMs: factor × the slowest recent answer, within floor and ceiling", () => {
  const o = { floorMs: 500, ceilingMs: 5_000, factor: 4 };
  const cases: [number[], number][] = [
    [[], 500],
    [[1, 2, 1], 500],
    [[100], 500],
    [[126], 504],
    [[10, 300, 20], 1_200],
    [[2_000], 5_000],
    [[NaN, 50], 500],
  ];
  for (const [recent, want] of cases) assertEquals(adaptiveTimeoutMs(recent, o), want, `${recent}`);
});

Deno.test("LatencyWindow keeps the last values in order", () => {
  const w = new LatencyWindow(3);
  for (const v of [1, 2, 3, 4, 5]) w.add(v);
  assertEquals(w.values, [3, 4, 5]);
});

Deno.test("classifyFailure: early errors count; time-outs across a stall do not", () => {
  const base = { timeoutMs: 500, lagAllowanceMs: 250 };
  const cases: [string, { elapsedMs: number; stalledMs?: number }, string][] = [
    ["refused at once", { elapsedMs: 3 }, "failure"],
    ["refused during a stall", { elapsedMs: 300, stalledMs: 2_000 }, "failure"],
    ["timed out on time", { elapsedMs: 510 }, "failure"],
    ["timed out 250 ms late", { elapsedMs: 750 }, "failure"],
    ["timed out 251 ms late", { elapsedMs: 751 }, "inconclusive"],
    ["timed out on time across a 1 s stall", { elapsedMs: 505, stalledMs: 1_000 }, "inconclusive"],
    ["timed out across a small stall", { elapsedMs: 505, stalledMs: 100 }, "failure"],
  ];
  for (const [name, c, want] of cases) {
    assertEquals(classifyFailure({ ...base, ...c }), want, name);
  }
});

Deno.test("judgeUnanswered: only a stopped process is hung; time-outs alone never kill", () => {
  const states: ProcState[] = [
    "running",
    "sleeping",
    "disk",
    "stopped",
    "zombie",
    "gone",
    "unknown",
  ];
  const want: Record<ProcState, string> = {
    running: "unresponsive",
    sleeping: "unresponsive",
    disk: "unresponsive",
    stopped: "hung",
    zombie: "unresponsive",
    gone: "unresponsive",
    unknown: "unresponsive",
  };
  for (const state of states) {
    assertEquals(judgeUnanswered({ failures: 2, maxFailures: 3, state }), "wait", state);
    assertEquals(judgeUnanswered({ failures: 3, maxFailures: 3, state }), want[state], state);
  }
});

Deno.test("parseProcStat reads the state letter after the command name", () => {
  const cases: [string, ProcState][] = [
    ["1234 (redis-server) S 1 1234 1234 0 -1", "sleeping"],
    ["1234 (redis-server *:6379) R 1 2 3", "running"],
    ["1234 (a) b) T 1 2", "stopped"],
    ["1234 (redis-server) t 1", "stopped"],
    ["1234 (redis-server) D 1", "disk"],
    ["1234 (redis-server) Z 1", "zombie"],
    ["1234 (kworker) I 2", "sleeping"],
    ["garbage", "unknown"],
  ];
  for (const [text, want] of cases) assertEquals(parseProcStat(text), want, text);
});

Deno.test("stalledWithin sums the stalls that ended in the window, clipped at its start", () => {
  const stalls = [{ at: 1_000, ms: 300 }, { at: 2_000, ms: 800 }, { at: 3_000, ms: 50 }];
  assertEquals(stalledWithin(stalls, 0, 5_000), 1_150);
  assertEquals(stalledWithin(stalls, 1_500, 2_500), 500, "the stall began before the window");
  assertEquals(stalledWithin(stalls, 2_100, 2_900), 0);
  assertEquals(stalledWithin([], 0, 10), 0);
});

async function withMonitored(
  fn: (p: RedisProcess, events: RedisMonitorEvent[], monitor: RedisMonitor) => Promise<void>,
  options: { intervalMs?: number; timeoutMs?: number } = {},
): Promise<void> {
  const dir = await tempDir("liveness");
  const p = await RedisProcess.start({ port: freePort(), dataDir: `${dir}/d`, maxMemoryMB: 8 });
  const events: RedisMonitorEvent[] = [];
  const monitor = new RedisMonitor(p, {
    intervalMs: 200,
    timeoutMs: 300,
    maxFailures: 3,
    ...options,
    onEvent: (e) => void events.push(e),
  });
  monitor.start();
  try {
    await waitFor("first info", () => events.some((e) => e.kind === "info"));
    await fn(p, events, monitor);
  } finally {
    await monitor.stop();
    p.kill("SIGCONT");
    await p.stop({ graceful: false, timeoutMs: 2_000 });
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("RedisMonitor: a busy (a 3 s script) redis-server is unresponsive, not hung, and answers again", async () => {
  await withMonitored(async (p, events) => {
    // The server is busy in a script: alive (running), silent for 3 s.
    const busy = "local s = tonumber(redis.call('TIME')[1]) " +
      "while tonumber(redis.call('TIME')[1]) < s + 3 do end return 1";
    const sleeper = p.client.call("EVAL", [busy, 0], 10_000).catch(() => {});
    const unresponsive = await waitFor(
      "an unresponsive event",
      () => events.find((e) => e.kind === "unresponsive"),
      { timeoutMs: 10_000, intervalMs: 20 },
    );
    assertEquals(unresponsive.kind === "unresponsive" && unresponsive.state !== "stopped", true);
    await sleeper;
    const at = events.indexOf(unresponsive);
    await waitFor("info again", () => events.slice(at).some((e) => e.kind === "info"), {
      timeoutMs: 10_000,
    });
    assertEquals(events.filter((e) => e.kind === "hung"), []);
    assertEquals(events.filter((e) => e.kind === "unresponsive").length, 1, "said once");
  });
});

Deno.test("RedisMonitor: a stopped (SIGSTOP) redis-server is hung, with its state", async () => {
  await withMonitored(async (p, events) => {
    p.kill("SIGSTOP");
    const hung = await waitFor("a hung event", () => events.find((e) => e.kind === "hung"), {
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    assertEquals(hung.kind === "hung" && [hung.failures, hung.state], [3, "stopped"]);
  });
});

Deno.test("RedisMonitor: checkNow during a check brings another check right after it", async () => {
  // The executor calls checkNow when a slave logs the end of its sync. A
  // check already on its way may have been answered before that: without a
  // second check the slave would wait for the next interval (here 60 s).
  await withMonitored(async (p, events, monitor) => {
    const infos = () => events.filter((e) => e.kind === "info").length;
    assertEquals(infos(), 1);
    // Keep the server busy for 500 ms, so that the next check waits for its answer.
    const busy = "local s, u = unpack(redis.call('TIME')) " +
      "local t0 = s * 1e6 + u " +
      "repeat local a, b = unpack(redis.call('TIME')) until a * 1e6 + b > t0 + 500000 return 1";
    const script = p.client.call("EVAL", [busy, 0], 10_000);
    await new Promise((r) => setTimeout(r, 100));
    monitor.checkNow(); // the second check starts and waits behind the script
    await new Promise((r) => setTimeout(r, 100));
    monitor.checkNow(); // during the second check: a third must follow it
    await script;
    await waitFor("the third check", () => infos() >= 3, { timeoutMs: 10_000 });
    assertEquals(events.filter((e) => e.kind !== "info"), []);
  }, { intervalMs: 60_000, timeoutMs: 10_000 });
});

Deno.test("nextCheckDelayMs waits for the shared grid of the interval, never past the interval", () => {
  const cases: [interval: number, spent: number, now: number, want: number][] = [
    // Started on the grid: the full rest of the interval.
    [500, 2, 1002, 498],
    // Off the grid: up to the next multiple, sooner than the rest of the interval.
    [500, 2, 1232, 268],
    [500, 10, 1499, 1],
    // Just past a grid point: the rest of the interval comes first.
    [500, 5, 1001, 495],
    // A slow answer: no more than what is left of the interval, nothing when it is spent.
    [500, 300, 1800, 200],
    [500, 499, 2250, 1],
    [500, 500, 2250, 0],
    [500, 700, 2250, 0],
    // Another period has its own grid.
    [250, 1, 1100, 150],
  ];
  for (const [interval, spent, now, want] of cases) {
    assertEquals(nextCheckDelayMs(interval, spent, now), want, `${interval} ${spent} ${now}`);
  }
  // Monitors of one period end up on the same instants, whatever their phase.
  const at = (start: number) => start + 3 + nextCheckDelayMs(500, 3, start + 3);
  assertEquals(new Set([at(7), at(123), at(311), at(480)]).size, 1);
});
