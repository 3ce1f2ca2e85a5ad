/**
 * RecordIO framing of the Mesos v1 event streams: each record is its byte
 * length in ASCII decimal, a `\n`, then exactly that many bytes.
 *
 * @module
 */

/** Thrown for a malformed RecordIO stream (bad length line, stream ended inside a record). */
export class RecordIOError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RecordIOError";
  }
}

/** Default upper bound of one record: anything larger is taken as a corrupt stream. */
export const DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024;

const NEWLINE = 0x0a;
/** Longest accepted length line (a uint64 has at most 20 digits). */
const MAX_LENGTH_DIGITS = 20;

/** Frames `bytes` as one RecordIO record. */
export function encodeRecord(bytes: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(`${bytes.length}\n`);
  const out = new Uint8Array(header.length + bytes.length);
  out.set(header, 0);
  out.set(bytes, header.length);
  return out;
}

/** Options of {@link RecordIODecoder}. */
export interface RecordIODecoderOptions {
  /** Largest record accepted, in bytes (default {@link DEFAULT_MAX_RECORD_BYTES}). */
  maxRecordBytes?: number;
}

/**
 * Incremental RecordIO parser: push chunks as they arrive (cut anywhere),
 * get back the records completed so far. Empty lines before a length are
 * skipped. After an error the decoder stays failed.
 */
export class RecordIODecoder {
  #buf = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  /** Length of the record being read, or -1 while reading a length line. */
  #need = -1;
  #failed: RecordIOError | undefined;
  readonly #max: number;

  /** Creates a decoder. */
  constructor(options: RecordIODecoderOptions = {}) {
    const max = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    if (!Number.isSafeInteger(max) || max < 1) {
      throw new RangeError(`Option "maxRecordBytes" must be a positive integer, but got ${max}`);
    }
    this.#max = max;
  }

  /** Bytes received but not yet returned as a record. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** True when no partial record (or length line) is pending. */
  get idle(): boolean {
    return this.#need === -1 && this.#end === this.#start;
  }

  /** Adds a chunk and returns every record it completed, in order (copies). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw this.#failed;
    this.#append(chunk);
    const records: Uint8Array[] = [];
    for (;;) {
      if (this.#need === -1) {
        const nl = this.#buf.subarray(this.#start, this.#end).indexOf(NEWLINE);
        if (nl === -1) {
          // Fail early on garbage instead of waiting for a newline that may never come.
          const pending = this.#buf.subarray(this.#start, this.#end);
          if (pending.length > MAX_LENGTH_DIGITS || pending.some((b) => b < 0x30 || b > 0x39)) {
            this.#parseLength(pending);
          }
          return records;
        }
        const line = this.#buf.subarray(this.#start, this.#start + nl);
        this.#start += nl + 1;
        if (line.length === 0) continue; // tolerated empty line before a length
        this.#need = this.#parseLength(line);
      }
      if (this.#end - this.#start < this.#need) return records;
      records.push(this.#buf.slice(this.#start, this.#start + this.#need));
      this.#start += this.#need;
      this.#need = -1;
    }
  }

  #parseLength(line: Uint8Array): number {
    const text = String.fromCharCode(...line);
    if (line.length > MAX_LENGTH_DIGITS || !/^[0-9]+$/.test(text)) {
      this.#fail(`Invalid RecordIO length "${text.slice(0, 40)}": expected decimal digits`);
    }
    const length = Number(text);
    if (length > this.#max) {
      this.#fail(`RecordIO record of ${text} bytes exceeds the limit of ${this.#max} bytes`);
    }
    return length;
  }

  #fail(message: string): never {
    this.#failed = new RecordIOError(message);
    throw this.#failed;
  }

  #append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const needed = live + chunk.length;
      if (needed <= this.#buf.length && this.#start > 0) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        let size = this.#buf.length;
        while (size < needed) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end), 0);
        this.#buf = next;
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}

/**
 * Reads a RecordIO stream incrementally and yields each record as soon as
 * its last byte arrives. Throws {@link RecordIOError} for a malformed stream
 * or one that ends inside a record. Breaking out of the loop cancels the
 * stream.
 */
export async function* readRecords(
  stream: ReadableStream<Uint8Array>,
  options: RecordIODecoderOptions = {},
): AsyncGenerator<Uint8Array> {
  const decoder = new RecordIODecoder(options);
  const reader = stream.getReader();
  let done = false;
  try {
    for (;;) {
      const result = await reader.read();
      if (result.done) break;
      for (const record of decoder.push(result.value)) yield record;
    }
    done = true;
    if (!decoder.idle) {
      throw new RecordIOError(
        `RecordIO stream ended inside a record (${decoder.buffered} bytes pending)`,
      );
    }
  } finally {
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
