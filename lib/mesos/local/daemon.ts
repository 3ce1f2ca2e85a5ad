/**
 * The local cluster as a process of its own that outlives the programs using
 * it, the way Mesos agents outlive a framework's scheduler. A running cluster
 * is found through a state file in its work dir (`cluster.json`: pid, process
 * start time, master URL, agents); {@link ensureLocalCluster} reuses the one
 * there when it is alive and still that process, or starts one detached (its
 * own session, output appended to `mesos-local.log` in the work dir) and
 * waits until it serves. {@link stopLocalCluster} asks it to stop (SIGTERM:
 * executors are shut down gracefully, so redis-servers flush their data) and
 * waits until it is gone. The agents' ids and ports ranges are kept in
 * `agents.json`, so a cluster started again in the same dir has the same
 * agents. Linux only (liveness is read from `/proc`).
 *
 * @module
 */

import { isAbsolute, join, resolve } from "node:path";
import type { Credential } from "./auth.ts";

/** Name of the state file a running cluster keeps in its work dir. */
export const STATE_FILE = "cluster.json";
/** Name of the file with the agents' identities, kept across runs. */
export const AGENTS_FILE = "agents.json";
/** Name of the log file of a detached cluster in its work dir. */
export const LOG_FILE = "mesos-local.log";
/** Name of the credentials file (mode 0600) given to a detached cluster that authenticates. */
export const CREDENTIALS_FILE = "credentials.json";

/** One agent's identity, kept across runs of the cluster. */
export interface AgentIdentity {
  /** The AgentID. */
  id: string;
  /** Its `ports` range. */
  ports: { begin: number; end: number };
}

/** What a running cluster writes in `cluster.json`. */
export interface ClusterState {
  /** Pid of the cluster process. */
  pid: number;
  /** Start time of that process (field 22 of `/proc/<pid>/stat`), against pid reuse. */
  startTime: string;
  /** The master URL. */
  url: string;
  /** The master id. */
  masterId: string;
  /** The agents, in order. */
  agents: AgentIdentity[];
  /** When it started (ISO). */
  startedAt: string;
  /** The subnet of a multi-host cluster (agents are hosts of their own); absent otherwise. */
  network?: string;
  /** Static reservations per agent (`mesos_local --reserved`); absent: none. */
  reserved?: string[];
}

/**
 * `/proc/<pid>/stat` of another process. Deno lets only `--allow-all` read
 * it directly; with explicit permissions (a release's launchers) it is read
 * through `cat` (`--allow-run`).
 */
function readStat(pid: number): string {
  const path = `/proc/${pid}/stat`;
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable)) throw error;
    const out = new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
      .outputSync();
    if (!out.success) throw new Deno.errors.NotFound(path);
    return new TextDecoder().decode(out.stdout);
  }
}

/** The start time of a live process (`/proc/<pid>/stat` field 22), or `undefined`. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readStat(pid);
    // Fields after the command name (which may hold spaces and parentheses).
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // a zombie is gone
    return fields[19];
  } catch {
    return undefined;
  }
}

/** Reads and checks `cluster.json`; `undefined` when missing or unreadable. */
export async function readClusterState(workDir: string): Promise<ClusterState | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(workDir, STATE_FILE));
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as ClusterState;
    if (
      !Number.isInteger(s.pid) || typeof s.startTime !== "string" || typeof s.url !== "string" ||
      !Array.isArray(s.agents)
    ) {
      return undefined;
    }
    return s;
  } catch {
    return undefined;
  }
}

/** Writes `cluster.json` for this process (atomically: a temp file renamed). */
export async function writeClusterState(
  workDir: string,
  state: Omit<ClusterState, "pid" | "startTime" | "startedAt">,
): Promise<ClusterState> {
  const full: ClusterState = {
    pid: Deno.pid,
    startTime: processStartTime(Deno.pid) ?? "",
    startedAt: new Date().toISOString(),
    ...state,
  };
  const tmp = join(workDir, `${STATE_FILE}.${Deno.pid}.tmp`);
  await Deno.writeTextFile(tmp, JSON.stringify(full, null, 2) + "\n");
  await Deno.rename(tmp, join(workDir, STATE_FILE));
  return full;
}

/** Removes `cluster.json` when it is this process's. */
export async function removeClusterState(workDir: string): Promise<void> {
  const s = await readClusterState(workDir);
  if (s?.pid === Deno.pid) await Deno.remove(join(workDir, STATE_FILE)).catch(() => {});
}

/** True while the process of `state` runs (same pid and start time). */
export function isProcessAlive(state: Pick<ClusterState, "pid" | "startTime">): boolean {
  const now = processStartTime(state.pid);
  return now !== undefined && now === state.startTime;
}

