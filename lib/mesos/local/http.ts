/**
 * HTTP pieces shared by the local master and agents: the request checks
 * Mesos applies before decoding a Call (method, Content-Type, Accept) and
 * the RecordIO event stream of a SUBSCRIBE response.
 *
 * @module
 */

import { type ContentType, decode, encode, MesosDecodeError } from "../codec.ts";
// The local cluster speaks both encodings at any time: load protobuf with it.
import "../protobuf_codec.ts";
import { encodeRecord } from "../recordio.ts";
import type {
  LocalRequest,
  LocalResponse,
  LocalServeOptions,
  StreamBody,
  StreamSink,
} from "./http_server.ts";

/**
 * The limits the local master and agents serve with (through
 * {@linkcode serveLocal}): 414/431 for oversize heads, 408 for a request
 * not complete after 10 s, no idle limit (event streams stay silent between
 * heartbeats), a body limit big enough for an ACCEPT of many tasks, and a
 * connection limit per address high enough for every executor and scheduler
 * of one host.
 */
export const LOCAL_HTTP_LIMITS: Pick<
  LocalServeOptions,
  "limits" | "requestTimeoutMs" | "maxConnectionsPerClient"
> = {
  limits: { maxBodyBytes: 64 * 1024 * 1024 },
  requestTimeoutMs: 10_000,
  maxConnectionsPerClient: 1024,
};

/** A plain-text HTTP answer with `status`. */
export function textResponse(status: number, message = ""): LocalResponse {
  return {
    status,
    ...(message ? { headers: { "Content-Type": "text/plain; charset=utf-8" } } : {}),
    body: message,
  };
}

/** A decoded Call with the content type it came in, or the error answer to send. */
export type ParsedCall<T> = { call: T; contentType: ContentType } | { response: LocalResponse };

/**
 * Applies Mesos's checks in its order: POST only (405), Content-Type present
 * (400) and one of the two encodings (415), body decodes with every required
 * field (400).
 */
export function parseCall<T>(request: LocalRequest, typeName: string): ParsedCall<T> {
  if (request.method !== "POST") {
    return {
      response: {
        status: 405,
        headers: { Allow: "POST", "Content-Type": "text/plain; charset=utf-8" },
        body: `Expecting a 'POST' request, received '${request.method}'`,
      },
    };
  }
  const raw = request.headers.get("Content-Type");
  if (raw === null) {
    return { response: textResponse(400, "Expecting 'Content-Type' to be present") };
  }
  const contentType = raw.trim().toLowerCase();
  if (contentType !== "application/json" && contentType !== "application/x-protobuf") {
    return {
      response: textResponse(
        415,
        `Expecting 'Content-Type' of application/json or application/x-protobuf, but got "${raw}"`,
      ),
    };
  }
  try {
    return { call: decode<T>(typeName, request.body, contentType), contentType };
  } catch (error) {
    if (error instanceof MesosDecodeError) {
      return { response: textResponse(400, `Failed to parse body into Call: ${error.message}`) };
    }
    throw error;
  }
}

/**
 * The encoding of a SUBSCRIBE stream chosen from the Accept header: JSON if
 * acceptable, else protobuf if acceptable, else `undefined` (answer 406).
 * No Accept header means anything, so JSON.
 */
export function negotiateStream(accept: string | null): ContentType | undefined {
  if (accept === null || accept.trim() === "") return "application/json";
  const ranges = accept.split(",").map((part) => {
    const [type = "", ...params] = part.split(";").map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    return { type, q };
  });
  const acceptable = (mediaType: string) => {
    const [main] = mediaType.split("/");
    let best: number | undefined;
    let bestSpecificity = -1;
    for (const r of ranges) {
      const specificity = r.type === mediaType
        ? 2
        : r.type === `${main}/*`
        ? 1
        : r.type === "*/*"
        ? 0
        : -1;
      if (specificity > bestSpecificity) {
        bestSpecificity = specificity;
        best = r.q;
      }
    }
    return best !== undefined && best > 0;
  };
  if (acceptable("application/json")) return "application/json";
  if (acceptable("application/x-protobuf")) return "application/x-protobuf";
  return undefined;
}

/**
 * One RecordIO-framed event stream (the body of a SUBSCRIBE response), one
 * event per HTTP chunk as Mesos writes it: the server
 * ({@linkcode serveLocal}) writes every record as a chunk of its own. Events
 * sent before the server starts the answer wait in a queue. `onClose` runs
 * once when the client goes away or the stream is closed.
 */
export class EventStream implements StreamBody {
  #queue: Uint8Array[] = [];
  #sink?: StreamSink;
  #ending = false;
  #breaking = false;
  #closed = false;
  #onClose: () => void;
  /** When true, events are silently dropped (test hook for a stalled connection). */
  frozen = false;

  /** Creates a stream encoding events of `typeName` as `contentType`. */
  constructor(
    readonly typeName: string,
    readonly contentType: ContentType,
    onClose: () => void,
  ) {
    this.#onClose = onClose;
  }

  /** True once closed by either side. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Encodes and sends (or queues) one event; false when the stream is closed. */
  send(event: object): boolean {
    if (this.#closed) return false;
    if (this.frozen) return true;
    const record = encodeRecord(encode(this.typeName, event, this.contentType));
    if (this.#sink) this.#sink.write(record);
    else this.#queue.push(record);
    return true;
  }

  /** Ends the stream after the events sent so far (the client sees the response body end). */
  close(): void {
    if (this.#closed) return;
    this.#ending = true;
    this.#sink?.end();
    this.#finish();
  }

  /**
   * Breaks the stream after the events sent so far: the connection closes
   * without the end of the response body, as when a Mesos master or agent
   * process dies (restarts, failovers, lost hosts).
   */
  break(): void {
    if (this.#closed) return;
    this.#ending = true;
    this.#breaking = true;
    this.#sink?.destroy();
    this.#finish();
  }

  /** @inheritdoc */
  attach(sink: StreamSink): void {
    this.#sink = sink;
    for (const record of this.#queue) sink.write(record);
    this.#queue = [];
    if (this.#breaking) sink.destroy();
    else if (this.#ending) sink.end();
  }

  /** @inheritdoc */
  abort(): void {
    this.#ending = true;
    this.#queue = [];
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
  }
}
