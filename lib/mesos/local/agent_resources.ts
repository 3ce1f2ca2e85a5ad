/**
 * Static reservations of a local agent, written as a real agent's
 * `--resources` flag: `cpus(redis):2;mem(redis):2048;ports(redis):[31000-31099]`.
 *
 * Each `;`-separated entry is `name(role):value`, with `name` one of the
 * resources a local agent has (`cpus`, `mem` in MB, `ports`), `role` a valid
 * role other than `*`, and `value` a number (cpus, mem) or ranges
 * `[a-b,c-d]` (ports). The entries are carved out of the agent's own totals
 * (its `cpus`, `mem` and ports range): what they do not name stays
 * unreserved, so reserving all of an agent's cpus, mem and ports leaves it
 * nothing unreserved. Pure functions; errors are one line naming the entry.
 *
 * @module
 */

import type { Range } from "./messages.ts";
import {
  addPools,
  containsPool,
  emptyPool,
  normalizeRanges,
  type Pool,
  poolKey,
  scalarTotal,
  splitPoolKey,
  subtractPools,
} from "./resources.ts";
import { validateRole } from "./validation.ts";

const SCALARS = new Set(["cpus", "mem"]);
const NAMES = "cpus, mem, ports";

function parseRanges(entry: string, raw: string): Range[] {
  const m = /^\[(.*)\]$/.exec(raw);
  if (!m) {
    throw new TypeError(
      `Resource entry "${entry}" must give ports as ranges such as [31000-31099]`,
    );
  }
  const out: Range[] = [];
  for (const part of m[1]!.split(",")) {
    const r = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(part);
    if (!r) {
      throw new TypeError(
        `Resource entry "${entry}" has a bad range "${part.trim()}" (want BEGIN-END)`,
      );
    }
    const begin = Number(r[1]);
    const end = Number(r[2]);
    if (begin > end || end > 65535) {
      throw new RangeError(
        `Resource entry "${entry}" has a range ${begin}-${end} that is empty or past 65535`,
      );
    }
    for (const have of out) {
      if (begin <= have.end && have.begin <= end) {
        throw new RangeError(`Resource entry "${entry}" has overlapping ranges`);
      }
    }
    out.push({ begin, end });
  }
  return out;
}

/**
 * Parses a reservation string into a pool keyed `name(role)`. Throws a
 * `TypeError`/`RangeError` with a one-line message naming the bad entry.
 */
export function parseAgentResources(text: string): Pool {
  const pool = emptyPool();
  const entries = text.split(";").map((e) => e.trim()).filter((e) => e !== "");
  if (entries.length === 0) {
    throw new TypeError(`Reserved resources "${text}" name no resource (want e.g. cpus(redis):2)`);
  }
  for (const entry of entries) {
    const m = /^([A-Za-z_][\w.-]*)(?:\(([^()]*)\))?:(.+)$/.exec(entry);
    if (!m) {
      throw new TypeError(`Resource entry "${entry}" must look like NAME(ROLE):VALUE`);
    }
    const [, name, role, rawValue] = m as unknown as [string, string, string | undefined, string];
    const value = rawValue.trim();
    if (!SCALARS.has(name) && name !== "ports") {
      throw new TypeError(
        `Resource entry "${entry}" names "${name}", which local agents do not have (${NAMES})`,
      );
    }
    if (role === undefined || role === "*") {
      throw new TypeError(
        `Resource entry "${entry}" reserves for no role; write ${name}(ROLE):${value} (the rest of the agent stays unreserved)`,
      );
    }
    const roleError = validateRole(role);
    if (roleError) throw new TypeError(`Resource entry "${entry}": ${roleError}`);
    const key = poolKey(name, role);
    if (SCALARS.has(name)) {
      const n = Number(value);
      if (value === "" || !Number.isFinite(n) || n <= 0) {
        throw new RangeError(
          `Resource entry "${entry}" must give a positive number, not "${value}"`,
        );
      }
      pool.scalars[key] = Math.round(((pool.scalars[key] ?? 0) + n) * 1000) / 1000;
    } else {
      const ranges = parseRanges(entry, value);
      const merged = [...(pool.ranges[key] ?? []), ...ranges];
      if (
        normalizeRanges(merged).reduce((s, r) => s + r.end - r.begin + 1, 0) !==
          merged.reduce((s, r) => s + r.end - r.begin + 1, 0)
      ) {
        throw new RangeError(`Resource entry "${entry}" overlaps ports reserved before`);
      }
      pool.ranges[key] = normalizeRanges(merged);
    }
  }
  // One port reserved for two roles is an error too.
  const ports = Object.entries(pool.ranges).flatMap(([, v]) => v);
  const count = ports.reduce((s, r) => s + r.end - r.begin + 1, 0);
  if (normalizeRanges(ports).reduce((s, r) => s + r.end - r.begin + 1, 0) !== count) {
    throw new RangeError(`Reserved resources "${text}" reserve some ports for more than one role`);
  }
  return pool;
}