async function answers(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * The cluster running in `workDir`: its state when the process that wrote
 * `cluster.json` still runs and its master answers; `undefined` otherwise.
 */
export async function findLocalCluster(workDir: string): Promise<ClusterState | undefined> {
  const state = await readClusterState(workDir);
  if (!state || !isProcessAlive(state)) return undefined;
  // The process is the one that wrote the file: it holds the port until it exits.
  for (let i = 0; i < 3; i++) {
    if (await answers(state.url)) return state;
    if (!isProcessAlive(state)) return undefined;
  }
  return undefined;
}

/** Reads the agents' identities kept in `agents.json` (empty when none). */
export async function readAgentIdentities(workDir: string): Promise<AgentIdentity[]> {
  try {
    const list = JSON.parse(await Deno.readTextFile(join(workDir, AGENTS_FILE)));
    if (!Array.isArray(list)) return [];
    return list.filter((a) =>
      typeof a?.id === "string" && Number.isInteger(a?.ports?.begin) &&
      Number.isInteger(a?.ports?.end)
    );
  } catch {
    return [];
  }
}

/** Keeps the agents' identities in `agents.json`. */
export async function writeAgentIdentities(
  workDir: string,
  agents: AgentIdentity[],
): Promise<void> {
  const tmp = join(workDir, `${AGENTS_FILE}.${Deno.pid}.tmp`);
  await Deno.writeTextFile(tmp, JSON.stringify(agents, null, 2) + "\n");
  await Deno.rename(tmp, join(workDir, AGENTS_FILE));
}

/** The settings a detached cluster is started with (and a running one must have). */
export interface LocalClusterSpec {
  /** Work dir (sandboxes, state file, log). */
  workDir: string;
  /** Number of agents. */
  agents: number;
  /** First port of agent 0's range. */
  portsBase: number;
  /** Size of each agent's range. */
  portsPerAgent: number;
  /** How long sandboxes of ended executors are kept, in seconds (the cluster's default when absent). */
  gcDelaySeconds?: number;
  /**
   * Framework credentials the cluster authenticates with (a started cluster
   * gets them in `credentials.json`, mode 0600; a running one keeps its own).
   */
  credentials?: Credential[];
  /** Run each agent as a host of its own on this IPv4 /24 (`mesos_local --network`). */
  network?: string;
  /** Static reservations per agent (`""`: none), given as `mesos_local --reserved I=...`. */
  reserved?: readonly string[];
}

/** The running cluster does not have the settings asked for. */
export class LocalClusterMismatchError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "LocalClusterMismatchError";
  }
}

/** How to run the local cluster program with some flags (see {@link ensureLocalCluster}). */
export type ClusterCommand = (flags: string[]) => { command: string; args: string[] };

/** Options of {@link ensureLocalCluster}. */
export interface EnsureOptions extends LocalClusterSpec {
  /** Builds the command line that runs the cluster with the given `mesos_local` flags. */
  command: ClusterCommand;
  /** How long to wait for a started cluster to serve (default 60 s). */
  timeoutMs?: number;
  /** Stops the wait (the started cluster keeps starting, on its own). */
  signal?: AbortSignal;
  /** Log sink. */
  log?: (line: string) => void;
}

/** The flags of `mesos_local` for `spec`. */
export function clusterFlags(spec: LocalClusterSpec): string[] {
  return [
    "--work-dir",
    absolute(spec.workDir),
    "--agents",
    String(spec.agents),
    "--port",
    "0",
    "--ports-base",
    String(spec.portsBase),
    "--ports-per-agent",
    String(spec.portsPerAgent),
    ...(spec.gcDelaySeconds !== undefined ? ["--gc-delay", `${spec.gcDelaySeconds}secs`] : []),
    ...(spec.credentials?.length
      ? ["--credentials", join(absolute(spec.workDir), CREDENTIALS_FILE)]
      : []),
    ...(spec.network !== undefined ? ["--network", spec.network] : []),
    ...(spec.reserved ?? []).flatMap((text, i) => text ? ["--reserved", `${i}=${text}`] : []),
  ];
}

/** Reservations per agent as one comparable string ("" entries for none). */
function reservedKey(reserved: readonly string[] | undefined, agents: number): string {
  return JSON.stringify(
    Array.from({ length: agents }, (_, i) => (reserved ?? [])[i]?.trim() ?? ""),
  );
}

function absolute(path: string): string {
  return isAbsolute(path) ? path : resolve(Deno.cwd(), path);
}

function checkSpec(state: ClusterState, spec: LocalClusterSpec): void {
  if ((state.network ?? "") !== (spec.network ?? "")) {
    const show = (n: string | undefined) => n ? `agents as hosts on ${n}` : "agents on this host";
    throw new LocalClusterMismatchError(
      `The local cluster running in "${spec.workDir}" (pid ${state.pid}) has ${
        show(state.network)
      }, but ${
        show(spec.network)
      } are asked for; stop it first (sched --stop-local, or mesos_local stop --work-dir ${spec.workDir})`,
    );
  }
  const wantReserved = reservedKey(spec.reserved, spec.agents);
  const haveReserved = reservedKey(state.reserved, state.agents.length);
  if (wantReserved !== haveReserved) {
    throw new LocalClusterMismatchError(
      `The local cluster running in "${spec.workDir}" (pid ${state.pid}) has the reserved resources ${haveReserved}, but ${wantReserved} are asked for; stop it first (sched --stop-local, or mesos_local stop --work-dir ${spec.workDir})`,
    );
  }
  const want = Array.from({ length: spec.agents }, (_, i) => {
    const begin = spec.portsBase + i * spec.portsPerAgent;
    return `${begin}-${begin + spec.portsPerAgent - 1}`;
  }).join(",");
  const have = state.agents.map((a) => `${a.ports.begin}-${a.ports.end}`).join(",");
  if (want !== have) {
    throw new LocalClusterMismatchError(
      `The local cluster running in "${spec.workDir}" (pid ${state.pid}) has ${state.agents.length} agent(s) with ports ${
        have || "none"
      }, but ${spec.agents} agent(s) with ports ${want} are asked for; stop it first (sched --stop-local, or mesos_local stop --work-dir ${spec.workDir})`,
    );
  }
}

