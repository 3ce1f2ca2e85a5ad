/**
 * `probeRedis`, the scheduler's direct check, against real redis-servers:
 * the role of a master and a replica, a password, nothing listening, a
 * stopped server (bounded by its deadline).
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { probeRedis } from "../lib/redis/probe.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

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
