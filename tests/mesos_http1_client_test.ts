/**
 * The executor's HTTP/1.1 client against real TCP servers that answer with
 * hand-written bytes: framing (Content-Length, chunks cut anywhere, the end
 * of the connection), keep-alive reuse, a connection the server closed while
 * idle, `Connection: close`, timeouts and malformed answers.
 */
import { assert, assertEquals, assertRejects } from "./_assert.ts";
import { Http1Client, Http1Error, parseEndpoint } from "../lib/mesos/http1_client.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Served {
  endpoint: string;
  /** Connections accepted so far. */
  connections: () => number;
  /** Request heads seen so far. */
  requests: string[];
  close: () => Promise<void>;
}

/**
 * A server that reads each request (head and Content-Length body) and lets
 * `answer` write the bytes back, each write a separate TCP segment (so
 * framing is parsed across reads).
 */
function serve(
  answer: (request: string, index: number, conn: Deno.Conn) => Promise<"keep" | "close">,
): Served {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const open = new Set<Deno.Conn>();
  let connections = 0;
  const handle = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    try {
      for (;;) {
        let headEnd: number;
        while ((headEnd = dec.decode(buf).indexOf("\r\n\r\n")) === -1) {
          const n = await conn.read(chunk);
          if (n === null) return;
          buf = new Uint8Array([...buf, ...chunk.subarray(0, n)]);
        }
        const head = dec.decode(buf.subarray(0, headEnd));
        const length = Number(head.match(/content-length: (\d+)/i)?.[1] ?? 0);
        while (buf.length < headEnd + 4 + length) {
          const n = await conn.read(chunk);
          if (n === null) return;
          buf = new Uint8Array([...buf, ...chunk.subarray(0, n)]);
        }
        const body = dec.decode(buf.subarray(headEnd + 4, headEnd + 4 + length));
        buf = buf.slice(headEnd + 4 + length);
        requests.push(`${head}\r\n\r\n${body}`);
        if ((await answer(head, requests.length - 1, conn)) === "close") return;
      }
    } catch {
      // The client went away.
    } finally {
      open.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        open.add(conn);
        handle(conn);
      }
    } catch { /* closed */ }
  })();
  return {
    endpoint: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => connections,
    requests,
    close: async () => {
      listener.close();
      for (const conn of open) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await loop;
    },
  };
}

async function write(conn: Deno.Conn, ...pieces: string[]): Promise<void> {
  for (const piece of pieces) {
    await conn.write(enc.encode(piece));
    await new Promise((r) => setTimeout(r, 5));
  }
}

const post = (c: Http1Client, body = "{}", timeoutMs?: number) =>
  c.request(
    "POST",
    "/api/v1/executor",
    { "Content-Type": "application/json" },
    enc.encode(body),
    timeoutMs,
  );

Deno.test("parseEndpoint takes host:port and [v6]:port and names a bad one", () => {
  assertEquals(parseEndpoint("10.0.0.1:5051"), { hostname: "10.0.0.1", port: 5051 });
  assertEquals(parseEndpoint("agent.example:5051"), { hostname: "agent.example", port: 5051 });
  assertEquals(parseEndpoint("[::1]:5051"), { hostname: "::1", port: 5051 });
  for (const bad of ["", "host", "host:", "host:0", "host:70000", "::1:5051"]) {
    const error = (() => {
      try {
        parseEndpoint(bad);
      } catch (e) {
        return e as Error;
      }
    })();
    assertEquals(error?.message, `Invalid endpoint "${bad}": expected host:port`);
  }
});

