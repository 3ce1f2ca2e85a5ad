/**
 * What the scheduler ships to agents: the executor (a compiled binary, or a
 * release's bundle with its Deno runtime, or — on this host only — the
 * development launcher) and, when configured, a redis-server binary, as
 * `CommandInfo.uris` the Mesos fetcher understands.
 *
 * Files whose URI may be cached by the agent's fetcher are served under a
 * path holding a digest of their content (`/a/<digest>/<name>`), so a cached
 * copy is never stale: the 95 MB runtime travels once per agent, not once
 * per executor launch.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename } from "node:path";
import type { CommandURI } from "../mesos/types.ts";
import { ConfigError } from "../config.ts";
import { isFile, type Release, RELEASE_PERMISSIONS, releaseAt } from "./layout.ts";

/** The executor the scheduler ships. */
export type ExecutorArtifact =
  | { kind: "binary"; path: string }
  | { kind: "release"; release: Release }
  | { kind: "launcher"; script: string };

/** What {@linkcode chooseExecutorArtifact} decides from. */
export interface ExecutorChoiceInput {
  /** Config `ExecutorPath` ("" = the executor that comes with this sched). */
  executorPath: string;
  /** Config `Master`, for the messages. */
  master: string;
  /** Config `LocalNetwork` (agents of the local cluster as hosts of their own), for the messages. */
  localNetwork?: string;
  /** Whether every agent runs on this host (see {@linkcode agentsShareHost}). */
  agentsShareHost: boolean;
  /** The release this sched runs from, if any. */
  release?: Release;
  /** The compiled `MrRedisExecutor` next to this compiled sched, if any. */
  compiledSibling?: string;
  /** The development launcher script, when sched runs from source. */
  launcher?: string;
}

/**
 * Chooses the executor to ship. An explicit `ExecutorPath` names a compiled
 * executor, a release's `MrRedisExecutor` launcher or a release directory;
 * empty means the one that comes with this sched. The development launcher
 * (from source) is refused unless every agent shares this host. Throws
 * {@linkcode ConfigError} with one line naming the field.
 */
export function chooseExecutorArtifact(input: ExecutorChoiceInput): ExecutorArtifact {
  const path = input.executorPath;
  if (path !== "") {
    const asDir = releaseAt(path);
    if (asDir) return { kind: "release", release: asDir };
    if (!isFile(path)) {
      throw new ConfigError(
        `Field "ExecutorPath" names "${path}", which is neither a file nor a release directory`,
      );
    }
    const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) || "/" : ".";
    const beside = basename(path) === "MrRedisExecutor" ? releaseAt(parent) : undefined;
    if (beside) return { kind: "release", release: beside };
    return { kind: "binary", path };
  }
  if (input.release) return { kind: "release", release: input.release };
  if (input.compiledSibling) return { kind: "binary", path: input.compiledSibling };
  if (input.launcher !== undefined) {
    if (!input.agentsShareHost) {
      throw new ConfigError(
        `Field "ExecutorPath" is empty and sched runs from source, whose development launcher works only on this host, but ${
          input.localNetwork
            ? `the agents of Master "${input.master}" are hosts of their own (LocalNetwork "${input.localNetwork}")`
            : `Master "${input.master}" is not local`
        }; run the sched of a release (deno task release) or set ExecutorPath to a compiled MrRedisExecutor`,
      );
    }
    return { kind: "launcher", script: input.launcher };
  }
  throw new ConfigError(
    `Field "ExecutorPath" is empty and no MrRedisExecutor comes with this sched; set it to a compiled MrRedisExecutor or a release directory`,
  );
}

/** One file the artifact server serves. */
export interface ShippedFile {
  /** URL path on the artifact server, e.g. `/a/1f2e.../MrRedisExecutor.js`. */
  urlPath: string;
  /** The file on disk. */
  source: { path: string };
  /** `CommandInfo.URI.executable`. */
  executable: boolean;
  /** `CommandInfo.URI.extract`. */
  extract: boolean;
  /** `CommandInfo.URI.cache`. */
  cache: boolean;
}