/**
 * An agent's total resources: `cpus`, `mem` and the ports range, with the
 * `reserved` pool carved out of them. Throws a `RangeError` naming the
 * resource when more is reserved than the agent has (or ports outside its
 * range).
 */
export function agentTotal(
  base: { cpus: number; mem: number; ports: Range },
  reserved: Pool = emptyPool(),
): Pool {
  const unreserved: Pool = {
    scalars: { cpus: base.cpus, mem: base.mem },
    ranges: { ports: [{ begin: base.ports.begin, end: base.ports.end }] },
  };
  for (const name of ["cpus", "mem"] as const) {
    const want = scalarTotal(reserved, name);
    if (want > base[name]) {
      throw new RangeError(
        `The agent reserves ${want} ${name} in total, but has only ${base[name]}`,
      );
    }
  }
  const reservedPorts: Pool = { scalars: {}, ranges: {} };
  for (const [k, v] of Object.entries(reserved.ranges)) {
    reservedPorts.ranges[splitPoolKey(k).name] = normalizeRanges([
      ...(reservedPorts.ranges[splitPoolKey(k).name] ?? []),
      ...v,
    ]);
  }
  if (!containsPool(unreserved, reservedPorts)) {
    throw new RangeError(
      `The agent reserves ports outside its range ${base.ports.begin}-${base.ports.end}`,
    );
  }
  const carved = subtractPools(unreserved, {
    scalars: { cpus: scalarTotal(reserved, "cpus"), mem: scalarTotal(reserved, "mem") },
    ranges: reservedPorts.ranges,
  });
  return addPools(carved, reserved);
}

/**
 * Spreads `mesos_local --reserved` values (and the config's
 * `LocalReserved` entries) over the agents: `I=RESOURCES` is agent I's,
 * a bare `RESOURCES` every agent's (an agent's own entry wins). Returns one
 * string per agent (`""`: nothing reserved). Throws a one-line error naming
 * the bad value; the reservation strings themselves are checked when the
 * cluster is made (they need each agent's ports range).
 */
export function reservedPerAgent(values: readonly string[], agents: number): string[] {
  const every: string[] = [];
  const own = new Map<number, string>();
  for (const value of values) {
    const m = /^(\d+)=(.*)$/s.exec(value);
    if (!m) {
      if (every.length > 0) {
        throw new TypeError(`Reserved resources for every agent are given twice ("${value}")`);
      }
      every.push(value);
      continue;
    }
    const index = Number(m[1]);
    if (index >= agents) {
      throw new RangeError(
        `Reserved resources "${value}" name agent ${index}, but there are ${agents} agent(s) (0 to ${
          agents - 1
        })`,
      );
    }
    if (own.has(index)) {
      throw new TypeError(`Reserved resources for agent ${index} are given twice`);
    }
    own.set(index, m[2]!);
  }
  return Array.from({ length: agents }, (_, i) => own.get(i) ?? every[0] ?? "");
}
