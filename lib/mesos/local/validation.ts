/**
 * The validation rules real Mesos applies to framework subscriptions,
 * tasks and executors (protocol reference §3, §4.9, §6 item 5 and 11). Pure
 * functions: each returns an error message or `undefined`.
 *
 * @module
 */

import {
  type ExecutorInfo,
  type FrameworkInfo,
  hasCapability,
  type Resource,
  type TaskInfo,
} from "./messages.ts";

/** Checks a Task/Executor/Framework id: non-empty, ≤ 255 bytes, not `.`/`..`, no control chars, `/` or `\`. */
export function validateId(kind: string, value: string): string | undefined {
  if (value.length === 0) return `${kind} must not be empty`;
  if (new TextEncoder().encode(value).length > 255) {
    return `${kind} "${value.slice(0, 40)}..." is longer than 255 bytes`;
  }
  if (value === "." || value === "..") return `${kind} "${value}" is not allowed`;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f/\\]/.test(value)) {
    return `${kind} "${value}" contains a control character, "/" or "\\"`;
  }
  return undefined;
}

/** Checks one role name (`*` or `/`-separated components). */
export function validateRole(role: string): string | undefined {
  if (role === "*") return undefined;
  if (role === "") return "Role must not be empty";
  if (role.startsWith("/") || role.endsWith("/") || role.includes("//")) {
    return `Role "${role}" must not start or end with "/" or contain "//"`;
  }
  // deno-lint-ignore no-control-regex
  if (/[\s\x00-\x1f\x7f]/.test(role)) {
    return `Role "${role}" contains whitespace or a control character`;
  }
  for (const part of role.split("/")) {
    if (part === "." || part === ".." || part === "*") {
      return `Role "${role}" has an invalid component "${part}"`;
    }
    if (part.startsWith("-")) return `Role "${role}" has a component starting with "-"`;
  }
  return undefined;
}

/** The roles a framework subscribes with (MULTI_ROLE `roles`, else `role` or `*`). */
export function frameworkRoles(info: FrameworkInfo): string[] {
  if (hasCapability(info, "MULTI_ROLE")) return [...(info.roles ?? [])];
  return [info.role ?? "*"];
}

/** Checks the roles of a SUBSCRIBE (MULTI_ROLE consistency, duplicates, names, suppressed ⊆ roles). */
export function validateSubscription(
  info: FrameworkInfo,
  suppressedRoles: string[],
): string | undefined {
  const multiRole = hasCapability(info, "MULTI_ROLE");
  if (multiRole && info.role !== undefined) {
    return "'FrameworkInfo.role' must not be set when the MULTI_ROLE capability is present";
  }
  if (!multiRole && info.roles !== undefined && info.roles.length > 0) {
    return "'FrameworkInfo.roles' must not be set without the MULTI_ROLE capability";
  }
  const roles = frameworkRoles(info);
  const seen = new Set<string>();
  for (const role of roles) {
    if (seen.has(role)) return `Role "${role}" appears more than once in 'FrameworkInfo.roles'`;
    seen.add(role);
    const error = validateRole(role);
    if (error) return error;
  }
  for (const role of suppressedRoles) {
    if (!seen.has(role)) {
      return `Suppressed role "${role}" is not one of the framework's roles`;
    }
  }
  if (info.id) return validateId("FrameworkID", info.id.value);
  return undefined;
}

function nonNegativeDuration(
  what: string,
  d: { nanoseconds: number } | undefined,
): string | undefined {
  if (d !== undefined && d.nanoseconds < 0) return `${what} must be non-negative`;
  return undefined;
}

function resourceQuantity(resources: Resource[], name: string): number {
  return resources.filter((r) => r.name === name && r.type === "SCALAR")
    .reduce((sum, r) => sum + (r.scalar?.value ?? 0), 0);
}

/** Facts the task validation needs from the master. */
export interface TaskContext {
  /** The framework's id. */
  frameworkId: string;
  /** The agent of the accepted offers. */
  agentId: string;
  /** True when the framework already tracks (or lost to an unreachable agent) this task id. */
  taskIdInUse(taskId: string): boolean;
  /** The ExecutorInfo running (or already launched) on the agent under this id, if any. */
  existingExecutor(executorId: string): ExecutorInfo | undefined;
}

