/**
 * The protobuf wire format of the Mesos codec (proto2, as Mesos speaks it),
 * read and written straight from the message types of `schema.ts` with the
 * field numbers of the generated descriptor: no protobuf library, no code
 * generated at run time. Importing this module installs it into `codec.ts`
 * (which otherwise loads it on demand with `loadProtobuf()`): the JSON
 * encoding, which the executor uses, never pays for it.
 *
 * Writing takes a message in the codec's in-memory shape (already checked by
 * `codec.ts`): fields in declaration order, repeated scalars unpacked (proto2's
 * default, which Mesos reads), maps as repeated `{1: key, 2: value}` entries.
 * Reading accepts packed and unpacked repeated scalars, skips unknown fields
 * and fields whose wire type does not match, and gives enums as numbers and
 * 64-bit integers as JS numbers; `codec.ts` then checks the result (required
 * fields, enum names) as it does for JSON.
 *
 * @module
 */
import { registerProtobufWire } from "./codec.ts";
import {
  type EnumSchema,
  isMessage,
  lookupMessage,
  MESOS_DESCRIPTOR,
  type MessageSchema,
} from "./schema.ts";

const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const FIXED32 = 5;

/** Wire type of every scalar type. */
const WIRE: Record<string, number> = {
  int32: VARINT,
  int64: VARINT,
  uint32: VARINT,
  uint64: VARINT,
  sint32: VARINT,
  sint64: VARINT,
  bool: VARINT,
  fixed64: FIXED64,
  sfixed64: FIXED64,
  double: FIXED64,
  string: LENGTH,
  bytes: LENGTH,
  fixed32: FIXED32,
  sfixed32: FIXED32,
  float: FIXED32,
};

/** One field, ready for the wire. */
interface WireField {
  name: string;
  id: number;
  /** A scalar type name, `"enum"` or `"message"`. */
  kind: string;
  wire: number;
  repeated: boolean;
  /** A message field's type. */
  message?: WireMessage;
  /** An enum field's type. */
  enumType?: EnumSchema;
  /** A map field's entry: key (1) and value (2). */
  entry?: [WireField, WireField];
}

/** One message type, ready for the wire. */
interface WireMessage {
  fields: WireField[];
  byId: Map<number, WireField>;
}

interface RawField {
  id: number;
  type: string;
  keyType?: string;
}

interface RawNode {
  nested?: Record<string, RawNode>;
  fields?: Record<string, RawField>;
}

/** The descriptor node of a full name (`mesos.v1.Offer.Operation`). */
function rawNode(fullName: string): RawNode | undefined {
  let node: RawNode | undefined = MESOS_DESCRIPTOR as RawNode;
  for (const part of fullName.split(".")) node = node?.nested?.[part];
  return node;
}

const compiled = new Map<string, WireMessage>();

function wireMessage(schema: MessageSchema): WireMessage {
  let message = compiled.get(schema.fullName);
  if (message) return message;
  message = { fields: [], byId: new Map() };
  // Registered before its fields: messages refer to themselves.
  compiled.set(schema.fullName, message);
  const raw = rawNode(schema.fullName)?.fields ?? {};
  for (const f of schema.fields) {
    const r = raw[f.name];
    if (!r) throw new TypeError(`No field number for ${schema.fullName}.${f.name}`);
    const value = valueField(f.name, r.id, f.type, f.resolved, f.repeated);
    let field = value;
    if (f.map) {
      const key = valueField("key", 1, r.keyType ?? "string", undefined, false);
      field = { name: f.name, id: r.id, kind: "map", wire: LENGTH, repeated: true };
      field.entry = [key, { ...value, name: "value", id: 2, repeated: false }];
    }
    message.fields.push(field);
    message.byId.set(field.id, field);
  }
  // Written in field-number order, as protobuf's own encoders do.
  message.fields.sort((a, b) => a.id - b.id);
  return message;
}

function valueField(
  name: string,
  id: number,
  type: string,
  resolved: MessageSchema | EnumSchema | undefined,
  repeated: boolean,
): WireField {
  if (resolved && isMessage(resolved)) {
    return { name, id, kind: "message", wire: LENGTH, repeated, message: wireMessage(resolved) };
  }
  if (resolved) return { name, id, kind: "enum", wire: VARINT, repeated, enumType: resolved };
  const wire = WIRE[type];
  if (wire === undefined) throw new TypeError(`Unsupported field type ${type} of ${name}`);
  return { name, id, kind: type, wire, repeated };
}

