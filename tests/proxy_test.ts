import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  KIND_AUTH,
  KIND_PIN,
  KIND_QUIT,
  KIND_RAW,
  KIND_SHARED,
  ProxyGroup,
  RedisProxy,
  ReplyScanner,
  RequestScanner,
} from "../lib/proxy/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A redis-server started for one test. */
interface Server {
  port: number;
  kill(): Promise<void>;
}

async function startRedis(extra: string[] = []): Promise<Server> {
  const dir = await tempDir("proxy");
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
      .concat(["--dir", dir], extra),
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor(`redis-server on ${port}`, async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  }, { intervalMs: 20 });
  let killed = false;
  return {
    port,
    async kill() {
      if (killed) return;
      killed = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function client(port: number, password?: string): Redis {
  const r = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    ...(password ? { password } : {}),
  });
  r.on("error", () => {});
  return r;
}

/** A raw connection: send bytes, read until `count` complete replies arrived. */
class Raw {
  readonly #conn: Deno.Conn;
  readonly #scanner = new ReplyScanner();
  #buf = "";
  #pending = 0;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  static async open(port: number): Promise<Raw> {
    return new Raw(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? enc.encode(text) : text;
    let done = 0;
    while (done < bytes.length) done += await this.#conn.write(bytes.subarray(done));
  }
  /** Reads until `count` replies are complete; returns their text. */
  async replies(count: number): Promise<string> {
    const buf = new Uint8Array(65536);
    const ends: number[] = [];
    while (this.#pending < count) {
      const n = await this.#conn.read(buf);
      if (n === null) break;
      this.#pending += this.#scanner.scan(buf, 0, n, ends);
      this.#buf += dec.decode(buf.subarray(0, n));
    }
    const out = this.#buf;
    this.#buf = "";
    this.#pending -= count;
    return out;
  }
  /** Reads everything until the peer closes. */
  async rest(): Promise<string> {
    const buf = new Uint8Array(65536);
    let out = this.#buf;
    this.#buf = "";
    while (true) {
      const n = await this.#conn.read(buf).catch(() => null);
      if (n === null) return out;
      out += dec.decode(buf.subarray(0, n));
    }
  }
  close(): void {
    try {
      this.#conn.close();
    } catch {
      // closed
    }
  }
}

async function withProxy(
  options: { password?: string; waitMs?: number; roleCheckMs?: number },
  servers: Server[],
  fn: (proxy: RedisProxy) => Promise<void>,
): Promise<void> {
  const proxy = new RedisProxy({ hostname: "127.0.0.1", name: "t1", ...options });
  try {
    await fn(proxy);
  } finally {
    await proxy.close();
    for (const s of servers) await s.kill();
  }
}

function feedInChunks(
  scan: (buf: Uint8Array, start: number, end: number) => number,
  bytes: Uint8Array,
  size: number,
): number {
  let count = 0;
  for (let i = 0; i < bytes.length; i += size) {
    const part = bytes.slice(i, Math.min(bytes.length, i + size));
    count += scan(part, 0, part.length);
  }
  return count;
}

Deno.test("reply scanner counts RESP2 and RESP3 replies cut at any byte", () => {
  const replies = [
    "+OK\r\n",
    "-ERR bad\r\n",
    ":42\r\n",
    "$5\r\nhello\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "*0\r\n",
    "*3\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$0\r\n\r\n+x\r\n",
    "$12\r\nab\r\ncd\r\nef\r\n\r\n",
    "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n_\r\n",
    "|1\r\n+key\r\n+val\r\n:7\r\n",
    ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
    "=9\r\ntxt:hello\r\n",
    ",3.14\r\n",
    "#t\r\n",
  ];
  const all = enc.encode(replies.join(""));
  for (const size of [1, 2, 3, 5, 7, all.length]) {
    const scanner = new ReplyScanner();
    const ends: number[] = [];
    const count = feedInChunks((b, s, e) => scanner.scan(b, s, e, ends), all, size);
    assert.equal(count, replies.length, `chunks of ${size}`);
  }
  const scanner = new ReplyScanner();
  const ends: number[] = [];
  const whole = enc.encode(replies.slice(0, 4).join(""));
  assert.equal(scanner.scan(whole, 0, whole.length, ends), 4);
  assert.deepEqual(ends.slice(0, 4), [5, 15, 20, 31]);
});

