/**
 * The create benchmark's cold samples on a running local cluster
 * (bench/_create.ts): each sample's sched is a new framework against the same
 * cluster, its create reaches RUNNING, and nothing of it (scheds, the
 * cluster, executors, redis-servers) is left running afterwards.
 */
import { openRunningCluster } from "../bench/_create.ts";
import { assert, assertEquals } from "./_assert.ts";
import { processesWhere } from "./_procs.ts";

/** Processes whose command line or working directory names a directory of these samples. */
const leftovers = () =>
  processesWhere(({ cmd, cwd }) =>
    cmd.includes("mr-redis-bench-cold-up-") || cwd.includes("mr-redis-bench-cold-up-")
  ).map(({ pid, cmd }) => `${pid}: ${cmd.slice(0, 120)}`);

Deno.test("cold creates on a running local cluster: a fresh sched per sample, nothing left running", async () => {
  const running = await openRunningCluster(2, 3);
  try {
    for (let i = 0; i < 2; i++) {
      const { seconds } = await running.sample();
      assert(seconds > 0 && seconds < 60, `took ${seconds} s`);
    }
  } finally {
    await running.close();
  }
  assertEquals(leftovers(), []);
});
