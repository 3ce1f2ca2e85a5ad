/**
 * Whether a CREATE could ever be satisfied by the agents registered now: a
 * pure check from the request, the agents' sizes and the task resources to
 * a refusal reason (or none). No I/O, no clock.
 *
 * Mesos tells a framework an agent's free resources (offers), not its total,
 * so the size of an agent is estimated from below: the most it was ever seen
 * to have, counting what it offered plus what this framework's own tasks (and
 * executor) held on it at that moment. With other frameworks on the same
 * agents the estimate can be short of the truth until they free resources;
 * on the local cluster it is exact.
 *
 * @module
 */
import type { TaskResources } from "./match.ts";

/** What is known of one agent's size: lower bounds of its total cpus and memory. */
export interface AgentSize {
  agentId: string;
  cpus: number;
  memMB: number;
}

/** Resources counted on one agent (offered, or held by this framework). */
export interface AgentResources {
  cpus: number;
  memMB: number;
}

/** What a CREATE asks for. */
export interface FeasibilityRequest {
  name: string;
  capacityMB: number;
  /** Processes in all: masters × (1 + slaves). */
  processes: number;
  /** Most processes of the instance on one agent. */
  distribution: number;
}

/** Rounds like Mesos does (3 decimals), so sums of cpus do not drift. */
function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * The size of an agent after seeing it offer `offered` while this framework
 * held `held` on it: the larger of the known size and `offered + held`, per
 * resource (a size never shrinks while the agent stays registered).
 */
export function observeAgent(
  known: AgentSize | undefined,
  agentId: string,
  offered: AgentResources,
  held: AgentResources,
): AgentSize {
  const cpus = round3(offered.cpus + held.cpus);
  const memMB = round3(offered.memMB + held.memMB);
  return {
    agentId,
    cpus: Math.max(known?.cpus ?? 0, cpus),
    memMB: Math.max(known?.memMB ?? 0, memMB),
  };
}

/** How many processes of `capacityMB` an empty agent of `size` could hold, Distribution aside. */
function processesOn(size: AgentSize, capacityMB: number, res: TaskResources): number {
  const mem = round3(size.memMB - res.executorMemMB);
  const cpus = round3(size.cpus - res.executorCpus);
  const perMem = capacityMB + res.memOverheadMB;
  // The small epsilon keeps an exact fit (0.1 / 0.1 computed as 0.9999...) a fit.
  const byMem = perMem > 0 ? Math.floor(mem / perMem + 1e-9) : Infinity;
  const byCpus = res.taskCpus > 0 ? Math.floor(cpus / res.taskCpus + 1e-9) : Infinity;
  return Math.max(0, Math.min(byMem, byCpus));
}

function agentsWord(n: number): string {
  return `${n} agent${n === 1 ? "" : "s"}`;
}

/**
 * Why `req` can never be placed on `agents` (every one of them empty and
 * free for it), or `undefined` when it could be — or when no agent is known,
 * since nothing can be said then. Two reasons: no agent is big enough for
 * one process (capacity + redis overhead + the executor's resources), or the
 * agents together cannot hold every process with at most `distribution` on
 * each.
 */
export function infeasibleReason(
  req: FeasibilityRequest,
  agents: readonly AgentSize[],
  res: TaskResources,
): string | undefined {
  if (agents.length === 0) return undefined;
  const fits = agents.map((a) => Math.min(req.distribution, processesOn(a, req.capacityMB, res)));
  const known = agentsWord(agents.length);
  if (fits.every((n) => n === 0)) {
    const mem = req.capacityMB + res.memOverheadMB + res.executorMemMB;
    const cpus = round3(res.taskCpus + res.executorCpus);
    const most = (pick: (a: AgentSize) => number) => Math.max(...agents.map(pick));
    return `Cannot create instance "${req.name}": one process needs an agent with ${mem} MB and ${cpus} cpus (${req.capacityMB} MB capacity + ${res.memOverheadMB} MB redis overhead + ${res.executorMemMB} MB for the executor), but of the ${known} registered the largest has ${
      most((a) => a.memMB)
    } MB and the most cpus are ${most((a) => a.cpus)}`;
  }
  const room = fits.reduce((sum, n) => sum + n, 0);
  if (room < req.processes) {
    const need = Math.ceil(req.processes / req.distribution);
    return `Cannot create instance "${req.name}": its ${req.processes} processes of ${req.capacityMB} MB need at least ${
      agentsWord(need)
    } at Distribution ${req.distribution} (at most ${req.distribution} per agent), but the ${known} registered can hold at most ${room} of them`;
  }
  return undefined;
}
