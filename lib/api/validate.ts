/**
 * Validation of CREATE and UPDATE requests: each field checked by one small
 * function that names the field and the bad value.
 *
 * @module
 */
import { HttpError } from "./http_error.ts";
import { didYouMean } from "../did_you_mean.ts";
import { passwordProblem } from "../redis/auth.ts";
import { MAX_PROXIES } from "../scheduler/proxy_plan.ts";

/** Longest instance name. */
export const MAX_NAME_LENGTH = 64;
/** Largest capacity, MB. */
export const MAX_CAPACITY_MB = 65536;
/** Most slaves of one instance. */
export const MAX_SLAVES = 100;
/** Most masters (shards) of a Redis Cluster instance. */
export const MAX_MASTERS = 100;
/** Most replicas of each shard of a Redis Cluster instance. */
export const MAX_CLUSTER_SLAVES = 5;
/** Most processes of a Redis Cluster instance (`masters × (1 + slaves)`). */
export const MAX_CLUSTER_PROCESSES = 300;
/** Largest Distribution. */
export const MAX_DISTRIBUTION = 100;

/** A checked CREATE request. */
export interface CreateParams {
  name: string;
  capacityMB: number;
  masters: number;
  slaves: number;
  distribution: number;
  /** The clients' password from the body; absent: the scheduler makes a random one. */
  password?: string;
  /** Proxy endpoints from the body; absent: the default of the instance type. */
  proxies?: number;
}

function show(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
}

/** A JSON value as JSON text, cut after 80 characters. */
function showJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

/** Checks an instance name: 1 to 64 letters, digits, `-`, `_`. */
export function parseName(raw: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(raw) || raw.length > MAX_NAME_LENGTH) {
    throw new HttpError(
      400,
      `Field "name" must be 1 to ${MAX_NAME_LENGTH} letters, digits, "-" or "_", but got ${
        show(raw)
      }`,
    );
  }
  return raw;
}

function wholeNumber(field: string, raw: string, min: number, max: number, unit = ""): number {
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HttpError(
      400,
      `Field "${field}" must be a whole number${unit} from ${min} to ${max}, but got ${show(raw)}`,
    );
  }
  return n;
}

/**
 * Checks a wanted proxy count (the body field `Proxies` of CREATE, and of
 * UPDATE): a whole JSON number from 0 to {@linkcode MAX_PROXIES}.
 */
export function parseProxies(value: unknown): number {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > MAX_PROXIES
  ) {
    throw new HttpError(
      400,
      `Field "Proxies" must be a whole JSON number from 0 to ${MAX_PROXIES} (not a string), but got ${
        showJson(value)
      }`,
    );
  }
  return value;
}

/** Checks the path fields of CREATE and the optional JSON body. */
export function parseCreate(
  name: string,
  capacity: string,
  masters: string,
  slaves: string,
  body: string,
): CreateParams {
  const params: CreateParams = {
    name: parseName(name),
    capacityMB: wholeNumber("capacity", capacity, 1, MAX_CAPACITY_MB, " of MB"),
    masters: 1,
    slaves: 0,
    distribution: 1,
  };
  params.masters = wholeNumber("masters", masters, 1, MAX_MASTERS);
  // More than one master: a Redis Cluster of that many shards, each with `slaves` replicas.
  params.slaves = wholeNumber(
    "slaves",
    slaves,
    0,
    params.masters > 1 ? MAX_CLUSTER_SLAVES : MAX_SLAVES,
    params.masters > 1 ? " of replicas per shard" : "",
  );
  const total = params.masters * (1 + params.slaves);
  if (params.masters > 1 && total > MAX_CLUSTER_PROCESSES) {
    throw new HttpError(
      400,
      `Field "masters": a cluster of ${params.masters} masters with ${params.slaves} replicas each has ${total} processes, more than ${MAX_CLUSTER_PROCESSES}`,
    );
  }
  parseBody(body, BODY_FIELDS, params);
  return params;
}

/** A checked UPDATE request: the fields to change (absent: unchanged). */
export interface UpdateParams {
  name: string;
  capacityMB?: number;
  slaves?: number;
  distribution?: number;
  /** Proxy endpoints wanted. */
  proxies?: number;
}

