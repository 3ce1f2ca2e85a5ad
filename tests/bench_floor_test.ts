/**
 * The floor of a Deno process per agent (bench/_floor.ts), which the create
 * benchmark reports next to its cold and warm figures: it starts real
 * redis-servers through three Deno workers, reports the time and the
 * workers' CPU, and leaves no worker or server behind, also when it gives up.
 */
import { floorStart } from "../bench/_floor.ts";
import { assert, assertRejects } from "./_assert.ts";

/** Pids of processes whose command line contains `needle`. */
function processesWith(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!pid || pid === Deno.pid) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes(needle)) pids.push(pid);
    } catch { /* gone */ }
  }
  return pids;
}

/** The redis-servers whose data directory is one of the floor's. */
function floorServers(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!pid) continue;
    try {
      if (!Deno.readTextFileSync(`/proc/${pid}/cmdline`).startsWith("redis-server")) continue;
      if (Deno.readLinkSync(`/proc/${pid}/cwd`).includes("mr-redis-floor-")) pids.push(pid);
    } catch { /* gone */ }
  }
  return pids;
}

Deno.test("the floor starts 1+3 through three Deno workers, cold and warm, and stops them all", async () => {
  for (const cold of [true, false]) {
    const { seconds, cpuSeconds } = await floorStart(3, { cold });
    assert(seconds > 0 && seconds < 60, `${cold ? "cold" : "warm"}: took ${seconds} s`);
    // Three Deno processes that started redis-servers and read their output
    // used some CPU; cold, their start-up is in it too.
    assert(cpuSeconds > 0, `${cold ? "cold" : "warm"}: the workers' CPU was ${cpuSeconds} s`);
    assert(processesWith("_floor_worker.ts").length === 0, "a floor worker is still running");
    assert(floorServers().length === 0, "a floor redis-server is still running");
  }
});

Deno.test("the floor gives up at its deadline with a message naming it, and leaves nothing running", async () => {
  const error = await assertRejects(() => floorStart(3, { cold: true, timeoutMs: 1 }));
  assert(
    error instanceof Error && error.message.includes("did not sync within 1 ms"),
    `rejected with ${error}`,
  );
  assert(processesWith("_floor_worker.ts").length === 0, "a floor worker is still running");
  assert(floorServers().length === 0, "a floor redis-server is still running");
});
