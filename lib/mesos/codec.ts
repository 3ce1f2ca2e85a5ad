/**
 * Encoding and decoding of Mesos v1 messages, in protobuf and in Mesos's JSON
 * mapping.
 *
 * The in-memory shape of every message is Mesos's JSON mapping as plain
 * objects: snake_case field names, enums as their names (`"TASK_RUNNING"`),
 * ids as `{value: "..."}`, `bytes` as `Uint8Array`, 64-bit integers and
 * doubles as JS numbers, maps as plain objects. Unset optional fields are
 * absent (defaults are never filled in).
 *
 * The message types come from a generated descriptor (`schema.ts`), so the
 * JSON encoding loads no protobuf module. The protobuf encoding
 * (`protobuf_codec.ts`) is loaded on demand: `await ready(contentType)` or `await loadProtobuf()`
 * before the first protobuf `encode`/`decode`, or import `protobuf_codec.ts`.
 *
 * @example
 * ```ts
 * const body = encode("mesos.v1.scheduler.Call", { type: "TEARDOWN", framework_id: { value: "f" } }, "application/json");
 * const call = decode("mesos.v1.scheduler.Call", body, "application/json");
 * ```
 *
 * @module
 */

import { type FieldSchema, isMessage, lookupMessage, type MessageSchema } from "./schema.ts";

/** The two content types the Mesos v1 HTTP APIs speak. */
export type ContentType = "application/x-protobuf" | "application/json";

/** Thrown by {@link decode} for a body that does not parse or misses a required field. */
export class MesosDecodeError extends Error {
  /** Creates the error; `message` names the type and the problem. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MesosDecodeError";
  }
}

/** The protobuf wire format, supplied by `protobuf_codec.ts` once loaded. */
export interface ProtobufWire {
  /** Encodes a normalized message of `typeName`. */
  encode(typeName: string, message: Record<string, unknown>): Uint8Array<ArrayBuffer>;
  /** Decodes `body` to a plain object (enums as names, 64-bit integers as numbers). */
  decode(typeName: string, body: Uint8Array): unknown;
}

let protobufWire: ProtobufWire | undefined;

/** Installs the protobuf wire format (called by `protobuf_codec.ts` when it loads). */
export function registerProtobufWire(wire: ProtobufWire): void {
  protobufWire = wire;
}

/**
 * Loads the protobuf encoding (`protobuf_codec.ts`) on first use. The JSON encoding
 * never needs it; {@link encode} and {@link decode} with
 * `application/x-protobuf` throw until it is loaded. Importing
 * `protobuf_codec.ts` statically loads it too.
 */
export async function loadProtobuf(): Promise<void> {
  if (!protobufWire) await import("./protobuf_codec.ts");
}

/** Makes `contentType` usable with {@link encode} and {@link decode} (loads protobuf when needed). */
export async function ready(contentType: ContentType): Promise<void> {
  if (contentType === "application/x-protobuf") await loadProtobuf();
}

function wire(): ProtobufWire {
  if (!protobufWire) {
    throw new Error(
      'The protobuf encoding is not loaded: call "await loadProtobuf()" first, or use application/json',
    );
  }
  return protobufWire;
}

/** Returns the message type for a full Mesos type name, e.g. `"mesos.v1.TaskStatus"`. */
function lookup(typeName: string): MessageSchema {
  const type = lookupMessage(typeName);
  if (!type) throw new TypeError(`Unknown Mesos message type "${typeName}"`);
  return type;
}

/** True when `typeName` names a message type this codec knows. */
export function isMessageType(typeName: string): boolean {
  return lookupMessage(typeName) !== undefined;
}

/** A problem found while walking a message, with the dotted path of the field. */
class ShapeError extends Error {
  constructor(readonly path: string, readonly problem: string) {
    super(`${problem} at "${path}"`);
  }
}

const DROP = Symbol("drop");

const utf8Encoder = new TextEncoder();
/** Strict UTF-8 (a bad byte sequence is a decode error); stateless between calls. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

const INTEGER_TYPES = new Set([
  "int32",
  "uint32",
  "sint32",
  "fixed32",
  "sfixed32",
  "int64",
  "uint64",
  "sint64",
  "fixed64",
  "sfixed64",
]);
const UNSIGNED_TYPES = new Set(["uint32", "fixed32", "uint64", "fixed64"]);

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

/**
 * Checks `input` against `type` and returns it in the in-memory shape.
 * `json` selects the JSON wire rules (bytes as base64 strings); otherwise
 * bytes must already be `Uint8Array`s (copied, so no Buffer leaks out).
 */
function normalize(
  type: MessageSchema,
  input: unknown,
  path: string,
  json: boolean,
): Record<string, unknown> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ShapeError(path || "(root)", `Expected an object for ${type.name}`);
  }
  const source = input as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of type.fields) {
    const value = source[field.name];
    if (value === undefined || value === null) {
      if (field.required) throw new ShapeError(join(path, field.name), "Missing required field");
      continue;
    }
    // Only for present fields: most of a message's schema fields are absent.
    const fieldPath = join(path, field.name);
    if (field.map) {
      if (typeof value !== "object" || Array.isArray(value)) {
        throw new ShapeError(fieldPath, "Expected an object for a map field");
      }
      const map: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        const converted = convertValue(field, item, join(fieldPath, key), json);
        if (converted !== DROP) map[key] = converted;
      }
      out[field.name] = map;
    } else if (field.repeated) {
      if (!Array.isArray(value)) throw new ShapeError(fieldPath, "Expected an array");
      const list: unknown[] = [];
      value.forEach((item, i) => {
        const converted = convertValue(field, item, `${fieldPath}[${i}]`, json);
        if (converted !== DROP) list.push(converted);
      });
      out[field.name] = list;
    } else {
      const converted = convertValue(field, value, fieldPath, json);
      if (converted === DROP) {
        if (field.required) throw new ShapeError(fieldPath, `Unknown ${field.type} value`);
        continue;
      }
      out[field.name] = converted;
    }
  }
  return out;
}