/**
 * Validates one task of a LAUNCH (§6 item 11). Fills `executor.framework_id`
 * when absent. Returns the error message (the task gets TASK_ERROR) or
 * `undefined`.
 */
export function validateTask(task: TaskInfo, ctx: TaskContext): string | undefined {
  const idError = validateId("TaskID", task.task_id.value);
  if (idError) return idError;
  if (ctx.taskIdInUse(task.task_id.value)) {
    return `Task has duplicate ID "${task.task_id.value}"`;
  }
  if (task.agent_id.value !== ctx.agentId) {
    return `Task uses agent "${task.agent_id.value}", but the offer is from agent "${ctx.agentId}"`;
  }
  const hasExecutor = task.executor !== undefined;
  const hasCommand = task.command !== undefined;
  if (hasExecutor === hasCommand) {
    return "Task should have exactly one of 'executor' or 'command' set";
  }
  if (!task.resources || task.resources.length === 0) return "Task uses no resources";
  const killError =
    nonNegativeDuration("Task's 'kill_policy.grace_period'", task.kill_policy?.grace_period) ??
      nonNegativeDuration("Task's 'max_completion_time'", task.max_completion_time);
  if (killError) return killError;
  for (const [name, limit] of Object.entries(task.limits ?? {})) {
    if (name !== "cpus" && name !== "mem") {
      return `Task's 'limits' may only hold "cpus" and "mem", but holds "${name}"`;
    }
    if (limit.value < resourceQuantity(task.resources, name)) {
      return `Task's "${name}" limit ${limit.value} is smaller than its request`;
    }
  }
  if (task.executor) {
    const executor = task.executor;
    const eidError = validateId("ExecutorID", executor.executor_id.value);
    if (eidError) return eidError;
    if (executor.type !== undefined && executor.type !== "CUSTOM") {
      return `Executor of type "${executor.type}" cannot be used with LAUNCH (only CUSTOM)`;
    }
    if (!executor.command) return "Executor of type CUSTOM must have 'command' set";
    if (executor.framework_id === undefined) {
      executor.framework_id = { value: ctx.frameworkId };
    } else if (executor.framework_id.value !== ctx.frameworkId) {
      return `ExecutorInfo has framework ID "${executor.framework_id.value}", but the task's framework is "${ctx.frameworkId}"`;
    }
    const graceError = nonNegativeDuration(
      "Executor's 'shutdown_grace_period'",
      executor.shutdown_grace_period,
    );
    if (graceError) return graceError;
    const running = ctx.existingExecutor(executor.executor_id.value);
    if (running && !executorsEqual(running, executor)) {
      return `ExecutorInfo for executor "${executor.executor_id.value}" differs from the one already running on agent "${ctx.agentId}"`;
    }
  }
  return undefined;
}

function canonical(value: unknown): string {
  if (value instanceof Uint8Array) return `b:${Array.from(value).join(",")}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * Structural equality with the rules of {@linkcode canonical}: keys whose
 * value is `undefined` count as absent, arrays compare in order, bytes by
 * content. Walks both values once and stops at the first difference.
 */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) {
      return false;
    }
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    return canonical(a) === canonical(b);
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let count = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    count++;
    if (!sameValue(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) count--;
  return count === 0;
}

/**
 * ExecutorInfo equality as Mesos compares it on reuse: labels and
 * shutdown_grace_period are ignored; resources compare as a multiset;
 * `allocation_info` is ignored (the master injects it).
 */
export function executorsEqual(a: ExecutorInfo, b: ExecutorInfo): boolean {
  const { labels: _la, shutdown_grace_period: _ga, resources: ra, ...restA } = a;
  const { labels: _lb, shutdown_grace_period: _gb, resources: rb, ...restB } = b;
  if (!sameValue(restA, restB)) return false;
  const bag = (resources: ExecutorInfo["resources"]) =>
    (resources ?? []).map((r) => {
      const { allocation_info: _a, ...other } = r;
      return canonical(other);
    }).sort();
  return sameValue(bag(ra), bag(rb));
}
