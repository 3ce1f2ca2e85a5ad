/**
 * The floor of a Deno process per agent (bench/_floor.ts), which the create
 * benchmark reports next to its cold and warm figures: it starts real
 * redis-servers through three Deno workers, reports the time and the
 * workers' CPU, and leaves no worker or server behind, also when it gives up.
 */
import { floorStart } from "../bench/_floor.ts";
import { assert, assertRejects } from "./_assert.ts";
import { processesWhere } from "./_procs.ts";

/** Floor workers still running. */
const workers = () => processesWhere(({ cmd }) => cmd.includes("_floor_worker.ts"));
/** redis-servers still running in a data directory of the floor's. */
const floorServers = () =>
  processesWhere(({ cmd, cwd }) =>
    cmd.includes("redis-server") && cwd.includes("/mr-redis-floor-")
  );

Deno.test("the floor starts 1+3 through three Deno workers, cold and warm, and stops them all", async () => {
  for (const cold of [true, false]) {
    const { seconds, cpuSeconds } = await floorStart(3, { cold });
    assert(seconds > 0 && seconds < 60, `${cold ? "cold" : "warm"}: took ${seconds} s`);
    // Three Deno processes that started redis-servers and read their output
    // used some CPU; cold, their start-up is in it too.
    assert(cpuSeconds > 0, `${cold ? "cold" : "warm"}: the workers' CPU was ${cpuSeconds} s`);
    assert(workers().length === 0, "a floor worker is still running");
    assert(floorServers().length === 0, "a floor redis-server is still running");
  }
});

Deno.test("the floor gives up at its deadline with a message naming it, and leaves nothing running", async () => {
  const error = await assertRejects(() => floorStart(3, { cold: true, timeoutMs: 1 }));
  assert(
    error instanceof Error && error.message.includes("did not sync within 1 ms"),
    `rejected with ${error}`,
  );
  assert(workers().length === 0, "a floor worker is still running");
  assert(floorServers().length === 0, "a floor redis-server is still running");
});
