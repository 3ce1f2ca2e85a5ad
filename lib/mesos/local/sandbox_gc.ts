/**
 * Garbage collection of executor sandboxes, like the Mesos agent's
 * `--gc_delay`: the run directory of an executor that ended is removed once
 * it is older than the delay.
 *
 * @module
 */

import { join } from "node:path";

const MAX_TIMER_MS = 2_147_483_647;

async function dirs(path: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(path)) if (e.isDirectory) names.push(e.name);
  } catch {
    // gone or not a dir
  }
  return names;
}

/**
 * Removes every sandbox (`agents/<a>/frameworks/<f>/executors/<e>/runs/<c>`)
 * under `workDir` last modified more than `delayMs` ago. Call it when no
 * executor of the cluster runs (at start). Returns how many were removed.
 */
export async function collectSandboxes(
  workDir: string,
  delayMs: number,
  log: (line: string) => void = () => {},
): Promise<number> {
  const before = Date.now() - delayMs;
  let removed = 0;
  const agents = join(workDir, "agents");
  for (const a of await dirs(agents)) {
    const frameworks = join(agents, a, "frameworks");
    for (const f of await dirs(frameworks)) {
      const executors = join(frameworks, f, "executors");
      for (const e of await dirs(executors)) {
        const runs = join(executors, e, "runs");
        for (const c of await dirs(runs)) {
          const run = join(runs, c);
          try {
            const mtime = (await Deno.stat(run)).mtime?.getTime() ?? 0;
            if (mtime > before) continue;
            await Deno.remove(run, { recursive: true });
            removed++;
          } catch {
            // raced with something else: leave it
          }
        }
      }
    }
  }
  if (removed > 0) log(`Removed ${removed} sandbox(es) older than ${Math.round(delayMs / 1000)} s`);
  return removed;
}

/**
 * Removes `sandbox` after `delayMs` (an unreferenced timer: it does not keep
 * the process alive); returns a function that cancels it.
 */
export function scheduleSandboxRemoval(sandbox: string, delayMs: number): () => void {
  const timer = setTimeout(() => {
    Deno.remove(sandbox, { recursive: true }).catch(() => {});
  }, Math.min(delayMs, MAX_TIMER_MS));
  Deno.unrefTimer(timer);
  return () => clearTimeout(timer);
}
