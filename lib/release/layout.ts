/**
 * The layout of a release (`deno task release`): where its programs, bundles
 * and Deno runtime live, and how a running program finds the release it
 * belongs to.
 *
 * ```
 * mr-redis-<version>-linux-x64/
 *   sched  MrRedisExecutor  mrr  mesos_local      shell launchers
 *   lib/<program>.js                               bundles (deno bundle)
 *   lib/etcd3/proto/*.proto                        read by the etcd client at run time
 *   runtime/deno                                   the pinned Deno runtime (also shipped to agents)
 *   release.json                                   name, version, Deno version, runtime digest
 * ```
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fromFileUrl } from "./_paths.ts";

/** The Deno version releases are built for (and the runtime they carry). */
export const RELEASE_DENO_VERSION = "2.9.6";

/** The programs of a release: launcher name → entry point in `cmd/`. */
export const RELEASE_PROGRAMS = {
  sched: "sched",
  MrRedisExecutor: "executor",
  mrr: "mrr",
  mesos_local: "mesos_local",
} as const;

/** A program of a release. */
export type ReleaseProgram = keyof typeof RELEASE_PROGRAMS;

/** The Deno permissions each program runs with (in the launchers and `deno compile`). */
export const RELEASE_PERMISSIONS: Record<ReleaseProgram, readonly string[]> = {
  sched: [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  ],
  MrRedisExecutor: [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  ],
  mrr: ["--allow-net", "--allow-read", "--allow-write", "--allow-env"],
  mesos_local: [
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys",
  ],
};

/** The `release.json` of a release. */
export interface ReleaseManifest {
  /** `mr-redis`. */
  name: string;
  /** The version of mr-redis (deno.json `version`). */
  version: string;
  /** The version of the Deno runtime in `runtime/`. */
  deno: string;
  /** `linux-x64`. */
  platform: string;
  /**
   * The digest of `runtime/deno` (see `fileDigest` in shipping.ts), taken
   * when the release was built, so that a sched need not read the 95 MB
   * runtime at every start to name it. Absent in older releases.
   */
  runtimeDigest?: string;
}

/** A release found on disk. */
export interface Release {
  /** Its directory. */
  dir: string;
  /** Its manifest. */
  manifest: ReleaseManifest;
  /** The executor bundle, `lib/executor.js`. */
  executorBundle: string;
  /** The Deno runtime (`runtime/deno`), shipped to agents as it is. */
  runtime: string;
}

/** The bundle file of `program` in a release directory. */
export function bundlePath(dir: string, program: ReleaseProgram): string {
  return join(dir, "lib", `${RELEASE_PROGRAMS[program]}.js`);
}

function readManifest(dir: string): ReleaseManifest | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(join(dir, "release.json"));
  } catch {
    return undefined;
  }
  try {
    const raw = JSON.parse(text);
    if (
      typeof raw?.name === "string" && typeof raw.version === "string" &&
      typeof raw.deno === "string" && typeof raw.platform === "string"
    ) {
      const { name, version, deno, platform, runtimeDigest } = raw;
      // A digest that is not one is left out: the runtime is then digested.
      const digest = typeof runtimeDigest === "string" && /^[0-9a-f]{16}$/.test(runtimeDigest);
      return { name, version, deno, platform, ...(digest ? { runtimeDigest } : {}) };
    }
  } catch {
    // not a manifest
  }
  return undefined;
}

/** The release whose directory is `dir`, when it holds one. */
export function releaseAt(dir: string): Release | undefined {
  const manifest = readManifest(dir);
  if (!manifest) return undefined;
  return {
    dir,
    manifest,
    executorBundle: bundlePath(dir, "MrRedisExecutor"),
    runtime: join(dir, "runtime", "deno"),
  };
}

/**
 * The release the running program belongs to: its main module is a bundle in
 * `<release>/lib/`. `undefined` when it runs from source or compiled.
 */
export function currentRelease(mainModule: string = Deno.mainModule): Release | undefined {
  const file = fromFileUrl(mainModule);
  if (file === undefined || !file.endsWith(".js")) return undefined;
  const lib = dirname(file);
  return releaseAt(dirname(lib));
}

/** How to run a sibling program of the running one (for example `mesos_local` from `sched`). */
export interface ProgramCommand {
  /** The file to execute. */
  command: string;
  /** Arguments before the program's own. */
  args: string[];
}

/**
 * How to start `program` the way the running program was started: the
 * release's launcher, the compiled binary next to this one, or
 * `deno run` of `cmd/<entry>.ts` in this source tree.
 */
export function siblingProgram(
  program: ReleaseProgram,
  mainModule: string = Deno.mainModule,
  execPath: string = Deno.execPath(),
): ProgramCommand | undefined {
  const release = currentRelease(mainModule);
  if (release) return { command: join(release.dir, program), args: [] };
  const file = fromFileUrl(mainModule);
  if (file !== undefined && file.endsWith(".ts")) {
    const source = join(dirname(file), `${RELEASE_PROGRAMS[program]}.ts`);
    if (isFile(source)) {
      const config = join(dirname(dirname(file)), "deno.json");
      return {
        command: execPath,
        args: ["run", "-A", ...(isFile(config) ? ["--config", config] : []), source],
      };
    }
  }
  // Compiled: the binaries of `deno task compile` sit side by side.
  const compiled = join(dirname(execPath), program);
  return isFile(compiled) ? { command: compiled, args: [] } : undefined;
}

/** Whether `path` is a regular file. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
