/**
 * Spreading over the agents the scheduler knows, not only the offers at
 * hand: what each agent's last offer had left (its room) and when it came,
 * so that {@linkcode match} can leave work to an agent that runs fewer tasks
 * and will offer again soon. Pure: no I/O, no clock (the time is passed in).
 *
 * Why: offers come back one agent at a time (a launch's leftovers return
 * before the other agents' offers do), so a burst of CREATEs placed on the
 * offers at hand alone piles up on whichever agent offered first.
 *
 * @module
 */
import type { Offer, Resource } from "../mesos/types.ts";
import type { Launch, TaskResources } from "./match.ts";

/** What an agent could still take, from its last offer less what that round placed on it. */
export interface AgentRoom {
  agentId: string;
  cpus: number;
  mem: number;
  /** Ports left. */
  ports: number;
  /** Our executor runs there (or was launched there): no executor resources to add. */
  executorRunning: boolean;
}

/** An agent's room and when its offer came (ms, the scheduler's clock). */
export interface SeenAgent extends AgentRoom {
  seenAt: number;
}

/**
 * How long an agent counts as one that will offer again soon after its last
 * offer (ms). Offers come back within about a second (Mesos's allocation
 * interval, the short decline filter below), so this bounds how long work
 * waits for a less loaded agent that has stopped offering.
 */
export const SPREAD_WAIT_MS = 3_000;

/**
 * Decline filter (seconds) for offers left unused while work waits for a
 * less loaded agent: they come back quickly in case that agent does not.
 */
export const SPREAD_REFUSE_SECONDS = 1;

/** Rounds like Mesos does (3 decimals), so repeated subtraction does not drift. */
function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function scalar(resources: readonly Resource[] | undefined, name: string): number {
  let sum = 0;
  for (const r of resources ?? []) {
    if (r.name === name && r.type === "SCALAR" && r.scalar) sum += r.scalar.value;
  }
  return sum;
}

function portCount(resources: readonly Resource[] | undefined): number {
  let n = 0;
  for (const r of resources ?? []) {
    if (r.name !== "ports" || r.type !== "RANGES") continue;
    for (const range of r.ranges?.range ?? []) n += Math.max(0, range.end - range.begin + 1);
  }
  return n;
}

/**
 * The known agents after an offer round at `now`: each agent that offered
 * (its offers summed) with what the round's `launches` left of them. Agents
 * that did not offer keep their last entry. Pure: returns a new map.
 */
export function noteOfferRound(
  seen: ReadonlyMap<string, SeenAgent>,
  offers: readonly Offer[],
  launches: readonly Launch[],
  resources: TaskResources,
  executorId: string,
  now: number,
): Map<string, SeenAgent> {
  const next = new Map(seen);
  const fresh = new Map<string, SeenAgent>();
  for (const o of offers) {
    const id = o.agent_id.value;
    const a = fresh.get(id) ??
      { agentId: id, cpus: 0, mem: 0, ports: 0, executorRunning: false, seenAt: now };
    a.cpus = round3(a.cpus + scalar(o.resources, "cpus"));
    a.mem = round3(a.mem + scalar(o.resources, "mem"));
    a.ports += portCount(o.resources);
    a.executorRunning ||= (o.executor_ids ?? []).some((e) => e.value === executorId);
    fresh.set(id, a);
  }
  for (const l of launches) {
    const a = fresh.get(l.agentId);
    if (!a) continue;
    for (const t of l.tasks) {
      a.cpus = round3(a.cpus - t.cpus);
      a.mem = round3(a.mem - t.memMB);
      a.ports -= t.busPort !== undefined ? 2 : 1;
    }
    if (l.withExecutor) {
      a.cpus = round3(a.cpus - resources.executorCpus);
      a.mem = round3(a.mem - resources.executorMemMB);
      a.executorRunning = true;
    }
  }
  for (const [id, a] of fresh) next.set(id, a);
  return next;
}

/**
 * The agents that may take work an offer at hand leaves to them: known
 * ones (`registered`: still part of the cluster) with no offer at hand
 * whose last offer came within `waitMs` of `now`. Pure.
 */
export function spreadPeers(
  seen: ReadonlyMap<string, SeenAgent>,
  offers: readonly Offer[],
  registered: ReadonlySet<string>,
  now: number,
  waitMs: number = SPREAD_WAIT_MS,
): AgentRoom[] {
  const atHand = new Set(offers.map((o) => o.agent_id.value));
  const peers: AgentRoom[] = [];
  for (const [id, a] of seen) {
    if (atHand.has(id) || !registered.has(id) || now - a.seenAt > waitMs) continue;
    const { seenAt: _, ...room } = a;
    peers.push(room);
  }
  return peers;
}
