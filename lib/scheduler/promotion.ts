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

/** Options of {@linkcode choosePromotion}. */
export interface PromotionOptions {
  /**
   * When no healthy slave has a known offset, take the healthy slave with the
   * smallest process id anyway (its data beats an empty new master). Default
   * false.
   */
  allowUnknownOffset?: boolean;
}

/**
 * Returns the process id of the healthy slave with the highest replication
 * offset; ties go to the smallest process id (compared numerically when both
 * end in digits, e.g. `p2` before `p10`). Returns `undefined` when no slave is
 * healthy with a known offset (unless `allowUnknownOffset`, see
 * {@linkcode PromotionOptions}).
 */
export function choosePromotion(
  slaves: readonly PromotionCandidate[],
  options: PromotionOptions = {},
): string | undefined {
  let best: PromotionCandidate | undefined;
  let fallback: PromotionCandidate | undefined;
  for (const s of slaves) {
    if (!s.healthy) continue;
    if (fallback === undefined || compareProcIds(s.procId, fallback.procId) < 0) fallback = s;
    if (s.replOffset === undefined || !Number.isFinite(s.replOffset)) continue;
    if (
      best === undefined || s.replOffset > best.replOffset! ||
      (s.replOffset === best.replOffset && compareProcIds(s.procId, best.procId) < 0)
    ) {
      best = s;
    }
  }
  return best?.procId ?? (options.allowUnknownOffset ? fallback?.procId : undefined);
}

/** Orders process ids `p1 < p2 < p10`; other ids by plain string order. */
export function compareProcIds(a: string, b: string): number {
  const na = procNumber(a);
  const nb = procNumber(b);
  if (na >= 0 && nb >= 0) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The number of a process id `p<digits>`, or -1 for any other id. Read by
 * hand, not with a regular expression: every planning pass and STATUS
 * sorts an instance's processes with it.
 */
function procNumber(id: string): number {
  if (id.length < 2 || id.charCodeAt(0) !== 112 /* p */) return -1;
  if (id.length > 16) return /^p\d+$/.test(id) ? Number(id.slice(1)) : -1;
  let n = 0;
  for (let i = 1; i < id.length; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}