/** A whole JSON number from `min` to `max` (not a string), or a 400 naming `field`. */
function jsonWholeNumber(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new HttpError(
      400,
      `Field "${field}" must be a whole JSON number from ${min} to ${max} (not a string), but got ${
        showJson(value)
      }`,
    );
  }
  return value;
}

/** The fields an UPDATE body may hold. */
const UPDATE_FIELDS: Record<string, (value: unknown, params: UpdateParams) => void> = {
  Capacity(value, params) {
    params.capacityMB = jsonWholeNumber("Capacity", value, 1, MAX_CAPACITY_MB);
  },
  Slaves(value, params) {
    params.slaves = jsonWholeNumber("Slaves", value, 0, MAX_SLAVES);
  },
  Distribution(value, params) {
    params.distribution = jsonWholeNumber("Distribution", value, 1, MAX_DISTRIBUTION);
  },
  Proxies(value, params) {
    params.proxies = parseProxies(value);
  },
};

/** Checks an UPDATE: the name and a JSON body naming at least one field to change. */
export function parseUpdate(name: string, body: string): UpdateParams {
  const params: UpdateParams = { name: parseName(name) };
  const known = Object.keys(UPDATE_FIELDS).join(", ");
  if (body.trim() === "") {
    throw new HttpError(400, `Body must be a JSON object with at least one of ${known}`);
  }
  parseBody(body, UPDATE_FIELDS, params);
  if (
    params.capacityMB === undefined && params.slaves === undefined &&
    params.distribution === undefined && params.proxies === undefined
  ) {
    throw new HttpError(400, `Body must name at least one of ${known}, but got ${show(body)}`);
  }
  return params;
}

/**
 * The fields a CREATE body may hold, each with the function that checks its
 * value and sets it on the request. Numbers must be JSON numbers: `"2"` is
 * refused, so a quoted value never means something else than it says.
 */
const BODY_FIELDS: Record<string, (value: unknown, params: CreateParams) => void> = {
  Distribution(value, params) {
    if (value === null) return; // the default, 1
    if (
      typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_DISTRIBUTION
    ) {
      throw new HttpError(
        400,
        `Field "Distribution" must be a whole JSON number from 1 to ${MAX_DISTRIBUTION} (not a string), but got ${
          showJson(value)
        }`,
      );
    }
    params.distribution = value;
  },
  Password(value, params) {
    if (value === null) return; // a random one
    if (typeof value !== "string") {
      throw new HttpError(400, `Field "Password" must be a string, but got a ${typeof value}`);
    }
    // The message never repeats the password.
    const problem = passwordProblem(value);
    if (problem) throw new HttpError(400, `Field "Password" ${problem}`);
    params.password = value;
  },
  Proxies(value, params) {
    if (value === null) return; // the default of the instance type
    params.proxies = parseProxies(value);
    if (params.proxies > 0 && params.masters > 1) {
      // Cluster clients follow the cluster's own redirections (MOVED/ASK).
      throw new HttpError(
        400,
        `Field "Proxies" must be 0 for a Redis Cluster instance (masters ${params.masters}): proxies are for one master, but got ${params.proxies}`,
      );
    }
  },
};

/**
 * Reads the optional JSON body into `params`, each field checked by its
 * function in `fields`; a field not there is refused naming the closest
 * known one. An empty body changes nothing.
 */
function parseBody<P>(
  body: string,
  fields: Record<string, (value: unknown, params: P) => void>,
  params: P,
): void {
  if (body.trim() === "") return;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw new HttpError(400, `Body must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new HttpError(400, `Body must be a JSON object, but got ${show(body)}`);
  }
  const known = Object.keys(fields);
  for (const [field, fieldValue] of Object.entries(value)) {
    const check = Object.hasOwn(fields, field) ? fields[field] : undefined;
    if (check === undefined) {
      throw new HttpError(
        400,
        `Body field ${show(field)} is unknown${didYouMean(field, known)}; known fields: ${
          known.join(", ")
        }`,
      );
    }
    check(fieldValue, params);
  }
}
