/**
 * The local cluster's HTTP/1.1 server (`lib/mesos/local/http_server.ts`)
 * on raw connections: keep-alive and pipelined requests, chunked bodies,
 * `100 Continue`, closing rules, stream answers (one chunk per event, the
 * end, a client that leaves), the per-address connection limit and handler
 * failures. The limits (414, 431, 408) are in `mesos_local_http_test.ts`.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  type LocalRequest,
  type LocalResponse,
  serveLocal,
  type StreamSink,
} from "../lib/mesos/local/http_server.ts";
import { raw, statusAndBody } from "./_raw_http.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A stream body a test drives by hand. */
class TestStream {
  sink?: StreamSink;
  aborted = false;
  readonly attached = Promise.withResolvers<void>();
  readonly gone = Promise.withResolvers<void>();
  attach(sink: StreamSink): void {
    this.sink = sink;
    this.attached.resolve();
  }
  abort(): void {
    this.aborted = true;
    this.gone.resolve();
  }
}

function echo(request: LocalRequest): LocalResponse {
  if (request.path === "/fail") throw new Error("boom");
  return {
    status: 200,
    headers: { "Content-Type": "text/plain" },
    body: `${request.method} ${request.path}${request.search} ${request.body.length} ${
      dec.decode(request.body)
    } ${request.headers.get("X-Test") ?? "-"}`,
  };
}

/** Reads from `conn` until `done(text)` holds or the server closes; returns what came. */
async function readUntil(conn: Deno.Conn, done: (text: string) => boolean): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (!done(text)) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

/** The number of whole answers (head and Content-Length body) at the start of `text`. */
function answers(text: string): string[] {
  const out: string[] = [];
  let rest = text;
  for (;;) {
    const headEnd = rest.indexOf("\r\n\r\n");
    if (headEnd < 0) return out;
    const length = Number(/content-length: (\d+)/i.exec(rest.slice(0, headEnd))?.[1] ?? 0);
    if (rest.length < headEnd + 4 + length) return out;
    out.push(rest.slice(0, headEnd + 4 + length));
    rest = rest.slice(headEnd + 4 + length);
  }
}

