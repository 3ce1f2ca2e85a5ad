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
import type { GuardedServeOptions } from "../../http/guarded_server.ts";

/** A plain-text HTTP answer with `status`. */
/**
 * The limits the local master and agents serve with (through
 * {@linkcode serveGuarded}): 414/431 for oversize heads, 408 for a request
 * not complete after 10 s, no idle limit (event streams stay silent between
 * heartbeats), a body limit big enough for an ACCEPT of many tasks, and a
 * connection limit per address high enough for every executor and scheduler
 * of one host.
 */
export const LOCAL_HTTP_LIMITS: Pick<
  GuardedServeOptions,
  "limits" | "requestTimeoutMs" | "idleTimeoutMs" | "maxConnectionsPerClient"
> = {
  limits: { maxBodyBytes: 64 * 1024 * 1024 },
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 0,
  maxConnectionsPerClient: 1024,
};

export function textResponse(status: number, message = ""): Response {
  return new Response(message, {
    status,
    headers: message ? { "Content-Type": "text/plain; charset=utf-8" } : {},
  });
}

/** A decoded Call with the content type it came in, or the error Response to send. */
export type ParsedCall<T> = { call: T; contentType: ContentType } | { response: Response };

/**
 * Applies Mesos's checks in its order: POST only (405), Content-Type present
 * (400) and one of the two encodings (415), body decodes with every required
 * field (400).
 */
export async function parseCall<T>(request: Request, typeName: string): Promise<ParsedCall<T>> {
  if (request.method !== "POST") {
    return {
      response: new Response(`Expecting a 'POST' request, received '${request.method}'`, {
        status: 405,
        headers: { Allow: "POST" },
      }),
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
  const body = new Uint8Array(await request.arrayBuffer());
  try {
    return { call: decode<T>(typeName, body, contentType), contentType };
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
 * event per HTTP chunk as Mesos writes it: events wait in a queue of their
 * own and the body hands out one record per pull, so the HTTP server never
 * finds two records queued to merge into one chunk. `onClose` runs once when
 * the client goes away or the stream is closed.
 */
export class EventStream {
  readonly body: ReadableStream<Uint8Array>;
  #queue: Uint8Array[] = [];
  #waiting?: () => void;
  #ending = false;
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
    this.body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        while (this.#queue.length === 0 && !this.#ending) {
          await new Promise<void>((resolve) => this.#waiting = resolve);
        }
        const record = this.#queue.shift();
        if (record) {
          controller.enqueue(record);
          // Let the HTTP server write this record before the next one is
          // handed over: it merges records that are waiting together.
          await new Promise((resolve) => setTimeout(resolve, 0));
        } else {
          try {
            controller.close();
          } catch {
            // cancelled meanwhile
          }
        }
      },
      cancel: () => {
        this.#ending = true;
        this.#finish();
      },
    }, { highWaterMark: 0 });
  }

  /** True once closed by either side. */
  get closed(): boolean {
    return this.#closed;
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Encodes and queues one event; false when the stream is closed. */
  send(event: object): boolean {
    if (this.#closed) return false;
    if (this.frozen) return true;
    this.#queue.push(encodeRecord(encode(this.typeName, event, this.contentType)));
    this.#wake();
    return true;
  }

  /** Ends the stream after the queued events (the client sees the response body end). */
  close(): void {
    if (this.#closed) return;
    this.#ending = true;
    this.#wake();
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
  }
}
