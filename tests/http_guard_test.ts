/**
 * The guarded HTTP front: the request scanner's limits as a table, then a
 * real server on loopback answering 414, 431, 413, 408 and 429 with one line
 * while whole requests (pipelined, chunked) reach the handler unchanged.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { DEFAULT_LIMITS, scanRequest } from "../lib/http/request_head.ts";
import { serveGuarded } from "../lib/http/guarded_server.ts";
import { makeTestCert } from "./_tls.ts";
import { raw, statusAndBody } from "./_raw_http.ts";

const enc = new TextEncoder();

Deno.test("scanRequest finds whole requests and refuses oversize or bad ones", async (t) => {
  const limits = { maxRequestLineBytes: 64, maxHeaderBytes: 128, maxBodyBytes: 10 };
  const cases: [string, string, string | number][] = [
    ["a GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "request"],
    ["no header at all", "GET / HTTP/1.1\r\n\r\n", "request"],
    ["head not finished", "GET / HTTP/1.1\r\nHost: x\r\n", "more"],
    ["request line not finished", "GET /abc", "more"],
    ["body not all there", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", "more"],
    ["body all there", "POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\nabcde", "request"],
    [
      "chunked, done",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
      "request",
    ],
    [
      "chunked, not done",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      "more",
    ],
    ["leading blank lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", "request"],
    ["URL too long", `GET /${"a".repeat(70)} HTTP/1.1\r\n\r\n`, 414],
    ["URL too long, no CRLF yet", `GET /${"a".repeat(70)}`, 414],
    ["headers too long", `GET / HTTP/1.1\r\nX: ${"a".repeat(130)}\r\n\r\n`, 431],
    ["headers too long, unfinished", `GET / HTTP/1.1\r\nX: ${"a".repeat(130)}`, 431],
    ["body too large", "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 413],
    ["chunked body too large", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n", 413],
    ["bad Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400],
    [
      "two Content-Lengths",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      400,
    ],
    [
      "both framings",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
    ],
    ["gzip transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 411],
    ["bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
    ["header with no name", "GET / HTTP/1.1\r\n: x\r\n\r\n", 400],
  ];
  for (const [label, text, want] of cases) {
    await t.step(label, () => {
      const bytes = enc.encode(text);
      const got = scanRequest(bytes, bytes.length, limits);
      if (typeof want === "number") {
        assert(got.kind === "error", `${label}: ${got.kind}`);
        assertEquals<number>(got.status, want);
        assert(!got.message.includes("\n"), "one line");
      } else {
        assertEquals(got.kind, want);
        if (got.kind === "request") assertEquals(got.end, bytes.length);
      }
    });
  }
  await t.step("the defaults are 8 KiB, 16 KiB and 1 MiB", () => {
    assertEquals(DEFAULT_LIMITS, {
      maxRequestLineBytes: 8192,
      maxHeaderBytes: 16384,
      maxBodyBytes: 1048576,
    });
  });
});

/** Sends raw bytes on a new connection; returns everything read until the server closes or `waitMs`. */
Deno.test("a guarded server answers too big or too slow requests with one line and serves the rest", async (t) => {
  const seen: { method: string; url: string; body: string; client: string }[] = [];
  const server = await serveGuarded(
    { port: 0, requestTimeoutMs: 1000, maxConnectionsPerClient: 3 },
    async (req, info) => {
      const body = await req.text();
      const url = new URL(req.url);
      seen.push({
        method: req.method,
        url: `${info.scheme}://${req.headers.get("host")}${url.pathname}`,
        body,
        client: info.remoteAddr.hostname,
      });
      return new Response(`got ${req.method} ${new URL(req.url).pathname} ${body}\n`);
    },
  );
  const port = server.addr.port;
  try {
    const refusals: [string, string, number, RegExp][] = [
      ["414", `GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 414, /longer than 8192/],
      ["431", `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(17000)}\r\n\r\n`, 431, /16384/],
      ["413", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, /1048576/],
      ["408 head", "GET / HTTP/1.1\r\nHost: x\r\n", 408, /within 1 s/],
      [
        "408 body",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        408,
        /within 1 s/,
      ],
    ];
    for (const [label, text, status, pattern] of refusals) {
      await t.step(label, async () => {
        const got = statusAndBody(await raw(port, text));
        assertEquals(got.status, status, got.body);
        assertMatch(got.body, pattern);
        assertEquals(got.body.trim().split("\n").length, 1, "one line");
      });
    }
    await t.step("pipelined and chunked requests reach the handler whole", async () => {
      const text = await raw(
        port,
        "GET /one HTTP/1.1\r\nHost: h:1\r\nX-Mrr-Front-Client: 6.6.6.6:6\r\n\r\n" +
          "POST /two HTTP/1.1\r\nHost: h:1\r\nContent-Length: 3\r\n\r\nabc" +
          "POST /three HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n" +
          "GET /last HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n",
      );
      assertMatch(
        text,
        /got GET \/one \n[^]*got POST \/two abc\n[^]*got POST \/three xy\n[^]*got GET \/last/,
      );
      const urls = seen.map((s) => s.url);
      for (const path of ["/one", "/two", "/three", "/last"]) {
        assert(urls.includes(`http://h:1${path}`), `${path} in ${urls}`);
      }
      assert(seen.every((s) => s.client === "127.0.0.1"), "a client cannot claim another address");
    });
    await t.step("fetch works as with Deno.serve", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/f`, { method: "PUT", body: "hello" });
      assertEquals(await res.text(), "got PUT /f hello\n");
    });
    await t.step("more connections from one address than allowed get 429", async () => {
      const held = await Promise.all(
        [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port })),
      );
      try {
        // Let the server count them.
        for (const c of held) await c.write(enc.encode("G"));
        const got = statusAndBody(await raw(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assertEquals(got.status, 429, got.body);
        assertMatch(got.body, /^Too many connections from 127\.0\.0\.1: at most 3 at a time\n$/);
      } finally {
        for (const c of held) c.close();
      }
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("a guarded server serves HTTPS with a certificate made by openssl", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mrr-tls-" });
  try {
    const { cert, key } = await makeTestCert(dir);
    const server = await serveGuarded(
      { port: 0, cert, key },
      (req, info) =>
        new Response(`${info.scheme}://${req.headers.get("host")}${new URL(req.url).pathname}\n`),
    );
    const client = Deno.createHttpClient({ caCerts: [cert] });
    try {
      const res = await fetch(`https://localhost:${server.addr.port}/x`, { client });
      assertEquals(await res.text(), `https://localhost:${server.addr.port}/x\n`);
      // A plain-HTTP client gets nothing useful and the server carries on.
      await raw(server.addr.port, "GET / HTTP/1.1\r\n\r\n", 2000);
      const again = await fetch(`https://127.0.0.1:${server.addr.port}/y`, { client });
      assertEquals(again.status, 200);
      await again.body?.cancel();
    } finally {
      client.close();
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