Deno.test("request scanner finds command ends and kinds, whatever the chunking", () => {
  const commands: [string[], number][] = [
    [["SET", "k", "v"], KIND_SHARED],
    [["get", "k"], KIND_SHARED],
    [["MULTI"], KIND_PIN],
    [["blpop", "q", "0"], KIND_PIN],
    [["Subscribe", "c"], KIND_PIN],
    [["SELECT", "2"], KIND_PIN],
    [["client", "setname", "x"], KIND_PIN],
    [["CLIENT", "SETINFO", "lib-name", "x"], KIND_SHARED],
    [["CLIENT"], KIND_PIN],
    [["AUTH", "pw"], KIND_AUTH],
    [["QUIT"], KIND_QUIT],
    [["SET", "big", "x".repeat(3000)], KIND_SHARED],
    [["PING"], KIND_SHARED],
  ];
  const text = commands.map(([args]) =>
    `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")
  ).join("");
  const all = enc.encode(text);
  for (const size of [1, 3, 64, all.length]) {
    const scanner = new RequestScanner(true);
    const ends: number[] = [];
    const kinds: number[] = [];
    const seen: number[] = [];
    feedInChunks(
      (b, s, e) => {
        const k = scanner.scan(b, s, e, ends, kinds);
        seen.push(...kinds.slice(0, k));
        return k;
      },
      all,
      size,
    );
    assert.deepEqual(seen, commands.map(([, kind]) => kind), `chunks of ${size}`);
  }
  const pinAuth = new RequestScanner(false);
  const auth = enc.encode("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
  const ends: number[] = [];
  const kinds: number[] = [];
  assert.equal(pinAuth.scan(auth, 0, auth.length, ends, kinds), 1);
  assert.equal(kinds[0], KIND_PIN);
  for (const bad of ["PING\r\n", "*x\r\n", "*1\r\n+oops\r\n", "*0\r\n"]) {
    const s = new RequestScanner();
    const b = enc.encode(bad);
    assert.equal(s.scan(b, 0, b.length, ends, kinds), 1, bad);
    assert.equal(kinds[0], KIND_RAW, bad);
  }
});

Deno.test("proxy serves ordinary and stateful commands with direct-connection semantics", async () => {
  const server = await startRedis();
  await withProxy({}, [server], async (proxy) => {
    proxy.setMaster({ host: "127.0.0.1", port: server.port, epoch: 1 });
    const port = proxy.addr.port;
    const a = client(port);
    const b = client(port);
    const sub = client(port);
    try {
      await a.connect();
      await b.connect();
      await sub.connect();

      await t("pipelines from several clients", async () => {
        const pa = a.pipeline();
        const pb = b.pipeline();
        for (let i = 0; i < 200; i++) {
          pa.set(`a${i}`, `va${i}`);
          pb.set(`b${i}`, `vb${i}`);
          pa.get(`a${i}`);
          pb.get(`b${i}`);
        }
        const [ra, rb] = await Promise.all([pa.exec(), pb.exec()]);
        for (let i = 0; i < 200; i++) {
          assert.equal(ra![i * 2 + 1]![1], `va${i}`);
          assert.equal(rb![i * 2 + 1]![1], `vb${i}`);
        }
        const big = "z".repeat(300_000);
        await a.set("big", big);
        assert.equal(await b.get("big"), big);
        assert.deepEqual(await a.lrange("nolist", 0, -1), []);
        assert.equal(await a.get("missing"), null);
        await assert.rejects(a.incr("big"), /not an integer/);
      });

      await t("MULTI/EXEC and WATCH", async () => {
        const res = await a.multi().set("m", "1").incr("m").exec();
        assert.deepEqual(res, [[null, "OK"], [null, 2]]);
        await a.watch("w");
        await b.set("w", "changed");
        const aborted = await a.multi().set("w", "mine").exec();
        assert.equal(aborted, null);
        assert.equal(await b.get("w"), "changed");
        assert.equal(proxy.stats().pinned, 1);
      });

      await t("BLPOP waits without holding other clients", async () => {
        const waiting = b.blpop("queue", 10);
        await new Promise((r) => setTimeout(r, 100));
        assert.equal(await sub.set("other", "x"), "OK");
        await sub.rpush("queue", "item");
        assert.deepEqual(await waiting, ["queue", "item"]);
      });

      await t("pub/sub", async () => {
        const got: string[] = [];
        sub.on("message", (_ch: string, msg: string) => got.push(msg));
        await sub.subscribe("news");
        const pub = client(port);
        await pub.connect();
        assert.equal(await pub.publish("news", "hello"), 1);
        await waitFor("message", () => got.length === 1, { intervalMs: 10 });
        assert.deepEqual(got, ["hello"]);
        pub.disconnect();
      });

      await t("SELECT keeps its database on the client's connection only", async () => {
        const c = client(port);
        await c.connect();
        await c.select(3);
        await c.set("db3key", "3");
        assert.equal(await a.get("db3key"), null);
        assert.equal(await c.get("db3key"), "3");
        c.disconnect();
      });

      await t("MONITOR, CLIENT SETNAME, QUIT and inline commands", async () => {
        const mon = await Raw.open(port);
        await mon.send("MONITOR\r\n");
        assert.equal(await mon.replies(1), "+OK\r\n");
        await a.set("seen-by-monitor", "1");
        await waitFor(
          "monitor line",
          async () => (await mon.replies(1)).includes("seen-by-monitor"),
        );
        mon.close();

        const raw = await Raw.open(port);
        await raw.send("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$4\r\nraw1\r\n");
        assert.equal(await raw.replies(1), "+OK\r\n");
        await raw.send("*2\r\n$6\r\nCLIENT\r\n$7\r\nGETNAME\r\n");
        assert.equal(await raw.replies(1), "$4\r\nraw1\r\n");
        raw.close();

        const q = await Raw.open(port);
        await q.send(
          "*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n1\r\n*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n",
        );
        assert.equal(await q.rest(), "+OK\r\n+OK\r\n");

        const inline = await Raw.open(port);
        await inline.send("PING\r\n");
        assert.equal(await inline.replies(1), "+PONG\r\n");
        inline.close();
      });
    } finally {
      a.disconnect();
      b.disconnect();
      sub.disconnect();
    }
  });
});

/** A named step inside one test (keeps failures readable). */
async function t(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

Deno.test("proxy with the instance password answers AUTH itself and authenticates its connections", async () => {
  const server = await startRedis(["--requirepass", "s3cret"]);
  await withProxy({ password: "s3cret" }, [server], async (proxy) => {
    proxy.setMaster({ host: "127.0.0.1", port: server.port, epoch: 1 });
    const port = proxy.addr.port;
    const raw = await Raw.open(port);
    await raw.send("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert.match(await raw.replies(1), /^-NOAUTH/);
    await raw.send("*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n");
    assert.match(await raw.replies(1), /^-WRONGPASS/);
    await raw.send("*1\r\n$5\r\nMULTI\r\n");
    assert.match(await raw.replies(1), /^-NOAUTH/);
    raw.close();

    const good = client(port, "s3cret");
    try {
      await good.connect();
      await good.set("k", "v");
      assert.equal(await good.get("k"), "v");
      assert.deepEqual(await good.multi().get("k").exec(), [[null, "v"]]);
    } finally {
      good.disconnect();
    }
  });
});

Deno.test("proxy follows a new master: old clients closed, new ones go to the new master", async () => {
  const one = await startRedis();
  const two = await startRedis();
  await withProxy({ roleCheckMs: 100 }, [one, two], async (proxy) => {
    proxy.setMaster({ host: "127.0.0.1", port: one.port, epoch: 1 });
    const port = proxy.addr.port;
    const old = await Raw.open(port);
    await old.send("*3\r\n$3\r\nSET\r\n$5\r\nwhere\r\n$3\r\none\r\n");
    assert.equal(await old.replies(1), "+OK\r\n");
    const pinned = await Raw.open(port);
    await pinned.send("*1\r\n$5\r\nMULTI\r\n");
    assert.equal(await pinned.replies(1), "+OK\r\n");

    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: two.port, epoch: 2 }), true);
    assert.equal(await old.rest(), "", "the old client is closed");
    assert.equal(await pinned.rest(), "", "the pinned client is closed");
    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: one.port, epoch: 1 }), false);

    const fresh = await Raw.open(port);
    await fresh.send("*2\r\n$3\r\nGET\r\n$5\r\nwhere\r\n");
    assert.equal(await fresh.replies(1), "$-1\r\n", "served by the second server");
    fresh.close();
    old.close();
    pinned.close();

    // The master turning into a slave is noticed by ROLE: its clients are
    // closed and new connections wait, then get an error line.
    const watcher = await Raw.open(port);
    await watcher.send("*1\r\n$4\r\nPING\r\n");
    assert.equal(await watcher.replies(1), "+PONG\r\n");
    const admin = client(two.port);
    await admin.connect();
    await admin.replicaof("127.0.0.1", one.port);
    admin.disconnect();
    assert.equal(await watcher.rest(), "");
    watcher.close();
    await waitFor("proxy to see the slave", () => !proxy.stats().ready, { intervalMs: 20 });
    assert.match(proxy.stats().reason, /slave/);
  });
});

Deno.test("a connection with no usable master waits, then gets an -ERR line", async () => {
  await withProxy({ waitMs: 300 }, [], async (proxy) => {
    const port = proxy.addr.port;
    const lonely = await Raw.open(port);
    await lonely.send("*1\r\n$4\r\nPING\r\n");
    assert.match(await lonely.rest(), /^-ERR Proxy for "t1" has no usable master after 300 ms: /);
    lonely.close();

    // A master that arrives during the wait serves the waiting connection.
    const server = await startRedis();
    try {
      const early = await Raw.open(port);
      await early.send("*1\r\n$4\r\nPING\r\n");
      proxy.setMaster({ host: "127.0.0.1", port: server.port, epoch: 1 });
      assert.equal(await early.replies(1), "+PONG\r\n");
      early.close();

      // The master dies: bound clients are closed, new ones wait and fail.
      const bound = await Raw.open(port);
      await bound.send("*1\r\n$4\r\nPING\r\n");
      assert.equal(await bound.replies(1), "+PONG\r\n");
      await server.kill();
      assert.equal(await bound.rest(), "");
      bound.close();
      const late = await Raw.open(port);
      assert.match(
        await late.rest(),
        /^-ERR .*cannot connect to master|^-ERR .*closed the connection/,
      );
      late.close();
      assert.deepEqual(proxy.master, { host: "127.0.0.1", port: server.port, epoch: 1 });
    } finally {
      await server.kill();
    }
  });
});

Deno.test("a proxy group tells every thread the master (one thread without --unstable-net)", async () => {
  const one = await startRedis();
  const two = await startRedis();
  const logs: string[] = [];
  const group = await ProxyGroup.start({
    hostname: "127.0.0.1",
    threads: 2,
    log: (l) => logs.push(l),
  });
  try {
    assert.ok(group.threads === 2 || logs.some((l) => /one thread/.test(l)), logs.join("\n"));
    group.setMaster({ host: "127.0.0.1", port: one.port, epoch: 1 });
    const conns: Raw[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await Raw.open(group.addr.port);
      await c.send("*1\r\n$4\r\nPING\r\n");
      assert.equal(await c.replies(1), "+PONG\r\n");
      conns.push(c);
    }
    group.setMaster({ host: "127.0.0.1", port: two.port, epoch: 2 });
    for (const c of conns) {
      assert.equal(await c.rest(), "");
      c.close();
    }
    const fresh = await Raw.open(group.addr.port);
    await fresh.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n2\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert.equal(await fresh.replies(2), "+OK\r\n$1\r\n2\r\n");
    fresh.close();
  } finally {
    await group.close();
    await one.kill();
    await two.kill();
  }
});
