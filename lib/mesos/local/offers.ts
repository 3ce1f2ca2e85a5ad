/**
 * Offer bookkeeping of the local master: single-use offer ids, the pooled
 * resources of an ACCEPT, decline filters per framework, agent and role, and
 * the allocation rule (who gets an agent's free resources next).
 *
 * @module
 */

import { containsPool, type Pool, scalarTotal } from "./resources.ts";

/** One outstanding offer. */
export interface OfferRecord {
  /** OfferID. */
  id: string;
  /** Framework it was made to. */
  frameworkId: string;
  /** Agent whose resources it holds. */
  agentId: string;
  /** Role it is allocated to. */
  role: string;
  /** The resources. */
  pool: Pool;
}

/** Longest decline filter Mesos honours (365 days). */
export const MAX_REFUSE_SECONDS = 31_536_000;

/**
 * The refusal time of a `Filters` message: absent or negative → the
 * default, capped at 365 days.
 */
export function refuseSeconds(
  filters: { refuse_seconds?: number } | undefined,
  defaultSeconds: number,
): number {
  const value = filters?.refuse_seconds;
  if (value === undefined || !Number.isFinite(value) || value < 0) return defaultSeconds;
  return Math.min(value, MAX_REFUSE_SECONDS);
}

/**
 * True when an agent's free resources are worth offering (Mesos: 0.01 cpus
 * or 32 MB, reserved and unreserved together).
 */
export function allocatable(pool: Pool): boolean {
  return scalarTotal(pool, "cpus") >= 0.01 || scalarTotal(pool, "mem") >= 32;
}

interface Filter {
  pool: Pool;
  expiresAt: number;
}

/** Decline filters of one framework, keyed by agent and role. */
export class OfferFilters {
  #filters = new Map<string, Filter>();

  /** Refuses `pool` on the agent for `seconds` (0 adds nothing). */
  add(agentId: string, role: string, pool: Pool, seconds: number, now = Date.now()): void {
    if (seconds <= 0) return;
    this.#filters.set(`${agentId}\u0000${role}`, { pool, expiresAt: now + seconds * 1000 });
  }

  /** True while a filter blocks offering `available` (a subset of what was refused). */
  blocks(agentId: string, role: string, available: Pool, now = Date.now()): boolean {
    const k = `${agentId}\u0000${role}`;
    const filter = this.#filters.get(k);
    if (!filter) return false;
    if (filter.expiresAt <= now) {
      this.#filters.delete(k);
      return false;
    }
    return containsPool(filter.pool, available);
  }

  /** Clears the filters of the given roles (all when `roles` is undefined). */
  clear(roles?: Iterable<string>): void {
    if (roles === undefined) {
      this.#filters.clear();
      return;
    }
    const set = new Set(roles);
    for (const k of [...this.#filters.keys()]) {
      if (set.has(k.slice(k.indexOf("\u0000") + 1))) this.#filters.delete(k);
    }
  }
}

/**
 * Checks the offer ids of an ACCEPT or DECLINE (§6 item 9). Returns the
 * valid offers or the reason the whole call is invalid.
 */
export function checkOfferIds(
  ids: string[],
  frameworkId: string,
  lookup: (id: string) => OfferRecord | undefined,
): { offers: OfferRecord[] } | { error: string } {
  if (ids.length === 0) return { error: "No offers specified" };
  const seen = new Set<string>();
  const offers: OfferRecord[] = [];
  for (const id of ids) {
    if (seen.has(id)) return { error: `Offer "${id}" appears more than once` };
    seen.add(id);
    const offer = lookup(id);
    if (!offer) return { error: `Offer "${id}" is no longer valid` };
    if (offer.frameworkId !== frameworkId) {
      return { error: `Offer "${id}" belongs to another framework` };
    }
    const first = offers[0];
    if (first && first.agentId !== offer.agentId) {
      return { error: `Offers "${first.id}" and "${id}" are from different agents` };
    }
    if (first && first.role !== offer.role) {
      return { error: `Offers "${first.id}" and "${id}" are allocated to different roles` };
    }
    offers.push(offer);
  }
  return { offers };
}