Deno.test("Http1Client sends the request and reads Content-Length and chunked answers cut anywhere, on one kept-alive connection", async () => {
  const server = serve(async (_head, i, conn) => {
    if (i === 0) await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Len", "gth: 0\r\n\r", "\n");
    else if (i === 1) {
      await write(conn, "HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello", " world");
    } else {
      await write(
        conn,
        "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n",
        "6\r\nFail",
        "ed\r\n7;ext=1\r\n: bad x\r",
        "\n0\r\nTrailer: t\r\n\r\n",
      );
    }
    return "keep";
  });
  const client = new Http1Client(server.endpoint);
  try {
    const accepted = await post(client, '{"type":"UPDATE"}');
    assertEquals(accepted.status, 202);
    assertEquals(accepted.body.length, 0);
    assertEquals(
      server.requests[0],
      `POST /api/v1/executor HTTP/1.1\r\nHost: ${server.endpoint}\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"type":"UPDATE"}`,
    );
    const ok = await post(client);
    assertEquals([ok.status, dec.decode(ok.body)], [200, "hello world"]);
    const bad = await post(client);
    assertEquals([bad.status, dec.decode(bad.body)], [400, "Failed: bad x"]);
    assertEquals(bad.headers.get("transfer-encoding"), "chunked");
    assertEquals(server.connections(), 1, "one connection for the three calls");
    assertEquals(client.idleConnections, 1);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client replaces a kept-alive connection the server closed while it was idle", async () => {
  const server = serve(async (_head, _i, conn) => {
    await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    return "close"; // Closes without saying so: the client finds out on its next call.
  });
  const client = new Http1Client(server.endpoint);
  try {
    assertEquals((await post(client)).status, 202);
    await new Promise((r) => setTimeout(r, 50));
    assertEquals((await post(client)).status, 202);
    assertEquals(server.connections(), 2);
    assertEquals(server.requests.length, 2, "each call reached the server once");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client does not reuse a connection after Connection: close or a body ended by the close", async () => {
  const server = serve(async (_head, i, conn) => {
    if (i === 0) {
      await write(conn, "HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return "close";
    }
    await write(conn, "HTTP/1.1 200 OK\r\n\r\nuntil", " the end");
    return "close";
  });
  const client = new Http1Client(server.endpoint);
  try {
    assertEquals((await post(client)).status, 202);
    assertEquals(client.idleConnections, 0);
    const last = await post(client);
    assertEquals(dec.decode(last.body), "until the end");
    assertEquals(client.idleConnections, 0);
    assertEquals(server.connections(), 2);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client streams a chunked body as it arrives and ends it on close()", async () => {
  let release!: () => void;
  const more = new Promise<void>((r) => release = r);
  const server = serve(async (_head, _i, conn) => {
    await write(
      conn,
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    await write(conn, "3\r\n12\n\r\n", 'a\r\n{"type":1}\r\n');
    await more;
    await write(conn, "4\r\nrest\r\n");
    await new Promise(() => {}); // Never ends on its own.
    return "close";
  });
  const client = new Http1Client(server.endpoint);
  try {
    const stream = await client.stream("POST", "/api/v1/executor", {}, enc.encode("{}"));
    assertEquals(stream.status, 200);
    assertEquals(stream.headers.get("content-type"), "application/json");
    const seen: string[] = [];
    for await (const piece of stream.body) {
      seen.push(dec.decode(piece));
      if (seen.join("") === '12\n{"type":1}') release();
      if (seen.join("").endsWith("rest")) stream.close();
    }
    assertEquals(seen.join(""), '12\n{"type":1}rest');
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("Http1Client rejects a call with no answer in time, a malformed answer and a refused connection", async () => {
  const server = serve(async (head, _i, conn) => {
    if (head.includes("/silent")) return await new Promise<"keep">(() => {});
    if (head.includes("/garbage")) await write(conn, "SMTP ready\r\n\r\n");
    else if (head.includes("/badlength")) {
      await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n");
    } else if (head.includes("/badchunk")) {
      await write(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    } else await write(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    return "close";
  });
  const client = new Http1Client(server.endpoint);
  try {
    const call = (path: string, timeoutMs?: number) =>
      client.request("POST", path, {}, new Uint8Array(), timeoutMs);
    const timedOut = await assertRejects(() => call("/silent", 200));
    assert(timedOut instanceof Http1Error);
    assertEquals((timedOut as Error).message, "POST /silent timed out after 200 ms");
    assertEquals(
      ((await assertRejects(() => call("/garbage"))) as Error).message,
      'Bad status line "SMTP ready"',
    );
    assertEquals(
      ((await assertRejects(() => call("/badlength"))) as Error).message,
      'Bad Content-Length "ten"',
    );
    assertEquals(client.idleConnections, 0);
    assertEquals(
      ((await assertRejects(() => call("/badchunk"))) as Error).message,
      'Bad chunk size "zz"',
    );
    assertEquals(
      ((await assertRejects(() => call("/short"))) as Error).message,
      "Connection closed with 5 body bytes missing",
    );
  } finally {
    client.close();
    await server.close();
  }
  const gone = new Http1Client(server.endpoint);
  await assertRejects(() => post(gone));
  gone.close();
  assertEquals(((await assertRejects(() => post(gone))) as Error).message, "Client closed");
});

Deno.test("Http1Client with maxRequests queues a burst, in order, for its kept connections", async () => {
  let inFlight = 0;
  let most = 0;
  const server = serve(async (_head, _i, conn) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 20));
    inFlight--;
    await write(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
    return "keep";
  });
  const client = new Http1Client(server.endpoint, { maxIdle: 2, maxRequests: 2 });
  let closed = false;
  try {
    const calls = Array.from({ length: 10 }, (_, i) => post(client, `{"n":${i}}`));
    assertEquals(client.waitingRequests, 8);
    const answers = await Promise.all(calls);
    assertEquals(answers.map((a) => a.status), Array(10).fill(202));
    assertEquals(most, 2, "never more than two requests at the server at once");
    assertEquals(server.connections(), 2, "the burst reused two connections");
    assertEquals(client.waitingRequests, 0);
    // Taken in the order they were made (one place: one connection, one at a time).
    const one = new Http1Client(server.endpoint, { maxRequests: 1 });
    try {
      const before = server.requests.length;
      await Promise.all([10, 11, 12, 13, 14].map((n) => post(one, `{"n":${n}}`)));
      const order = server.requests.slice(before).map((r) => Number(r.match(/\{"n":(\d+)\}/)?.[1]));
      assertEquals(order, [10, 11, 12, 13, 14]);
    } finally {
      one.close();
    }
    // A failed request gives its place back.
    await server.close();
    closed = true;
    const failed = await Promise.allSettled([post(client), post(client), post(client)]);
    assertEquals(failed.map((f) => f.status), ["rejected", "rejected", "rejected"]);
    assertEquals(client.waitingRequests, 0);
    await assertRejects(() => post(client));
  } finally {
    client.close();
    if (!closed) await server.close();
  }
  const error = (() => {
    try {
      new Http1Client("127.0.0.1:1", { maxRequests: 0 });
    } catch (e) {
      return e as Error;
    }
  })();
  assertEquals(error?.message, 'Option "maxRequests" must be at least 1, but got 0');
});
