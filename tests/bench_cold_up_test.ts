/**
 * The create benchmark's cold samples on a running local cluster
 * (bench/_create.ts): each sample's sched is a new framework against the same
 * cluster, its create reaches RUNNING, and nothing of it (scheds, the
 * cluster, executors, redis-servers) is left running afterwards.
 */
import { openRunningCluster } from "../bench/_create.ts";
import { assert, assertEquals } from "./_assert.ts";

/** Processes whose command line or working directory names a directory of these samples. */
function leftovers(): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!pid) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      if (/ Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`).split(")")[1] ?? "")) continue;
      const cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
      if (cmdline.includes("mr-redis-bench-cold-up-") || cwd.includes("mr-redis-bench-cold-up-")) {
        found.push(`${pid}: ${cmdline.replaceAll("\0", " ").slice(0, 120)}`);
      }
    } catch { /* gone, or not ours */ }
  }
  return found;
}

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