/** Everything an agent needs to run the executor. */
export interface Shipment {
  /** The files, in fetch order. */
  files: ShippedFile[];
  /** `CommandInfo.value`, run by the shell in the sandbox. */
  command: string;
  /** Environment of the executor (`MRR_REDIS_SERVER` when a redis-server is shipped). */
  environment: Record<string, string>;
  /** Whether a redis-server binary is shipped. */
  shipsRedisServer: boolean;
  /** What is shipped, for the log. */
  description: string;
}

/** The first 16 hex digits of the SHA-256 of a file, read in chunks. */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex").slice(0, 16);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Plans the shipment of `artifact` (and of `redisServerPath` when it names a
 * file): the files to serve with their URI flags and the command the agent
 * runs. Reads the files to digest them.
 */
export async function planShipment(
  artifact: ExecutorArtifact,
  redisServerPath = "",
): Promise<Shipment> {
  const files: ShippedFile[] = [];
  let command: string;
  let description: string;
  if (artifact.kind === "binary") {
    files.push({
      urlPath: `/a/${await fileDigest(artifact.path)}/MrRedisExecutor`,
      source: { path: artifact.path },
      executable: true,
      extract: false,
      cache: true,
    });
    command = "./MrRedisExecutor";
    description = `the compiled executor ${artifact.path}`;
  } else if (artifact.kind === "release") {
    const { release } = artifact;
    // The runtime goes as the file it is, not as an archive: the fetcher
    // copies a cached file into each sandbox in milliseconds, where
    // extracting the 40 MB archive took about 1 CPU-second at every executor
    // start (bench/RESULTS.md, round 18). The first download per agent is
    // 95 MB instead of 40.
    files.push({
      urlPath: `/a/${release.manifest.runtimeDigest ?? await fileDigest(release.runtime)}/deno`,
      source: { path: release.runtime },
      executable: true,
      extract: false,
      cache: true,
    });
    files.push({
      urlPath: `/a/${await fileDigest(release.executorBundle)}/MrRedisExecutor.js`,
      source: { path: release.executorBundle },
      executable: false,
      extract: false,
      cache: true,
    });
    const flags = ["--no-config", "--no-lock", ...RELEASE_PERMISSIONS.MrRedisExecutor];
    command = [
      `DENO_DIR="\${MESOS_SANDBOX:-$PWD}/.deno" DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1`,
      `exec ./deno run ${flags.map(shellQuote).join(" ")} ./MrRedisExecutor.js`,
    ].join(" ");
    description =
      `the executor bundle and Deno ${release.manifest.deno} of the release ${release.dir}`;
  } else {
    // The script itself is the command (run with `sh -c`): it only names
    // files of this host, so fetching it would add a download to every
    // executor start (the first create waits for it) and bring nothing.
    command = artifact.script;
    description = "the development launcher (deno run cmd/executor.ts; agents on this host only)";
  }
  const environment: Record<string, string> = {};
  let shipsRedisServer = false;
  if (redisServerPath !== "") {
    if (!isFile(redisServerPath)) {
      throw new ConfigError(
        `Field "RedisServerPath" names "${redisServerPath}", which is not a file`,
      );
    }
    files.push({
      urlPath: `/a/${await fileDigest(redisServerPath)}/redis-server`,
      source: { path: redisServerPath },
      executable: true,
      extract: false,
      cache: true,
    });
    environment.MRR_REDIS_SERVER = "./redis-server";
    shipsRedisServer = true;
    description += ` and redis-server ${redisServerPath}`;
  }
  return { files, command, environment, shipsRedisServer, description };
}

/** The `CommandInfo.uris` of a shipment served at `baseUrl`. */
export function shipmentUris(shipment: Shipment, baseUrl: string): CommandURI[] {
  const base = baseUrl.replace(/\/+$/, "");
  return shipment.files.map((file) => ({
    value: `${base}${file.urlPath}`,
    executable: file.executable,
    extract: file.extract,
    cache: file.cache,
  }));
}
