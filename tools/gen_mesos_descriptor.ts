/**
 * Writes `lib/mesos/proto/descriptor.json`: the Mesos `.proto` files of
 * `lib/mesos/proto/` as protobufjs's JSON descriptor. The codec reads the
 * descriptor instead of parsing `.proto` text at start-up (the JSON codec
 * needs no protobufjs at all). Run it after editing a `.proto` file;
 * `tests/mesos_codec_test.ts` fails while the two disagree.
 *
 *     deno run -A tools/gen_mesos_descriptor.ts
 *
 * @module
 */
import protobuf from "protobufjs";
import { EXECUTOR_PROTO, MESOS_PROTO, SCHEDULER_PROTO } from "../lib/mesos/proto/protos.ts";

/** The descriptor of the `.proto` files, as written to `descriptor.json`. */
export function mesosDescriptor(): string {
  const root = new protobuf.Root();
  for (const text of [MESOS_PROTO, SCHEDULER_PROTO, EXECUTOR_PROTO]) {
    protobuf.parse(text, root, { keepCase: true });
  }
  root.resolveAll();
  return JSON.stringify(root.toJSON()) + "\n";
}

/** Path of the generated file. */
export const DESCRIPTOR_PATH = new URL("../lib/mesos/proto/descriptor.json", import.meta.url);

if (import.meta.main) {
  await Deno.writeTextFile(DESCRIPTOR_PATH, mesosDescriptor());
  console.log(`Wrote ${DESCRIPTOR_PATH.pathname}`);
}
