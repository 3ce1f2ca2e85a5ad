/**
 * The protobuf wire format of the Mesos codec, on protobufjs. Importing this
 * module installs it into `codec.ts` (which otherwise loads it on demand with
 * `loadProtobuf()`): the JSON encoding, which the executor uses, never pays
 * for protobufjs.
 *
 * @module
 */
import protobuf from "protobufjs";
import { registerProtobufWire } from "./codec.ts";
import { MESOS_DESCRIPTOR } from "./schema.ts";

const root = protobuf.Root.fromJSON(MESOS_DESCRIPTOR as protobuf.INamespace);
root.resolveAll();
const types = new Map<string, protobuf.Type>();

function typeOf(typeName: string): protobuf.Type {
  let type = types.get(typeName);
  if (!type) {
    type = root.lookupType(typeName);
    types.set(typeName, type);
  }
  return type;
}

registerProtobufWire({
  encode(typeName, message) {
    const type = typeOf(typeName);
    // A plain copy: never a pooled Buffer.
    return new Uint8Array(type.encode(type.fromObject(message)).finish());
  },
  decode(typeName, body) {
    const type = typeOf(typeName);
    return type.toObject(type.decode(body), { longs: Number, enums: String, defaults: false });
  },
});
