/**
 * The Mesos message types, read from the generated descriptor
 * (`proto/descriptor.json`, see `tools/gen_mesos_descriptor.ts`) without
 * protobufjs: names, fields, labels and enums, which is all the JSON codec
 * needs. Type references are resolved the way protobuf scopes them, lazily
 * and once.
 *
 * @module
 */
import descriptor from "./proto/descriptor.json" with { type: "json" };

/** One enum: names to numbers and back (the last name of a number wins, as in protobufjs). */
export interface EnumSchema {
  /** Short name, e.g. `TaskState`. */
  readonly name: string;
  /** Name → number. */
  readonly values: Readonly<Record<string, number>>;
  /** Number → name. */
  readonly valuesById: Readonly<Record<number, string>>;
}

/** One field of a message. */
export interface FieldSchema {
  /** Field name (snake_case, as in the `.proto`). */
  readonly name: string;
  /** Scalar type (`string`, `int64`, ...) or the referenced type as written. */
  readonly type: string;
  /** `repeated` label. */
  readonly repeated: boolean;
  /** `required` label. */
  readonly required: boolean;
  /** A `map<>` field (values of `type`). */
  readonly map: boolean;
  /** The message or enum `type` names, or `undefined` for a scalar. */
  readonly resolved: MessageSchema | EnumSchema | undefined;
}

/** One message type. */
export interface MessageSchema {
  /** Short name, e.g. `TaskStatus`. */
  readonly name: string;
  /** Full name, e.g. `mesos.v1.TaskStatus`. */
  readonly fullName: string;
  /** Its fields in declaration order. */
  readonly fields: readonly FieldSchema[];
}

interface RawField {
  type: string;
  id: number;
  rule?: string;
  keyType?: string;
}

interface RawNode {
  nested?: Record<string, RawNode>;
  fields?: Record<string, RawField>;
  values?: Record<string, number>;
}

const SCALARS = new Set([
  "double",
  "float",
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
  "bool",
  "string",
  "bytes",
]);

/** Full name → raw node of every message and enum. */
const nodes = new Map<string, RawNode>();
(function walk(node: RawNode, prefix: string) {
  for (const [name, child] of Object.entries(node.nested ?? {})) {
    const full = prefix ? `${prefix}.${name}` : name;
    if (child.fields || child.values) nodes.set(full, child);
    walk(child, full);
  }
})(descriptor as RawNode, "");

const messages = new Map<string, MessageSchema>();
const enums = new Map<string, EnumSchema>();

function shortName(full: string): string {
  return full.slice(full.lastIndexOf(".") + 1);
}

/** Resolves `ref` as written inside the message `scope` (protobuf's scoping rules). */
function resolveName(ref: string, scope: string): string | undefined {
  if (ref.startsWith(".")) return nodes.has(ref.slice(1)) ? ref.slice(1) : undefined;
  let outer = scope;
  while (true) {
    const candidate = outer ? `${outer}.${ref}` : ref;
    if (nodes.has(candidate)) return candidate;
    if (outer === "") return undefined;
    const i = outer.lastIndexOf(".");
    outer = i < 0 ? "" : outer.slice(0, i);
  }
}

function enumSchema(full: string, raw: RawNode): EnumSchema {
  let schema = enums.get(full);
  if (!schema) {
    const values = { ...raw.values! };
    const valuesById: Record<number, string> = {};
    for (const [name, id] of Object.entries(values)) valuesById[id] = name;
    schema = { name: shortName(full), values, valuesById };
    enums.set(full, schema);
  }
  return schema;
}

function messageSchema(full: string, raw: RawNode): MessageSchema {
  let schema = messages.get(full);
  if (schema) return schema;
  const fields: FieldSchema[] = [];
  schema = { name: shortName(full), fullName: full, fields };
  // Registered before its fields resolve: messages refer to themselves.
  messages.set(full, schema);
  for (const [name, f] of Object.entries(raw.fields ?? {})) {
    let resolved: MessageSchema | EnumSchema | undefined;
    if (!SCALARS.has(f.type)) {
      const target = resolveName(f.type, full);
      const node = target === undefined ? undefined : nodes.get(target);
      if (!node || target === undefined) {
        throw new TypeError(`Cannot resolve type "${f.type}" of field ${full}.${name}`);
      }
      resolved = node.fields ? messageSchema(target, node) : enumSchema(target, node);
    }
    fields.push({
      name,
      type: f.type,
      repeated: f.rule === "repeated",
      required: f.rule === "required",
      map: f.keyType !== undefined,
      resolved,
    });
  }
  return schema;
}

/** True when `schema` is a message (not an enum). */
export function isMessage(schema: MessageSchema | EnumSchema): schema is MessageSchema {
  return "fields" in schema;
}

/** The message type of a full name (a leading `.` is allowed); `undefined` when unknown. */
export function lookupMessage(typeName: string): MessageSchema | undefined {
  const full = typeName.replace(/^\./, "");
  const raw = nodes.get(full);
  return raw?.fields ? messageSchema(full, raw) : undefined;
}

/** The raw protobufjs JSON descriptor (for the protobuf encoding). */
export const MESOS_DESCRIPTOR: unknown = descriptor;
