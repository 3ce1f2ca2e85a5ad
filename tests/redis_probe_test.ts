/**
 * `probeRedis`, the scheduler's direct check, against real redis-servers:
 * the role of a master and a replica, a password, nothing listening, a
 * stopped server (bounded by its deadline); and its RESP codec as a table.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { decodeReply, encodeCommand, probeRedis, RespError } from "../lib/redis/probe.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

const enc = new TextEncoder();

Deno.test("encodeCommand writes a RESP array of bulk strings", () => {
  assertEquals(new TextDecoder().decode(encodeCommand(["PING"])), "*1\r\n$4\r\nPING\r\n");
  assertEquals(
    new TextDecoder().decode(encodeCommand(["AUTH", "pässword"])),
    "*2\r\n$4\r\nAUTH\r\n$9\r\npässword\r\n",
  );
});

Deno.test("decodeReply reads RESP2 values and waits for whole ones", () => {
  const cases: [string, unknown, number | undefined][] = [
    ["+PONG\r\n", "PONG", 7],
    [":42\r\n", 42, 5],
    ["$3\r\nabc\r\n", "abc", 9],
    ["$-1\r\n", null, 5],
    ["*2\r\n$6\r\nmaster\r\n:10\r\n", ["master", 10], 21],
    ["*3\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:6379\r\n", ["slave", "127.0.0.1", 6379], 37],
    ["*1\r\n*0\r\n", [[]], 8],
    ["$3\r\nab", undefined, undefined],
    ["*2\r\n+a\r\n", undefined, undefined],
    ["+PON", undefined, undefined],
  ];
  for (const [text, value, end] of cases) {
    const got = decodeReply(enc.encode(text));
    assertEquals(
      got && { value: got.value, end: got.end },
      value === undefined && end === undefined ? undefined : { value, end },
      JSON.stringify(text),
    );
  }
  const err = decodeReply(enc.encode("-NOAUTH Authentication required.\r\n"));
  assert(err?.value instanceof RespError);
  assertEquals((err.value as RespError).message, "NOAUTH Authentication required.");
  let threw = "";
  try {
    decodeReply(enc.encode("?what\r\n"));
  } catch (error) {
    threw = (error as Error).message;
  }
  assertMatch(threw, /Bad RESP reply starting with "\?"/);
});

/** Runs redis-server with `args` on a free port until `fn` is done. */
async function withServer(
  args: string[],
  fn: (port: number, child: Deno.ChildProcess) => Promise<void>,
): Promise<void> {
  const dir = await tempDir("probe");
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, ...args],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor("redis-server to listen", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return true;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    await fn(port, child);
  } finally {
    try {
      child.kill("SIGCONT");
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("probeRedis tells a master from a replica", async () => {
  await withServer([], async (master) => {
    const m = await probeRedis({ host: "127.0.0.1", port: master, timeoutMs: 2_000 });
    assertEquals(m.ok && m.role, "master");
    await withServer(["--replicaof", "127.0.0.1", String(master)], async (replica) => {
      const r = await probeRedis({ host: "127.0.0.1", port: replica, timeoutMs: 2_000 });
      assertEquals(r.ok && r.role, "slave");
    });
  });
});

Deno.test("probeRedis sends AUTH when given a password; a refusal is still an answer", async () => {
  await withServer(["--requirepass", "s3cret"], async (port) => {
    const good = await probeRedis({
      host: "127.0.0.1",
      port,
      timeoutMs: 2_000,
      password: "s3cret",
    });
    assertEquals(good.ok && good.role, "master");
    const user = await probeRedis({
      host: "127.0.0.1",
      port,
      timeoutMs: 2_000,
      username: "default",
      password: "s3cret",
    });
    assertEquals(user.ok && user.role, "master");
    // NOAUTH / WRONGPASS prove the server is alive and serving.
    const none = await probeRedis({ host: "127.0.0.1", port, timeoutMs: 2_000 });
    assertEquals(none.ok && none.role, "unknown");
    const wrong = await probeRedis({ host: "127.0.0.1", port, timeoutMs: 2_000, password: "no" });
    assertEquals(wrong.ok && wrong.role, "unknown");
  });
});

Deno.test("probeRedis: nothing listening fails at once; a stopped server fails at its deadline", async () => {
  const refused = await probeRedis({ host: "127.0.0.1", port: freePort(), timeoutMs: 2_000 });
  assertEquals(refused.ok, false);
  assertEquals(!refused.ok && refused.timedOut, false);
  await withServer([], async (port, child) => {
    child.kill("SIGSTOP");
    const stopped = await probeRedis({ host: "127.0.0.1", port, timeoutMs: 300 });
    assertEquals(stopped.ok, false);
    assert(!stopped.ok && stopped.timedOut, "timed out");
    assertMatch(!stopped.ok ? stopped.error : "", /no answer within 300 ms/);
    assert(stopped.latencyMs >= 300, `latency ${stopped.latencyMs}`);
    child.kill("SIGCONT");
    const back = await probeRedis({ host: "127.0.0.1", port, timeoutMs: 2_000 });
    assertEquals(back.ok, true);
  });
});
