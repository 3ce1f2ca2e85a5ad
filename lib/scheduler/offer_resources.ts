/**
 * Carving the resources of placed tasks out of the offer's own entries, so a
 * task uses resources reserved for the framework's role as Mesos offered
 * them (same `role`, `reservation(s)` and `allocation_info`), not plain
 * unreserved amounts the agent may not have.
 *
 * {@linkcode match} decides where tasks go by totals (what is reserved for
 * our role and what is unreserved are both ours to use); this step then
 * takes each task's cpus and mem from the offer's entries — reserved ones
 * first, so unreserved resources stay free for others — and each port from
 * the entry whose range holds it. The executor, when it is launched with the
 * tasks, takes unreserved entries first instead: its `ExecutorInfo` must stay
 * the same for as long as it runs on the agent, and an unreserved one is the
 * one a restarted scheduler builds again without remembering anything.
 *
 * No I/O, no clock.
 *
 * @module
 */
import type { Offer, Resource } from "../mesos/types.ts";

/** What one task (or the executor) takes from the offer. */
export interface ResourceRequest {
  cpus: number;
  memMB: number;
  /** Ports, each from the offer's `ports` ranges. */
  ports: readonly number[];
}

/** The carved resources of one offer's launch. */
export interface CarvedResources {
  /** Per task, in the order asked. */
  tasks: Resource[][];
  /** The executor's, when it was asked for. */
  executor?: Resource[];
}

interface Piece {
  /** The offer's entry without its value. */
  template: Resource;
  left: number;
  reserved: boolean;
}

/** Rounds like Mesos does (3 decimals), so repeated subtraction does not drift. */
function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** Whether an offered resource is reserved (for our role: Mesos offers us no other reservation). */
export function isReserved(r: Resource): boolean {
  return (r.role !== undefined && r.role !== "*") || (r.reservations?.length ?? 0) > 0 ||
    r.reservation !== undefined;
}

function template(r: Resource): Resource {
  const { scalar: _s, ranges: _r, set: _set, ...rest } = r;
  return structuredClone(rest);
}

/** Whether the offer carries any resource reserved for the framework's role. */
export function offerHasReservations(offer: Offer): boolean {
  return (offer.resources ?? []).some((r) => !r.revocable && isReserved(r));
}

/**
 * Takes every request out of `offer`'s entries: the tasks reserved-first, the
 * executor (when asked) unreserved-first. Throws a `RangeError` naming the
 * resource when the offer cannot hold them all (the caller placed them by
 * totals, so this means the offer and the placement disagree).
 */
export function carveResources(
  offer: Offer,
  tasks: readonly ResourceRequest[],
  executor?: { cpus: number; memMB: number },
): CarvedResources {
  const pieces = (name: string): Piece[] =>
    (offer.resources ?? [])
      .filter((r) => r.name === name && r.type === "SCALAR" && r.scalar && !r.revocable)
      .map((r) => ({ template: template(r), left: r.scalar!.value, reserved: isReserved(r) }));
  const cpus = pieces("cpus");
  const mem = pieces("mem");
  const portEntries = (offer.resources ?? []).filter((r) =>
    r.name === "ports" && r.type === "RANGES" && !r.revocable
  );
  const usedPorts = new Set<number>();

  const take = (from: Piece[], amount: number, what: string, reservedFirst: boolean) => {
    const order = [...from].sort((
      a,
      b,
    ) => (a.reserved === b.reserved ? 0 : a.reserved === reservedFirst ? -1 : 1));
    const out: Resource[] = [];
    let need = round3(amount);
    for (const p of order) {
      if (need <= 0) break;
      const n = round3(Math.min(p.left, need));
      if (n <= 0) continue;
      p.left = round3(p.left - n);
      need = round3(need - n);
      out.push({ ...structuredClone(p.template), scalar: { value: n } });
    }
    if (need > 0) {
      throw new RangeError(
        `Offer ${offer.id.value} lacks ${need} ${what} for the placed tasks`,
      );
    }
    return out;
  };
  const port = (p: number): Resource => {
    const entry = portEntries.find((r) =>
      (r.ranges?.range ?? []).some((range) => range.begin <= p && p <= range.end)
    );
    if (!entry || usedPorts.has(p)) {
      throw new RangeError(`Offer ${offer.id.value} does not hold port ${p} for the placed tasks`);
    }
    usedPorts.add(p);
    return { ...template(entry), ranges: { range: [{ begin: p, end: p }] } };
  };

  const carved: CarvedResources = { tasks: [] };
  // The executor first, so its unreserved share is not taken by tasks that
  // could have used reserved resources.
  if (executor) {
    carved.executor = [
      ...take(cpus, executor.cpus, "cpus", false),
      ...take(mem, executor.memMB, "mem", false),
    ];
  }
  for (const t of tasks) {
    carved.tasks.push([
      ...take(cpus, t.cpus, "cpus", true),
      ...take(mem, t.memMB, "mem", true),
      ...t.ports.map(port),
    ]);
  }
  return carved;
}
