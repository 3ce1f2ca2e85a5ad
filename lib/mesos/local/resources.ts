/**
 * Resource arithmetic for the local cluster: a pool of scalars (`cpus`,
 * `mem`, ...) and ranges (`ports`) with add, subtract and contains, and
 * conversion to and from `mesos.v1.Resource` lists. Resources statically
 * reserved for a role are kept under their own key, `name(role)`
 * ({@linkcode poolKey}), so every operation keeps them apart from the
 * unreserved ones.
 *
 * @module
 */

import type { Range, Resource } from "./messages.ts";

/** A bag of resources (reserved ones keyed `name(role)`). Scalars are kept to 3 decimal places like Mesos. */
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

/**
 * The sum of `pools` as a new pool: the same as adding them one by one with
 * {@linkcode addPools}, but each name's ranges are merged once at the end
 * instead of after every addition.
 */
export function sumPools(pools: Iterable<Pool>): Pool {
  const scalars: Record<string, number> = {};
  const lists: Record<string, Range[]> = {};
  for (const pool of pools) {
    for (const k in pool.scalars) scalars[k] = round((scalars[k] ?? 0) + pool.scalars[k]!);
    for (const k in pool.ranges) (lists[k] ??= []).push(...pool.ranges[k]!);
  }
  const ranges: Record<string, Range[]> = {};
  for (const k in lists) ranges[k] = normalizeRanges(lists[k]!);
  return { scalars, ranges };
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
 * The pool key of a resource: its name when unreserved, `name(role)` when
 * statically reserved for `role` (so pool arithmetic keeps reserved and
 * unreserved amounts apart, as Mesos does).
 */
export function poolKey(name: string, role?: string): string {
  return role === undefined || role === "*" ? name : `${name}(${role})`;
}

/** The resource name and reservation role (`undefined` = unreserved) of a pool key. */
export function splitPoolKey(key: string): { name: string; role?: string } {
  const open = key.indexOf("(");
  if (open < 0 || !key.endsWith(")")) return { name: key };
  return { name: key.slice(0, open), role: key.slice(open + 1, -1) };
}

/** The sum of resource `name` in `pool`, reserved or not. */
export function scalarTotal(pool: Pool, name: string): number {
  let sum = 0;
  for (const [k, v] of Object.entries(pool.scalars)) {
    if (splitPoolKey(k).name === name) sum += v;
  }
  return round(sum);
}

/** Keeps what a framework in `role` may be offered: unreserved entries and those reserved for `role`. */
export function poolForRole(pool: Pool, role: string): Pool {
  const out = emptyPool();
  const keep = (k: string) => {
    const r = splitPoolKey(k).role;
    return r === undefined || r === role;
  };
  for (const [k, v] of Object.entries(pool.scalars)) if (keep(k)) out.scalars[k] = v;
  for (const [k, v] of Object.entries(pool.ranges)) {
    if (keep(k)) out.ranges[k] = v.map((r) => ({ ...r }));
  }
  return out;
}

function describeKey(key: string): string {
  const { name, role } = splitPoolKey(key);
  return role === undefined ? `unreserved ${name}` : `${name} reserved for role "${role}"`;
}

function describeRanges(ranges: Range[]): string {
  return ranges.length === 0 ? "none" : `[${ranges.map((r) => `${r.begin}-${r.end}`).join(",")}]`;
}

/**
 * Why `outer` does not contain `inner`, in one line naming the first
 * resource short (and where the same resource is held otherwise, e.g.
 * reserved where unreserved was asked for); `undefined` when it does.
 */
export function shortfall(outer: Pool, inner: Pool): string | undefined {
  const elsewhere = (key: string, has: (k: string) => boolean) => {
    const { name } = splitPoolKey(key);
    const others = [...Object.keys(outer.scalars), ...Object.keys(outer.ranges)]
      .filter((k) => k !== key && splitPoolKey(k).name === name && has(k));
    return others.length === 0 ? "" : ` (the offers hold ${others.map(describeKey).join(" and ")})`;
  };
  for (const [k, v] of Object.entries(inner.scalars)) {
    const have = round(outer.scalars[k] ?? 0);
    if (v > 0 && have < round(v)) {
      return `asks for ${round(v)} ${describeKey(k)}, but the offers hold ${have}${
        elsewhere(k, (o) => (outer.scalars[o] ?? 0) > 0)
      }`;
    }
  }
  for (const [k, v] of Object.entries(inner.ranges)) {
    const have = outer.ranges[k] ?? [];
    if (!rangesContain(have, v)) {
      return `asks for ${describeKey(k)} ${describeRanges(v)}, but the offers hold ${
        describeRanges(have)
      }${elsewhere(k, (o) => (outer.ranges[o] ?? []).length > 0)}`;
    }
  }
  return undefined;
}

/**
 * The reservation role of a resource as a framework sends it, in either
 * format (pre-refinement `role`, or a `reservations` stack), or an error:
 * dynamic and refined reservations do not exist in the local cluster.
 */
function reservationRole(r: Resource): string | undefined | { error: string } {
  const stack = r.reservations ?? [];
  const legacy = r.role !== undefined && r.role !== "*";
  if (stack.length > 0 && (legacy || r.reservation)) {
    return {
      error:
        `Resource "${r.name}" has 'reservations' together with 'role' or 'reservation'; use one format`,
    };
  }
  if (r.reservation) {
    return {
      error:
        `Resource "${r.name}" carries a dynamic reservation, but the local cluster has only static ones`,
    };
  }
  if (stack.length > 1) {
    return {
      error:
        `Resource "${r.name}" has a refined reservation (${stack.length} levels), which the local cluster does not have`,
    };
  }
  if (stack.length === 1) {
    const only = stack[0]!;
    if (only.type !== undefined && only.type !== "STATIC") {
      return {
        error: `Resource "${r.name}" carries a reservation of type ${
          String(only.type)
        }, but the local cluster has only STATIC ones`,
      };
    }
    if (typeof only.role !== "string" || only.role === "" || only.role === "*") {
      return { error: `Resource "${r.name}" has a reservation without a role` };
    }
    return only.role;
  }
  return legacy ? r.role : undefined;
}

/**
 * Converts a Resource list to a pool (reserved entries under
 * {@linkcode poolKey}). Returns an error string naming the resource when
 * one cannot be satisfied by resources allocated to `role`: reserved for
 * another role, allocated to another role, a reservation kind the local
 * cluster has not (dynamic, refined), sets, text, negative amounts.
 */
export function poolFromResources(resources: Resource[], role?: string): Pool | string {
  const pool = emptyPool();
  for (const r of resources) {
    const reserved = reservationRole(r);
    if (typeof reserved === "object") return reserved.error;
    if (role !== undefined && reserved !== undefined && reserved !== role) {
      return `Resource "${r.name}" is reserved for role "${reserved}", but the offer is allocated to role "${role}"`;
    }
    if (
      role !== undefined && r.allocation_info?.role !== undefined && r.allocation_info.role !== role
    ) {
      return `Resource "${r.name}" is allocated to role "${r.allocation_info.role}", but the offer is for role "${role}"`;
    }
    const key = poolKey(r.name, reserved);
    if (r.type === "SCALAR") {
      const v = r.scalar?.value;
      if (v === undefined || !Number.isFinite(v) || v < 0) {
        return `Resource "${r.name}" has an invalid scalar value ${v}`;
      }
      pool.scalars[key] = round((pool.scalars[key] ?? 0) + v);
    } else if (r.type === "RANGES") {
      const list = r.ranges?.range ?? [];
      for (const range of list) {
        if (range.begin > range.end) {
          return `Resource "${r.name}" has an invalid range [${range.begin}-${range.end}]`;
        }
      }
      pool.ranges[key] = normalizeRanges([...(pool.ranges[key] ?? []), ...list]);
    } else {
      return `Resource "${r.name}" of type ${r.type} is not supported by the local cluster`;
    }
  }
  return pool;
}

/** How reservations are written in resources sent to a framework (protocol reference §3 Resource). */
export type ReservationFormat = "refinement" | "pre-refinement";

/**
 * Converts a pool to a Resource list. With `role`, each resource carries
 * `allocation_info` for it. Reserved entries carry their static reservation
 * as Mesos sends it: a `reservations` stack `[{type: STATIC, role}]`
 * (`refinement`, for frameworks with RESERVATION_REFINEMENT, and agent
 * info), or `role` (`pre-refinement`, where unreserved ones get `role: "*"`).
 */
export function resourcesFromPool(
  pool: Pool,
  role?: string,
  format: ReservationFormat = "refinement",
): Resource[] {
  const out: Resource[] = [];
  const extra = (key: string): Partial<Resource> => {
    const reserved = splitPoolKey(key).role;
    return {
      ...(format === "pre-refinement" ? { role: reserved ?? "*" } : {}),
      ...(format === "refinement" && reserved !== undefined
        ? { reservations: [{ type: "STATIC", role: reserved }] }
        : {}),
      ...(role === undefined ? {} : { allocation_info: { role } }),
    };
  };
  // Reserved entries after the unreserved ones of the same name, names in pool order.
  const order = (keys: string[]) =>
    keys.sort((a, b) => {
      const ra = splitPoolKey(a).role === undefined ? 0 : 1;
      const rb = splitPoolKey(b).role === undefined ? 0 : 1;
      return ra - rb;
    });
  for (const key of order(Object.keys(pool.scalars))) {
    const value = pool.scalars[key]!;
    if (value > 0) {
      out.push({ name: splitPoolKey(key).name, type: "SCALAR", scalar: { value }, ...extra(key) });
    }
  }
  for (const key of order(Object.keys(pool.ranges))) {
    const ranges = pool.ranges[key]!;
    if (ranges.length > 0) {
      out.push({
        name: splitPoolKey(key).name,
        type: "RANGES",
        ranges: { range: ranges.map((r) => ({ ...r })) },
        ...extra(key),
      });
    }
  }
  return out;
}