Deno.test("the local HTTP server answers keep-alive, pipelined and chunked requests", async (t) => {
  const server = serveLocal({ hostname: "127.0.0.1", port: 0 }, echo);
  const port = server.addr.port;
  try {
    await t.step("two pipelined requests on one connection, answered in order", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(enc.encode(
          "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-Test: one\r\n\r\nabc" +
            "GET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        ));
        const got = answers(await readUntil(conn, (text) => answers(text).length >= 2));
        assertEquals(got.length, 2);
        assertEquals(statusAndBody(got[0]!).body, "POST /a?x=1 3 abc one");
        assertEquals(statusAndBody(got[1]!).body, "GET /b 0  -");
        // The connection stays open for a third.
        await conn.write(enc.encode("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"));
        const third = answers(await readUntil(conn, (text) => answers(text).length >= 1));
        assertEquals(statusAndBody(third[0]!).body, "GET /c 0  -");
      } finally {
        conn.close();
      }
    });
    await t.step("a chunked body is joined", async () => {
      const got = statusAndBody(
        await raw(
          port,
          "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
            "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
        ),
      );
      assertEquals(got.status, 200);
      assertEquals(got.body, "POST /c 5 abcde -");
    });
    await t.step("100 Continue before the body of a request that expects it", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(enc.encode(
          "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
        ));
        assertMatch(await readUntil(conn, (text) => text.includes("\r\n\r\n")), /^HTTP\/1\.1 100 /);
        await conn.write(enc.encode("ok"));
        const got = answers(await readUntil(conn, (text) => answers(text).length >= 1));
        assertEquals(statusAndBody(got[0]!).body, "POST /e 2 ok -");
      } finally {
        conn.close();
      }
    });
    await t.step("Connection: close and HTTP/1.0 close after the answer", async () => {
      for (
        const request of [
          "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
          "GET /x HTTP/1.0\r\n\r\n",
        ]
      ) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          await conn.write(enc.encode(request));
          // Read until the server closes: it must, or this never ends.
          const text = await readUntil(conn, () => false);
          assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
          assertMatch(text, /connection: close/i);
        } finally {
          conn.close();
        }
      }
    });
    await t.step("HEAD gets the head only", async () => {
      const text = await raw(port, "HEAD /h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
      assertMatch(text, /content-length: 12\r\n/);
      assert(text.endsWith("\r\n\r\n"), JSON.stringify(text));
    });
    await t.step("a malformed request line is 400 with one line", async () => {
      const got = statusAndBody(await raw(port, "NOT A REQUEST\r\nHost: h\r\n\r\n"));
      assertEquals(got.status, 400);
      assertEquals(got.body.trim().split("\n").length, 1);
    });
    await t.step("a handler that throws is answered 500, the server goes on", async () => {
      const failed = await fetch(`http://127.0.0.1:${port}/fail`);
      await failed.body?.cancel();
      assertEquals(failed.status, 500);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/f${i}`, { method: "POST", body: "z" });
        assertEquals(await res.text(), `POST /f${i} 1 z -`);
      }
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("the local HTTP server sends stream answers as one chunk per event", async (t) => {
  let current: TestStream | undefined;
  const server = serveLocal({ hostname: "127.0.0.1", port: 0, maxConnectionsPerClient: 3 }, () => {
    current = new TestStream();
    return { status: 200, headers: { "Content-Type": "application/json" }, stream: current };
  });
  const port = server.addr.port;
  try {
    await t.step("events become chunks; the end is the last chunk and a close", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(enc.encode("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
        const stream = await waitFor(() => current);
        await stream.attached.promise;
        stream.sink!.write(enc.encode("first"));
        stream.sink!.write(enc.encode("second!"));
        stream.sink!.end();
        const text = await readUntil(conn, () => false);
        assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
        assertMatch(text, /transfer-encoding: chunked\r\n/i);
        assert(
          text.endsWith("\r\n\r\n5\r\nfirst\r\n7\r\nsecond!\r\n0\r\n\r\n"),
          JSON.stringify(text),
        );
        assertEquals(stream.aborted, false);
      } finally {
        try {
          conn.close();
        } catch { /* closed by the server */ }
      }
    });
    await t.step("a destroyed stream closes the connection without the last chunk", async () => {
      current = undefined;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(enc.encode("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
        const stream = await waitFor(() => current);
        await stream.attached.promise;
        stream.sink!.write(enc.encode("last"));
        stream.sink!.destroy();
        const text = await readUntil(conn, () => false);
        assert(text.endsWith("\r\n\r\n4\r\nlast\r\n"), JSON.stringify(text));
        assertEquals(stream.aborted, false);
      } finally {
        try {
          conn.close();
        } catch { /* closed by the server */ }
      }
    });
    await t.step("a client that leaves aborts its stream", async () => {
      current = undefined;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
      const stream = await waitFor(() => current);
      await stream.attached.promise;
      conn.close();
      await stream.gone.promise;
      assert(stream.aborted);
    });
    await t.step("past the connections allowed per address: 429 with one line", async () => {
      const held = await Promise.all(
        [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      try {
        // Each held connection is counted once the server accepted it: use them.
        for (const conn of held) {
          current = undefined;
          await conn.write(enc.encode("POST /s HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
          await (await waitFor(() => current)).attached.promise;
        }
        const got = statusAndBody(await raw(port, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assertEquals(got.status, 429, got.body);
        assertMatch(got.body, /at most 3 at a time/);
      } finally {
        for (const conn of held) conn.close();
      }
    });
  } finally {
    await server.shutdown();
  }
});

async function waitFor<T>(get: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("Timed out waiting for the handler");
    await new Promise((r) => setTimeout(r, 5));
  }
}
