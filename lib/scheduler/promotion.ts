/**
 * Choosing the slave to promote when a master is lost. Pure.
 *
 * @module
 */

/** A slave as seen for promotion. */
export interface PromotionCandidate {
  /** Process id, e.g. `p2`. */
  procId: string;
  /** Whether the slave's task is up (RUNNING) right now. */
  healthy: boolean;
  /** Last replication offset reported; `undefined` when none was reported yet. */
  replOffset?: number;
}

/**
 * Returns the process id of the healthy slave with the highest replication
 * offset; ties go to the smallest process id (compared numerically when both
 * end in digits, e.g. `p2` before `p10`). Returns `undefined` when no slave is
 * healthy with a known offset.
 */
export function choosePromotion(slaves: readonly PromotionCandidate[]): string | undefined {
  let best: PromotionCandidate | undefined;
  for (const s of slaves) {
    if (!s.healthy || s.replOffset === undefined || !Number.isFinite(s.replOffset)) continue;
    if (
      best === undefined || s.replOffset > best.replOffset! ||
      (s.replOffset === best.replOffset && compareProcIds(s.procId, best.procId) < 0)
    ) {
      best = s;
    }
  }
  return best?.procId;
}

/** Orders process ids `p1 < p2 < p10`; other ids by plain string order. */
export function compareProcIds(a: string, b: string): number {
  const na = /^p(\d+)$/.exec(a);
  const nb = /^p(\d+)$/.exec(b);
  if (na && nb) return Number(na[1]) - Number(nb[1]);
  return a < b ? -1 : a > b ? 1 : 0;
}