function typeOf(typeName: string): WireMessage {
  const schema = lookupMessage(typeName);
  if (!schema) throw new TypeError(`Unknown Mesos message type "${typeName}"`);
  return wireMessage(schema);
}

// ---- writing ----

const TWO_32 = 4294967296;
const textEncoder = new TextEncoder();

/** A growing buffer that messages are written into. */
class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  pos = 0;

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.pos));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  /** An unsigned varint of a 32-bit value. */
  uvarint32(n: number): void {
    this.ensure(5);
    n >>>= 0;
    while (n > 127) {
      this.buf[this.pos++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  /** A varint of a 64-bit two's complement value given as its two halves. */
  varint64(lo: number, hi: number): void {
    this.ensure(10);
    while (hi) {
      this.buf[this.pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      this.buf[this.pos++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }

  /** A varint of any integer (negative ones as 64-bit two's complement, 10 bytes). */
  varint(n: number): void {
    if (n >= 0 && n < TWO_32) return this.uvarint32(n);
    const [lo, hi] = halves(n);
    this.varint64(lo, hi);
  }

  fixed64(n: number): void {
    const [lo, hi] = halves(n);
    this.ensure(8);
    this.view.setUint32(this.pos, lo, true);
    this.view.setUint32(this.pos + 4, hi, true);
    this.pos += 8;
  }

  tag(id: number, wire: number): void {
    this.uvarint32((id << 3 | wire) >>> 0);
  }

  /** Reserves a one-byte length and returns where the content starts. */
  begin(): number {
    this.ensure(1);
    return ++this.pos;
  }

  /** Writes the length of the content started at `start`, moving it when it takes more bytes. */
  end(start: number): void {
    const length = this.pos - start;
    if (length < 128) {
      this.buf[start - 1] = length;
      return;
    }
    let size = 1;
    for (let n = length >>> 7; n > 0; n >>>= 7) size++;
    this.ensure(size - 1);
    this.buf.copyWithin(start - 1 + size, start, this.pos);
    this.pos += size - 1;
    let n = length;
    let at = start - 1;
    while (n > 127) {
      this.buf[at++] = (n & 127) | 128;
      n >>>= 7;
    }
    this.buf[at] = n;
  }

  string(s: string): void {
    const start = this.begin();
    this.ensure(s.length * 3);
    this.pos += textEncoder.encodeInto(s, this.buf.subarray(this.pos)).written;
    this.end(start);
  }

  bytes(b: Uint8Array): void {
    this.uvarint32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/** The low and high 32 bits (unsigned) of an integer as 64-bit two's complement. */
function halves(n: number): [number, number] {
  const negative = n < 0;
  if (negative) n = -n;
  let lo = n % TWO_32 >>> 0;
  let hi = Math.floor(n / TWO_32) >>> 0;
  if (negative) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  return [lo, hi];
}

function writeMessage(w: Writer, type: WireMessage, message: Record<string, unknown>): void {
  for (const field of type.fields) {
    const value = message[field.name];
    if (value === undefined || value === null) continue;
    if (field.entry) {
      const [key, item] = field.entry;
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        w.tag(field.id, LENGTH);
        const start = w.begin();
        writeField(
          w,
          key,
          key.kind === "string" ? k : key.kind === "bool" ? k === "true" : Number(k),
        );
        writeField(w, item, v);
        w.end(start);
      }
    } else if (field.repeated) {
      for (const item of value as unknown[]) writeField(w, field, item);
    } else {
      writeField(w, field, value);
    }
  }
}

function writeField(w: Writer, field: WireField, value: unknown): void {
  w.tag(field.id, field.wire);
  switch (field.kind) {
    case "message": {
      const start = w.begin();
      writeMessage(w, field.message!, value as Record<string, unknown>);
      w.end(start);
      return;
    }
    case "enum":
      return w.varint(field.enumType!.values[value as string] ?? 0);
    case "string":
      return w.string(value as string);
    case "bytes":
      return w.bytes(value as Uint8Array);
    case "bool":
      return w.uvarint32(value ? 1 : 0);
    case "int32":
    case "int64":
    case "uint32":
    case "uint64":
      return w.varint(value as number);
    case "sint32":
    case "sint64": {
      const n = value as number;
      return w.varint(n >= 0 ? n * 2 : -n * 2 - 1);
    }
    case "fixed32":
    case "sfixed32":
    case "float":
      w.ensure(4);
      if (field.kind === "float") w.view.setFloat32(w.pos, value as number, true);
      else if (field.kind === "fixed32") w.view.setUint32(w.pos, value as number, true);
      else w.view.setInt32(w.pos, value as number, true);
      w.pos += 4;
      return;
    case "double":
      w.ensure(8);
      w.view.setFloat64(w.pos, value as number, true);
      w.pos += 8;
      return;
    default: // fixed64, sfixed64
      return w.fixed64(value as number);
  }
}

/** Encodes a message in the codec's in-memory shape. */
export function encodeProtobuf(
  typeName: string,
  message: Record<string, unknown>,
): Uint8Array<ArrayBuffer> {
  // One buffer serves every encoding (they are synchronous); the answer is a copy.
  const w = writer;
  w.pos = 0;
  writeMessage(w, typeOf(typeName), message);
  const out = w.buf.slice(0, w.pos);
  if (w.buf.length > 1 << 20) writer = new Writer();
  return out;
}

let writer = new Writer();

// ---- reading ----

const textDecoder = new TextDecoder();

/** A cursor over protobuf bytes. */
class Reader {
  readonly view: DataView;
  pos = 0;
  /** The high 32 bits of the last {@linkcode Reader.varint}. */
  hi = 0;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  need(n: number, end: number): void {
    if (this.pos + n > end) {
      throw new RangeError(`Truncated message: ${n} byte(s) needed at offset ${this.pos}`);
    }
  }

  /** A varint: returns its low 32 bits (unsigned) and keeps the high ones in `hi`. */
  varint(end: number): number {
    const buf = this.buf;
    let lo = 0;
    let b = 0;
    this.hi = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      this.need(1, end);
      b = buf[this.pos++]!;
      lo |= (b & 127) << shift;
      if (b < 128) return lo >>> 0;
    }
    this.need(1, end);
    b = buf[this.pos++]!;
    lo |= (b & 127) << 28;
    let hi = (b & 127) >> 4;
    if (b >= 128) {
      for (let shift = 3;; shift += 7) {
        if (shift > 31) throw new RangeError(`Invalid varint at offset ${this.pos}`);
        this.need(1, end);
        b = buf[this.pos++]!;
        hi |= (b & 127) << shift;
        if (b < 128) break;
      }
    }
    this.hi = hi >>> 0;
    return lo >>> 0;
  }

  /** A length and the end of what it covers. */
  length(end: number): number {
    const n = this.varint(end);
    if (this.hi !== 0) throw new RangeError(`Length too large at offset ${this.pos}`);
    this.need(n, end);
    return this.pos + n;
  }

  skip(wire: number, end: number, id: number): void {
    switch (wire) {
      case VARINT:
        this.varint(end);
        return;
      case FIXED64:
        this.need(8, end);
        this.pos += 8;
        return;
      case LENGTH:
        this.pos = this.length(end);
        return;
      case FIXED32:
        this.need(4, end);
        this.pos += 4;
        return;
      case START_GROUP:
        for (;;) {
          const tag = this.varint(end);
          if ((tag & 7) === END_GROUP) {
            if (tag >>> 3 !== id) throw new RangeError(`Unmatched group end at offset ${this.pos}`);
            return;
          }
          this.skip(tag & 7, end, tag >>> 3);
        }
      default:
        throw new RangeError(`Invalid wire type ${wire} at offset ${this.pos}`);
    }
  }
}

function readMessage(r: Reader, type: WireMessage, end: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const tag = r.varint(end);
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 0) throw new RangeError(`Invalid field number 0 at offset ${r.pos}`);
    const field = type.byId.get(id);
    if (!field) {
      r.skip(wire, end, id);
    } else if (field.entry) {
      if (wire !== LENGTH) {
        r.skip(wire, end, id);
        continue;
      }
      const [keyField, valueField] = field.entry;
      const stop = r.length(end);
      let key: unknown = keyField.kind === "string" ? "" : 0;
      let value: unknown = valueField.kind === "message" ? {} : undefined;
      while (r.pos < stop) {
        const t = r.varint(stop);
        const f = t >>> 3 === 1 ? keyField : t >>> 3 === 2 ? valueField : undefined;
        if (f && (t & 7) === f.wire) {
          if (f === keyField) key = readValue(r, f, stop);
          else value = readValue(r, f, stop);
        } else r.skip(t & 7, stop, t >>> 3);
      }
      r.pos = stop;
      const map = (out[field.name] ??= {}) as Record<string, unknown>;
      if (value !== undefined) map[String(key)] = value;
    } else if (field.repeated) {
      const list = (out[field.name] ??= []) as unknown[];
      if (wire === field.wire) {
        list.push(readValue(r, field, end));
      } else if (wire === LENGTH && field.wire !== LENGTH) {
        // Packed.
        const stop = r.length(end);
        while (r.pos < stop) list.push(readValue(r, field, stop));
      } else {
        r.skip(wire, end, id);
      }
    } else if (wire === field.wire) {
      out[field.name] = readValue(r, field, end);
    } else {
      r.skip(wire, end, id);
    }
  }
  if (r.pos !== end) throw new RangeError(`Message overruns its length at offset ${r.pos}`);
  return out;
}

function readValue(r: Reader, field: WireField, end: number): unknown {
  switch (field.kind) {
    case "message": {
      const stop = r.length(end);
      return readMessage(r, field.message!, stop);
    }
    case "string": {
      const stop = r.length(end);
      const s = utf8(r.buf, r.pos, stop);
      r.pos = stop;
      return s;
    }
    case "bytes": {
      const stop = r.length(end);
      const b = r.buf.slice(r.pos, stop);
      r.pos = stop;
      return b;
    }
    case "enum":
    case "int32":
      return r.varint(end) | 0;
    case "uint32":
      return r.varint(end);
    case "bool":
      return (r.varint(end) | r.hi) !== 0;
    case "int64": {
      const lo = r.varint(end);
      return (r.hi | 0) * TWO_32 + lo;
    }
    case "uint64": {
      const lo = r.varint(end);
      return r.hi * TWO_32 + lo;
    }
    case "sint32": {
      const n = r.varint(end);
      return (n >>> 1) ^ -(n & 1);
    }
    case "sint64": {
      const u = r.varint(end) + r.hi * TWO_32;
      return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
    }
    case "fixed32":
    case "sfixed32":
    case "float": {
      r.need(4, end);
      const at = r.pos;
      r.pos += 4;
      return field.kind === "float"
        ? r.view.getFloat32(at, true)
        : field.kind === "fixed32"
        ? r.view.getUint32(at, true)
        : r.view.getInt32(at, true);
    }
    case "double": {
      r.need(8, end);
      r.pos += 8;
      return r.view.getFloat64(r.pos - 8, true);
    }
    default: { // fixed64, sfixed64
      r.need(8, end);
      const lo = r.view.getUint32(r.pos, true);
      const hi = r.view.getUint32(r.pos + 4, true);
      r.pos += 8;
      return (field.kind === "sfixed64" ? hi | 0 : hi) * TWO_32 + lo;
    }
  }
}

/** UTF-8 text of `buf[start, end)`: short ASCII decoded here, the rest by TextDecoder. */
function utf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 64) {
    let s = "";
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 128) return textDecoder.decode(buf.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return textDecoder.decode(buf.subarray(start, end));
}

/**
 * Decodes protobuf bytes of `typeName` into plain objects (enums as numbers,
 * 64-bit integers as JS numbers); throws a `RangeError` on malformed bytes.
 */
export function decodeProtobuf(typeName: string, body: Uint8Array): Record<string, unknown> {
  const r = new Reader(body);
  return readMessage(r, typeOf(typeName), body.length);
}

registerProtobufWire({ encode: encodeProtobuf, decode: decodeProtobuf });
