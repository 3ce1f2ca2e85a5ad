import { deepStrictEqual, equal, rejects, throws } from "node:assert/strict";
import {
  encodeRecord,
  readRecords,
  RecordIODecoder,
  RecordIOError,
} from "../lib/mesos/recordio.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);
const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
};
const RECORDS = [
  utf8(`{"type":"SUBSCRIBED","note":"ünïcödé ✓ 🚀"}`),
  utf8("x"),
  new Uint8Array([0x0a, 0x0a, 0x00, 0xff, 0x31, 0x0a]),
  utf8("日本語のテキスト".repeat(40)),
];
const STREAM = concat(RECORDS.map(encodeRecord));

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

Deno.test("encodeRecord writes the byte length, a newline, then the bytes", () => {
  deepStrictEqual(encodeRecord(utf8("é")), utf8("2\né"));
  deepStrictEqual(encodeRecord(utf8("hello")), utf8("5\nhello"));
});

Deno.test("records are byte-exact for every split point of a multi-record buffer", () => {
  for (let i = 0; i <= STREAM.length; i++) {
    const decoder = new RecordIODecoder();
    const got = [...decoder.push(STREAM.subarray(0, i)), ...decoder.push(STREAM.subarray(i))];
    deepStrictEqual(got, RECORDS, `split at ${i}`);
    equal(decoder.idle, true);
  }
});

Deno.test("records are byte-exact for every pair of split points", () => {
  const small = concat(RECORDS.slice(0, 3).map(encodeRecord));
  for (let i = 0; i <= small.length; i++) {
    for (let j = i; j <= small.length; j++) {
      const decoder = new RecordIODecoder();
      const got = [
        ...decoder.push(small.subarray(0, i)),
        ...decoder.push(small.subarray(i, j)),
        ...decoder.push(small.subarray(j)),
      ];
      deepStrictEqual(got, RECORDS.slice(0, 3), `split at ${i}, ${j}`);
    }
  }
});

Deno.test("one byte at a time works", () => {
  const decoder = new RecordIODecoder();
  const got: Uint8Array[] = [];
  for (const byte of STREAM) got.push(...decoder.push(new Uint8Array([byte])));
  deepStrictEqual(got, RECORDS);
});

Deno.test("empty lines before a length are tolerated", () => {
  const decoder = new RecordIODecoder();
  deepStrictEqual(decoder.push(utf8("\n\n3\nabc\n2\nde")), [utf8("abc"), utf8("de")]);
});

Deno.test("a non-digit length is an error and the decoder stays failed", () => {
  const decoder = new RecordIODecoder();
  throws(() => decoder.push(utf8("12a\nxxx")), RecordIOError);
  throws(() => decoder.push(utf8("1\nx")), RecordIOError);
  throws(() => new RecordIODecoder().push(utf8("-1\n")), RecordIOError);
  throws(() => new RecordIODecoder().push(utf8('{"type":"HEARTBEAT"}')), RecordIOError);
});

Deno.test("an absurd length is an error", () => {
  throws(() => new RecordIODecoder().push(utf8("99999999999999999999\n")), /exceeds the limit/);
  throws(() => new RecordIODecoder({ maxRecordBytes: 10 }).push(utf8("11\n")), RecordIOError);
  throws(() => new RecordIODecoder().push(utf8("1".repeat(30))), RecordIOError);
});

Deno.test("readRecords yields records from a re-chunked stream", async () => {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < STREAM.length; i += 7) chunks.push(STREAM.slice(i, i + 7));
  const got: Uint8Array[] = [];
  for await (const record of readRecords(streamOf(chunks))) got.push(record);
  deepStrictEqual(got, RECORDS);
});

Deno.test("readRecords fails when the stream ends inside a record", async () => {
  await rejects(async () => {
    for await (const _ of readRecords(streamOf([utf8("5\nab")]))) { /* none */ }
  }, /ended inside a record/);
});

Deno.test("breaking out of readRecords cancels the stream", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(utf8("1\na1\nb"));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const record of readRecords(stream)) {
    deepStrictEqual(record, utf8("a"));
    break;
  }
  equal(cancelled, true);
});
