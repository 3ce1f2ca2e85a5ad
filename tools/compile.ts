/**
 * `deno task compile`: the four programs as `deno compile` binaries in
 * `dist/` (`sched`, `MrRedisExecutor`, `mrr`, `mesos_local`). `deno compile`
 * needs Deno's `denort` runtime, which it downloads from dl.deno.land (or
 * takes from `DENORT_BIN`); where that cannot be had this stops at once with
 * one line pointing to `deno task release`, which needs only the npm registry.
 *
 * Exit codes: 0 built, 1 cannot compile (one line says why).
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import {
  RELEASE_DENO_VERSION,
  RELEASE_PERMISSIONS,
  RELEASE_PROGRAMS,
  type ReleaseProgram,
} from "../lib/release/layout.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/**
 * Worker modules a program starts by URL, which `deno compile` finds only
 * when told: the executor's proxy thread and `mrr proxy --threads`.
 */
const WORKER_MODULES: Partial<Record<ReleaseProgram, string[]>> = {
  MrRedisExecutor: ["lib/proxy/_thread_worker.ts"],
  mrr: ["lib/proxy/_worker.ts"],
};
const DENORT_URL =
  `https://dl.deno.land/release/v${Deno.version.deno}/denort-x86_64-unknown-linux-gnu.zip`;

/** Why denort is not available, or `undefined` when it is. */
async function denortMissing(): Promise<string | undefined> {
  const bin = Deno.env.get("DENORT_BIN");
  if (bin) {
    try {
      if ((await Deno.stat(bin)).isFile) return undefined;
    } catch {
      // reported below
    }
    return `DENORT_BIN "${bin}" is not a file`;
  }
  const denoDir = Deno.env.get("DENO_DIR") ||
    join(Deno.env.get("XDG_CACHE_HOME") || join(Deno.env.get("HOME") || "/tmp", ".cache"), "deno");
  try {
    const cached = join(denoDir, "dl", "release", `v${Deno.version.deno}`);
    for await (const entry of Deno.readDir(cached)) {
      if (entry.name.startsWith("denort-x86_64-unknown-linux-gnu")) return undefined;
    }
  } catch {
    // not cached
  }
  try {
    const response = await fetch(DENORT_URL, {
      method: "HEAD",
      signal: AbortSignal.timeout(5000),
    });
    await response.body?.cancel();
    return response.ok ? undefined : `${DENORT_URL} answers HTTP ${response.status}`;
  } catch (error) {
    return `${DENORT_URL} cannot be reached (${(error as Error).message.split("\n")[0]})`;
  }
}

/** Compiles every program into `dist/`; returns the exit code. */
export async function main(): Promise<number> {
  if (Deno.version.deno !== RELEASE_DENO_VERSION) {
    console.error(
      `deno task compile: this is Deno ${Deno.version.deno}, releases are built with ${RELEASE_DENO_VERSION}`,
    );
    return 1;
  }
  const missing = await denortMissing();
  if (missing) {
    console.error(
      `deno task compile needs Deno's denort runtime (downloaded from dl.deno.land, or a local copy in DENORT_BIN): ${missing}; use "deno task release" instead, which needs only the npm registry`,
    );
    return 1;
  }
  for (const program of Object.keys(RELEASE_PROGRAMS) as ReleaseProgram[]) {
    const workers = (WORKER_MODULES[program] ?? []).flatMap((m) => ["--include", m]);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        ...RELEASE_PERMISSIONS[program],
        ...workers,
        "--target",
        "x86_64-unknown-linux-gnu",
        "--output",
        join("dist", program),
        `cmd/${RELEASE_PROGRAMS[program]}.ts`,
      ],
      cwd: ROOT,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!out.success) {
      console.error(`deno task compile: compiling cmd/${RELEASE_PROGRAMS[program]}.ts failed`);
      return 1;
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
