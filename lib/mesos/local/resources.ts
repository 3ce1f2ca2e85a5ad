/**
 * Resource arithmetic for the local cluster: a pool of unreserved scalars
 * (`cpus`, `mem`, ...) and ranges (`ports`) with add, subtract and contains,
 * and conversion to and from `mesos.v1.Resource` lists.
 *
 * @module
 */

import type { Range, Resource } from "./messages.ts";

/** A bag of unreserved resources. Scalars are kept to 3 decimal places like Mesos. */
export interface Pool {
  /** Scalar resources by name. */
  scalars: Record<string, number>;
  /** Range resources by name; each list sorted and merged. */
  ranges: Record<string, Range[]>;
}

/** An empty pool. */
export function emptyPool(): Pool {
  return { scalars: {}, ranges: {} };
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** Sorts and merges overlapping or adjacent ranges. */
export function normalizeRanges(ranges: Range[]): Range[] {
  const sorted = ranges.filter((r) => r.end >= r.begin).map((r) => ({ ...r }))
    .sort((a, b) => a.begin - b.begin);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.begin <= last.end + 1) last.end = Math.max(last.end, r.end);
    else out.push(r);
  }
  return out;
}

function subtractRanges(a: Range[], b: Range[]): Range[] {
  let out = normalizeRanges(a);
  for (const cut of b) {
    const next: Range[] = [];
    for (const r of out) {
      if (cut.end < r.begin || cut.begin > r.end) {
        next.push(r);
        continue;
      }
      if (cut.begin > r.begin) next.push({ begin: r.begin, end: cut.begin - 1 });
      if (cut.end < r.end) next.push({ begin: cut.end + 1, end: r.end });
    }
    out = next;
  }
  return out;
}

function rangesContain(outer: Range[], inner: Range[]): boolean {
  return inner.every((r) => outer.some((o) => o.begin <= r.begin && r.end <= o.end));
}

/** A copy of `pool`. */
export function clonePool(pool: Pool): Pool {
  const ranges: Record<string, Range[]> = {};
  for (const [k, v] of Object.entries(pool.ranges)) ranges[k] = v.map((r) => ({ ...r }));
  return { scalars: { ...pool.scalars }, ranges };
}

/** `a + b` as a new pool. */
export function addPools(a: Pool, b: Pool): Pool {
  const out = clonePool(a);
  for (const [k, v] of Object.entries(b.scalars)) out.scalars[k] = round((out.scalars[k] ?? 0) + v);
  for (const [k, v] of Object.entries(b.ranges)) {
    out.ranges[k] = normalizeRanges([...(out.ranges[k] ?? []), ...v]);
  }
  return out;
}

/** `a - b` as a new pool (never below zero; missing names stay missing). */
export function subtractPools(a: Pool, b: Pool): Pool {
  const out = clonePool(a);
  for (const [k, v] of Object.entries(b.scalars)) {
    if (k in out.scalars) out.scalars[k] = Math.max(0, round((out.scalars[k] ?? 0) - v));
  }
  for (const [k, v] of Object.entries(b.ranges)) {
    if (k in out.ranges) out.ranges[k] = subtractRanges(out.ranges[k] ?? [], v);
  }
  return out;
}

/** True when every resource of `inner` is within `outer`. */
export function containsPool(outer: Pool, inner: Pool): boolean {
  for (const [k, v] of Object.entries(inner.scalars)) {
    if (v > 0 && round(outer.scalars[k] ?? 0) < round(v)) return false;
  }
  for (const [k, v] of Object.entries(inner.ranges)) {
    if (!rangesContain(outer.ranges[k] ?? [], v)) return false;
  }
  return true;
}

/** True when the pool holds nothing. */
export function isEmptyPool(pool: Pool): boolean {
  return Object.values(pool.scalars).every((v) => v <= 0) &&
    Object.values(pool.ranges).every((r) => r.length === 0);
}

/**
 * Converts a Resource list to a pool. Returns an error string naming the
 * resource when one cannot be satisfied by unreserved resources allocated
 * to `role` (reservations, sets, text, negative amounts, another role).
 */
export function poolFromResources(resources: Resource[], role?: string): Pool | string {
  const pool = emptyPool();
  for (const r of resources) {
    if (r.role !== undefined && r.role !== "*") {
      return `Resource "${r.name}" is reserved for role "${r.role}", but only unreserved resources exist`;
    }
    if (r.reservation || (r.reservations && r.reservations.length > 0)) {
      return `Resource "${r.name}" carries a reservation, but only unreserved resources exist`;
    }
    if (
      role !== undefined && r.allocation_info?.role !== undefined && r.allocation_info.role !== role
    ) {
      return `Resource "${r.name}" is allocated to role "${r.allocation_info.role}", but the offer is for role "${role}"`;
    }
    if (r.type === "SCALAR") {
      const v = r.scalar?.value;
      if (v === undefined || !Number.isFinite(v) || v < 0) {
        return `Resource "${r.name}" has an invalid scalar value ${v}`;
      }
      pool.scalars[r.name] = round((pool.scalars[r.name] ?? 0) + v);
    } else if (r.type === "RANGES") {
      const list = r.ranges?.range ?? [];
      for (const range of list) {
        if (range.begin > range.end) {
          return `Resource "${r.name}" has an invalid range [${range.begin}-${range.end}]`;
        }
      }
      pool.ranges[r.name] = normalizeRanges([...(pool.ranges[r.name] ?? []), ...list]);
    } else {
      return `Resource "${r.name}" of type ${r.type} is not supported by the local cluster`;
    }
  }
  return pool;
}

/** Converts a pool to a Resource list, each resource carrying `allocation_info` for `role`. */
export function resourcesFromPool(pool: Pool, role?: string): Resource[] {
  const out: Resource[] = [];
  const alloc = role === undefined ? {} : { allocation_info: { role } };
  for (const [name, value] of Object.entries(pool.scalars)) {
    if (value > 0) out.push({ name, type: "SCALAR", scalar: { value }, ...alloc });
  }
  for (const [name, ranges] of Object.entries(pool.ranges)) {
    if (ranges.length > 0) {
      out.push({
        name,
        type: "RANGES",
        ranges: { range: ranges.map((r) => ({ ...r })) },
        ...alloc,
      });
    }
  }
  return out;
}