function convertValue(
  field: FieldSchema,
  value: unknown,
  path: string,
  json: boolean,
): unknown {
  const resolved = field.resolved;
  if (resolved && isMessage(resolved)) return normalize(resolved, value, path, json);
  if (resolved) {
    if (typeof value === "string") return value in resolved.values ? value : DROP;
    if (typeof value === "number") return resolved.valuesById[value] ?? DROP;
    throw new ShapeError(path, `Expected an enum name of ${resolved.name}`);
  }
  switch (field.type) {
    case "string":
      if (typeof value !== "string") throw new ShapeError(path, "Expected a string");
      return value;
    case "bool":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      throw new ShapeError(path, "Expected a boolean");
    case "bytes":
      if (value instanceof Uint8Array) return new Uint8Array(value);
      if (json && typeof value === "string") {
        try {
          return decodeBase64(value);
        } catch {
          throw new ShapeError(path, "Expected standard base64");
        }
      }
      throw new ShapeError(path, json ? "Expected a base64 string" : "Expected a Uint8Array");
    case "double":
    case "float":
      return toNumber(value, path, false);
    default:
      if (INTEGER_TYPES.has(field.type)) {
        const n = toNumber(value, path, true);
        if (UNSIGNED_TYPES.has(field.type) && n < 0) {
          throw new ShapeError(path, "Expected an unsigned integer");
        }
        return n;
      }
      throw new ShapeError(path, `Unsupported field type ${field.type}`);
  }
}

function toNumber(value: unknown, path: string, integer: boolean): number {
  let n: number;
  if (typeof value === "number") {
    n = value;
  } else if (typeof value === "string" && value.trim() !== "") {
    n = Number(value);
    if (!integer && Number.isNaN(n) && value !== "NaN") {
      throw new ShapeError(path, `Expected a number, got "${value}"`);
    }
  } else if (typeof value === "bigint") {
    n = Number(value);
  } else if (
    typeof value === "object" && value !== null && "low" in value && "high" in value
  ) {
    // A protobufjs Long (only if a caller passed one in).
    const long = value as { low: number; high: number; unsigned?: boolean };
    n = long.high * 4294967296 + (long.low >>> 0);
  } else {
    throw new ShapeError(path, "Expected a number");
  }
  if (integer && !Number.isInteger(n)) throw new ShapeError(path, "Expected an integer");
  return n;
}

