/**
 * Reading an HTTP/1.1 request off the wire, byte by byte as it arrives, with
 * limits: where the head ends, how the body is framed and where the whole
 * request ends. Pure functions over a buffer, so the limits have table tests.
 *
 * @module
 */

/** Limits on one request. */
export interface RequestLimits {
  /** Longest request line (method, target, version), bytes. Longer: 414. */
  maxRequestLineBytes: number;
  /** Most bytes of header lines after the request line. More: 431. */
  maxHeaderBytes: number;
  /** Largest body, bytes. Larger: 413. */
  maxBodyBytes: number;
}

/** The limits of the REST API, the artifact server and the local cluster. */
export const DEFAULT_LIMITS: RequestLimits = {
  maxRequestLineBytes: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 1024 * 1024,
};

/** A request that must be refused: the status and a one-line reason. */
export interface HeadError {
  kind: "error";
  status: 400 | 411 | 413 | 414 | 431;
  message: string;
}

/** What {@linkcode scanRequest} found in the buffer. */
export type ScanResult =
  /** The request is not complete yet. */
  | { kind: "more" }
  | HeadError
  /** One whole request: `end` bytes; the request line ends at `lineEnd` (before its CRLF). */
  | { kind: "request"; end: number; lineEnd: number };

const CR = 13;
const LF = 10;

function indexOfCrlf(buf: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 1 < to; i++) {
    if (buf[i] === CR && buf[i + 1] === LF) return i;
  }
  return -1;
}

function indexOfHeadEnd(buf: Uint8Array, from: number, to: number): number {
  for (let i = Math.max(0, from); i + 3 < to; i++) {
    if (buf[i] === CR && buf[i + 1] === LF && buf[i + 2] === CR && buf[i + 3] === LF) return i;
  }
  return -1;
}

const latin1 = new TextDecoder("latin1");

/**
 * Looks for one whole request at the start of `buf` (`len` bytes used). A
 * request ends after its head when it has no body, after `Content-Length`
 * bytes, or after the last chunk and trailers of a chunked body.
 */
export function scanRequest(buf: Uint8Array, len: number, limits: RequestLimits): ScanResult {
  // Blank lines before a request are allowed (RFC 9112 2.2); they are left to the server.
  const lineEnd = indexOfCrlf(buf, 0, Math.min(len, limits.maxRequestLineBytes + 2));
  if (lineEnd < 0) {
    if (len > limits.maxRequestLineBytes) {
      return {
        kind: "error",
        status: 414,
        message: `The request line is longer than ${limits.maxRequestLineBytes} bytes`,
      };
    }
    return { kind: "more" };
  }
  if (lineEnd === 0) {
    // Skip leading CRLFs.
    let start = 0;
    while (start + 1 < len && buf[start] === CR && buf[start + 1] === LF) start += 2;
    if (start >= len - 1) return { kind: "more" };
    const rest = scanRequest(buf.subarray(start), len - start, limits);
    if (rest.kind !== "request") return rest;
    return { kind: "request", end: rest.end + start, lineEnd: rest.lineEnd + start };
  }
  const limitEnd = Math.min(len, lineEnd + limits.maxHeaderBytes + 4);
  const headEnd = indexOfHeadEnd(buf, lineEnd, limitEnd);
  if (headEnd < 0) {
    if (len - lineEnd - 2 > limits.maxHeaderBytes) {
      return {
        kind: "error",
        status: 431,
        message: `The request headers are longer than ${limits.maxHeaderBytes} bytes`,
      };
    }
    return { kind: "more" };
  }
  const bodyStart = headEnd + 4;
  const framing = bodyFraming(latin1.decode(buf.subarray(lineEnd + 2, headEnd + 2)), limits);
  if (framing.kind === "error") return framing;
  if (framing.kind === "length") {
    const end = bodyStart + framing.length;
    return len >= end ? { kind: "request", end, lineEnd } : { kind: "more" };
  }
  if (framing.kind === "none") return { kind: "request", end: bodyStart, lineEnd };
  const chunked = scanChunked(buf, bodyStart, len, limits);
  if (chunked.kind === "done") return { kind: "request", end: chunked.end, lineEnd };
  return chunked;
}

type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | HeadError;

/** The body framing from the header lines (each ending with CRLF). */
export function bodyFraming(headerText: string, limits: RequestLimits): Framing {
  let length: number | undefined;
  let chunked = false;
  for (const line of headerText.split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      return { kind: "error", status: 400, message: "A request header line has no name" };
    }
    const name = line.slice(0, colon).toLowerCase();
    if (name !== "content-length" && name !== "transfer-encoding") continue;
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === "transfer-encoding") {
      if (value !== "chunked") {
        return {
          kind: "error",
          status: 411,
          message: `Transfer-Encoding ${
            JSON.stringify(value.slice(0, 40))
          } is not supported; send a Content-Length`,
        };
      }
      chunked = true;
      continue;
    }
    if (!/^\d{1,15}$/.test(value) || (length !== undefined && length !== Number(value))) {
      return { kind: "error", status: 400, message: "The Content-Length header is not valid" };
    }
    length = Number(value);
  }
  if (chunked && length !== undefined) {
    return {
      kind: "error",
      status: 400,
      message: "A request may not have both Content-Length and Transfer-Encoding",
    };
  }
  if (length !== undefined && length > limits.maxBodyBytes) {
    return {
      kind: "error",
      status: 413,
      message: `The request body must be at most ${limits.maxBodyBytes} bytes`,
    };
  }
  if (chunked) return { kind: "chunked" };
  return length ? { kind: "length", length } : { kind: "none" };
}

/** Walks a chunked body from `start`; `done` with its end once the last chunk and trailers are in. */
export function scanChunked(
  buf: Uint8Array,
  start: number,
  len: number,
  limits: RequestLimits,
): { kind: "done"; end: number } | { kind: "more" } | HeadError {
  let at = start;
  let total = 0;
  for (;;) {
    const lineEnd = indexOfCrlf(buf, at, Math.min(len, at + 1026));
    if (lineEnd < 0) {
      return len - at > 1024
        ? { kind: "error", status: 400, message: "A chunk size line is too long" }
        : { kind: "more" };
    }
    const sizeText = latin1.decode(buf.subarray(at, lineEnd)).split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) {
      return { kind: "error", status: 400, message: "A chunk size is not valid" };
    }
    const size = parseInt(sizeText, 16);
    total += size;
    if (total > limits.maxBodyBytes) {
      return {
        kind: "error",
        status: 413,
        message: `The request body must be at most ${limits.maxBodyBytes} bytes`,
      };
    }
    if (size === 0) {
      // Trailers: lines until an empty one.
      let t = lineEnd + 2;
      for (;;) {
        const e = indexOfCrlf(buf, t, Math.min(len, t + limits.maxHeaderBytes));
        if (e < 0) {
          return len - t > limits.maxHeaderBytes
            ? {
              kind: "error",
              status: 431,
              message: `The request trailers are longer than ${limits.maxHeaderBytes} bytes`,
            }
            : { kind: "more" };
        }
        if (e === t) return { kind: "done", end: e + 2 };
        t = e + 2;
      }
    }
    const dataEnd = lineEnd + 2 + size;
    if (len < dataEnd + 2) return { kind: "more" };
    if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
      return { kind: "error", status: 400, message: "A chunk does not end with CRLF" };
    }
    at = dataEnd + 2;
  }
}