let setsidPath: string | null | undefined;
function findSetsid(): string | null {
  if (setsidPath !== undefined) return setsidPath;
  setsidPath = null;
  for (const p of ["/usr/bin/setsid", "/bin/setsid"]) {
    try {
      if (Deno.statSync(p).isFile) return setsidPath = p;
    } catch {
      // not there
    }
  }
  return setsidPath;
}

/**
 * The local cluster for `options.workDir`: the running one when there is
 * one (it must have the agents asked for, else {@link LocalClusterMismatchError}),
 * otherwise a new one started detached with `options.command`, once it
 * serves. `started` tells which.
 */
export async function ensureLocalCluster(
  options: EnsureOptions,
): Promise<{ state: ClusterState; started: boolean }> {
  const log = options.log ?? (() => {});
  const workDir = absolute(options.workDir);
  await Deno.mkdir(workDir, { recursive: true });
  const running = await findLocalCluster(workDir);
  if (running) {
    checkSpec(running, options);
    return { state: running, started: false };
  }
  const stale = await readClusterState(workDir);
  if (stale) {
    log(`Removing the state file of a local cluster that is gone (pid ${stale.pid})`);
    await Deno.remove(join(workDir, STATE_FILE)).catch(() => {});
  }
  const logPath = join(workDir, LOG_FILE);
  const credentialsPath = join(workDir, CREDENTIALS_FILE);
  await Deno.remove(credentialsPath).catch(() => {});
  if (options.credentials?.length) {
    await Deno.writeTextFile(
      credentialsPath,
      JSON.stringify({ credentials: options.credentials }) + "\n",
      { mode: 0o600, createNew: true },
    );
  }
  const { command, args } = options.command(clusterFlags({ ...options, workDir }));
  // A session of its own: neither a Ctrl-C in the terminal nor the end of
  // this process reaches it. Output goes to the log file.
  const redirect = 'log="$1"; shift; exec >>"$log" 2>&1 </dev/null; exec "$@"';
  const setsid = findSetsid();
  if (!setsid) log("setsid not found: the local cluster shares this process group");
  const child = new Deno.Command(setsid ?? "/bin/sh", {
    args: [...(setsid ? ["/bin/sh"] : []), "-c", redirect, "sh", logPath, command, ...args],
    // Like a daemon: it holds no directory of the caller (its paths are absolute).
    cwd: "/",
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  child.unref();
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const state = await findLocalCluster(workDir);
    if (state) {
      log(`The local Mesos cluster runs as pid ${state.pid} (log ${logPath})`);
      checkSpec(state, options);
      return { state, started: true };
    }
    if (options.signal?.aborted) {
      throw new Error(`Stopped while waiting for the local Mesos cluster in "${workDir}" to start`);
    }
    if (exited || Date.now() > deadline) {
      let tail = "";
      try {
        tail = (await Deno.readTextFile(logPath)).trim().split("\n").slice(-5).join(" | ");
      } catch {
        // no log
      }
      if (!exited) {
        try {
          Deno.kill(child.pid, "SIGTERM");
        } catch {
          // gone
        }
      }
      throw new Error(
        `The local Mesos cluster in "${workDir}" ${
          exited ? `exited with code ${exited.code}` : "did not start in time"
        }${tail ? `: ${tail}` : ""} (log ${logPath})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Stops the cluster running in `workDir` (SIGTERM, then waits at most
 * `timeoutMs`, default 120 s, for it to be gone); `false` when none ran.
 * Throws when it did not stop in time.
 */
export async function stopLocalCluster(
  workDir: string,
  options: { timeoutMs?: number } = {},
): Promise<{ stopped: boolean; pid?: number }> {
  const state = await readClusterState(workDir);
  if (!state || !isProcessAlive(state)) {
    if (state) await Deno.remove(join(workDir, STATE_FILE)).catch(() => {});
    return { stopped: false };
  }
  try {
    Deno.kill(state.pid, "SIGTERM");
  } catch {
    return { stopped: false };
  }
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  while (isProcessAlive(state)) {
    if (Date.now() > deadline) {
      throw new Error(
        `The local Mesos cluster in "${workDir}" (pid ${state.pid}) did not stop within ${
          Math.round((options.timeoutMs ?? 120_000) / 1000)
        } s`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { stopped: true, pid: state.pid };
}