/** Converts a normalized (in-memory) message to a JSON-ready value. */
function toJsonValue(type: MessageSchema, message: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = {};
  for (const field of type.fields) {
    const value = message[field.name];
    if (value === undefined) continue;
    const one = (v: unknown): unknown => {
      const resolved = field.resolved;
      if (resolved && isMessage(resolved)) {
        return toJsonValue(resolved, v as Record<string, unknown>);
      }
      if (v instanceof Uint8Array) return encodeBase64(v);
      if (typeof v === "number" && !Number.isFinite(v)) return String(v);
      return v;
    };
    if (field.map) {
      const map: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) map[k] = one(v);
      out[field.name] = map;
    } else if (field.repeated) {
      out[field.name] = (value as unknown[]).map(one);
    } else {
      out[field.name] = one(value);
    }
  }
  return out;
}

/**
 * Encodes a message given in the in-memory shape (see the module doc) as a
 * request or event body. Throws a `TypeError` naming the field when the
 * message misses a required field or holds a value of the wrong kind.
 */
export function encode(
  typeName: string,
  message: object,
  contentType: ContentType,
): Uint8Array<ArrayBuffer> {
  const type = lookup(typeName);
  let normalized: Record<string, unknown>;
  try {
    normalized = normalize(type, message, "", false);
  } catch (error) {
    if (error instanceof ShapeError) {
      throw new TypeError(`Cannot encode ${typeName}: ${error.message}`, { cause: error });
    }
    throw error;
  }
  if (contentType === "application/json") {
    return utf8Encoder.encode(JSON.stringify(toJsonValue(type, normalized)));
  }
  if (contentType !== "application/x-protobuf") {
    throw new TypeError(`Unsupported content type "${contentType}"`);
  }
  return wire().encode(type.fullName, normalized);
}

/**
 * Decodes a request or event body into the in-memory shape (see the module
 * doc). Throws {@link MesosDecodeError} for a body that does not parse, a
 * value of the wrong kind, an unknown name for a required enum, or a missing
 * required field (at any depth). Unknown JSON keys and unknown protobuf
 * fields are ignored; unknown names of optional enums are dropped.
 */
// deno-lint-ignore no-explicit-any
export function decode<T = any>(typeName: string, body: Uint8Array, contentType: ContentType): T {
  const type = lookup(typeName);
  let raw: unknown;
  const json = contentType === "application/json";
  if (json) {
    try {
      raw = JSON.parse(utf8Decoder.decode(body));
    } catch (error) {
      throw new MesosDecodeError(
        `Cannot decode ${typeName} from JSON: ${(error as Error).message}`,
        { cause: error },
      );
    }
  } else if (contentType === "application/x-protobuf") {
    const protobuf = wire();
    try {
      raw = protobuf.decode(type.fullName, body);
    } catch (error) {
      throw new MesosDecodeError(
        `Cannot decode ${typeName} from protobuf: ${(error as Error).message}`,
        { cause: error },
      );
    }
  } else {
    throw new TypeError(`Unsupported content type "${contentType}"`);
  }
  try {
    return normalize(type, raw, "", json) as T;
  } catch (error) {
    if (error instanceof ShapeError) {
      throw new MesosDecodeError(
        `Cannot decode ${typeName} from ${json ? "JSON" : "protobuf"}: ${error.message}`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** `Uint8Array.prototype.toBase64` where the runtime has it (standard alphabet, with padding). */
const nativeToBase64 = (Uint8Array.prototype as { toBase64?: (this: Uint8Array) => string })
  .toBase64;

/** Standard base64 (with padding) of `bytes`. */
export function encodeBase64(bytes: Uint8Array): string {
  if (nativeToBase64) return nativeToBase64.call(bytes);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a standard base64 string; throws on characters outside the alphabet. */
export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
