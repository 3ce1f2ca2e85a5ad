/**
 * The subset of Mesos v1 message shapes the local cluster reads and writes,
 * in the codec's in-memory form (snake_case keys, enum names as strings, ids
 * as `{value}`, bytes as `Uint8Array`). Deliberately loose: unknown fields
 * pass through untouched.
 *
 * @module
 */
import { TERMINAL_TASK_STATES } from "../types.ts";

/** A Mesos id wrapper (`FrameworkID`, `AgentID`, `TaskID`, ...). */
export interface Id {
  /** The id string. */
  value: string;
}

/** `mesos.v1.Value.Range` (inclusive both ends). */
export interface Range {
  /** First value. */
  begin: number;
  /** Last value. */
  end: number;
}

/** `mesos.v1.Resource` (fields the local cluster uses). */
export interface Resource {
  /** `cpus`, `mem`, `ports`, ... */
  name: string;
  /** `SCALAR`, `RANGES`, `SET` or `TEXT`. */
  type: string;
  /** Value of a scalar resource. */
  scalar?: { value: number };
  /** Value of a ranges resource. */
  ranges?: { range?: Range[] };
  /** Value of a set resource. */
  set?: { item?: string[] };
  /** Deprecated reservation role (`*` = unreserved). */
  role?: string;
  /** The role the resource is allocated to. */
  allocation_info?: { role?: string };
  /** Pre-refinement dynamic reservation. */
  reservation?: Record<string, unknown>;
  /** Refinement-format reservations (empty = unreserved). */
  reservations?: Record<string, unknown>[];
  /** Other fields pass through. */
  [key: string]: unknown;
}

/** `mesos.v1.CommandInfo.URI`. */
export interface CommandUri {
  /** Where to fetch from. */
  value: string;
  /** chmod +x after fetching. */
  executable?: boolean;
  /** Unpack archives (default true). */
  extract?: boolean;
  /** Use the fetcher cache (ignored here). */
  cache?: boolean;
  /** Name inside the sandbox. */
  output_file?: string;
}

/** `mesos.v1.CommandInfo`. */
export interface CommandInfo {
  /** Files fetched into the sandbox before the process starts. */
  uris?: CommandUri[];
  /** Extra environment variables. */
  environment?: { variables?: { name: string; type?: string; value?: string }[] };
  /** Run `value` via `/bin/sh -c` (default true). */
  shell?: boolean;
  /** The command (or the executable when `shell` is false). */
  value?: string;
  /** argv (argv[0] included) when `shell` is false. */
  arguments?: string[];
  /** Unix user (ignored by the local cluster). */
  user?: string;
}

/** `mesos.v1.ExecutorInfo`. */
export interface ExecutorInfo {
  /** `UNKNOWN`, `DEFAULT` or `CUSTOM`. */
  type?: string;
  /** The executor's id. */
  executor_id: Id;
  /** The owning framework (filled in by the master). */
  framework_id?: Id;
  /** How to start it. */
  command?: CommandInfo;
  /** Resources charged once per agent. */
  resources?: Resource[];
  /** Display name. */
  name?: string;
  /** Opaque data. */
  data?: Uint8Array;
  /** Time between SHUTDOWN and the forced kill. */
  shutdown_grace_period?: { nanoseconds: number };
  /** Other fields pass through. */
  [key: string]: unknown;
}

/** `mesos.v1.TaskInfo`. */
export interface TaskInfo {
  /** Display name. */
  name: string;
  /** The task's id. */
  task_id: Id;
  /** The agent it runs on. */
  agent_id: Id;
  /** What it uses. */
  resources?: Resource[];
  /** Its custom executor. */
  executor?: ExecutorInfo;
  /** Its command (built-in command executor). */
  command?: CommandInfo;
  /** Opaque data. */
  data?: Uint8Array;
  /** Kill policy. */
  kill_policy?: { grace_period?: { nanoseconds: number } };
  /** Deadline. */
  max_completion_time?: { nanoseconds: number };
  /** Resource limits. */
  limits?: Record<string, { value: number }>;
  /** Other fields pass through. */
  [key: string]: unknown;
}

/** `mesos.v1.TaskStatus`. */
export interface TaskStatus {
  /** The task. */
  task_id: Id;
  /** `TASK_RUNNING`, ... */
  state: string;
  /** Human-readable detail. */
  message?: string;
  /** `SOURCE_MASTER`, `SOURCE_AGENT` or `SOURCE_EXECUTOR`. */
  source?: string;
  /** `REASON_...`. */
  reason?: string;
  /** Opaque data. */
  data?: Uint8Array;
  /** The agent. */
  agent_id?: Id;
  /** The executor. */
  executor_id?: Id;
  /** Seconds since the epoch. */
  timestamp?: number;
  /** Present on reliable updates (16 bytes). */
  uuid?: Uint8Array;
  /** Health. */
  healthy?: boolean;
  /** When the agent became unreachable. */
  unreachable_time?: { nanoseconds: number };
  /** Other fields pass through. */
  [key: string]: unknown;
}

/** `mesos.v1.FrameworkInfo`. */
export interface FrameworkInfo {
  /** Unix user. */
  user: string;
  /** Display name. */
  name: string;
  /** Set on re-subscription. */
  id?: Id;
  /** Seconds the master waits for a re-subscription (default 0). */
  failover_timeout?: number;
  /** Agent checkpointing. */
  checkpoint?: boolean;
  /** Role without MULTI_ROLE (default `*`). */
  role?: string;
  /** Roles with MULTI_ROLE. */
  roles?: string[];
  /** Principal. */
  principal?: string;
  /** Capabilities, `{type}`. */
  capabilities?: { type?: string }[];
  /** Other fields pass through. */
  [key: string]: unknown;
}

/** Terminal task states (TASK_UNREACHABLE and TASK_UNKNOWN are not). */
export const TERMINAL_STATES: ReadonlySet<string> = TERMINAL_TASK_STATES;

/** True for a terminal task state. */
export function isTerminal(state: string): boolean {
  return TERMINAL_STATES.has(state);
}

/** True when the framework declares `capability` (e.g. `"PARTITION_AWARE"`). */
export function hasCapability(info: FrameworkInfo, capability: string): boolean {
  return (info.capabilities ?? []).some((c) => c.type === capability);
}

/** 16 random bytes in RFC 4122 version 4 layout. */
export function newUuidBytes(): Uint8Array {
  const hex = crypto.randomUUID().replaceAll("-", "");
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** Lowercase hex of `bytes` (map keys for uuids). */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_BYTES[bytes[i]!];
  return out;
}

/** Seconds since the epoch, as TaskStatus.timestamp wants it. */
export function nowSeconds(): number {
  return Date.now() / 1000;
}
