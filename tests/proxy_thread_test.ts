/**
 * Proxies on a thread of their own (lib/proxy/proxy_thread.ts), with real
 * redis-servers behind: opened by id, told their master (older epochs
 * refused at once, as RedisProxy does), closed with their port freed; a
 * port taken, an id opened twice, a module that cannot load and one that
 * never answers are refused with a reason; a thread that dies stops its
 * proxies and says why.
 */
import assert from "node:assert/strict";
import { type ProxyHandle, ProxyThread } from "../lib/proxy/proxy_thread.ts";
import { RedisClient } from "../lib/redis/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { listening } from "./_listeners.ts";

const THREAD = new URL("../lib/proxy/_thread_worker.ts", import.meta.url);

async function startRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = await tempDir("proxy-thread");
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor(`redis-server on ${port}`, async () => {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  }, { intervalMs: 20 });
  return {
    port,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("proxies on a thread of their own follow their master and close", async () => {
  const servers = [await startRedis(), await startRedis()];
  const lines: string[] = [];
  const failures: string[] = [];
  const thread = await ProxyThread.start(THREAD, {
    log: (id, line) => lines.push(`${id}: ${line}`),
    failed: (reason) => failures.push(reason),
  });
  const clients: RedisClient[] = [];
  try {
    const port = freePort();
    const proxy = await thread.open("a", { hostname: "127.0.0.1", port, name: "inst" });
    assert.equal(thread.size, 1);
    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: servers[0]!.port, epoch: 1 }), true);
    const first = new RedisClient({ port, timeoutMs: 5000 });
    clients.push(first);
    assert.equal(await first.call("SET", ["k", "first"]), "OK");
    const direct = new RedisClient({ port: servers[0]!.port, timeoutMs: 5000 });
    clients.push(direct);
    assert.equal(await direct.call("GET", ["k"]), "first");

    // An older epoch is refused at once; a newer one moves the proxy.
    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: servers[1]!.port, epoch: 0 }), false);
    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: servers[1]!.port, epoch: 2 }), true);
    const second = new RedisClient({ port, timeoutMs: 5000 });
    clients.push(second);
    await waitFor(
      "the proxy on the second server",
      async () => (await second.call("GET", ["k"]).catch(() => "error")) === null,
    );
    await waitFor(
      "its log lines, named by id",
      () => lines.some((l) => l.startsWith("a: ") && l.includes(`${servers[1]!.port}`)),
    );

    // Refusals, each with its reason.
    await assert.rejects(
      thread.open("a", { hostname: "127.0.0.1", port: freePort() }),
      /A proxy "a" already runs on the proxy thread/,
    );
    await assert.rejects(
      thread.open("b", { hostname: "127.0.0.1", port }),
      /address already in use|Address already in use/i,
    );
    assert.equal(thread.size, 1, "a refused proxy is not kept");

    let served = false;
    proxy.serving.then(() => (served = true));
    await proxy.close();
    assert.equal(proxy.closed, true);
    assert.equal(proxy.stopReason, undefined, "closed by its owner: no reason to give");
    assert.equal(served, true, "serving settles once closed");
    assert.equal(await listening(port), false, "the port is free once closed");
    assert.equal(thread.size, 0);
    assert.equal(proxy.setMaster({ host: "127.0.0.1", port: servers[0]!.port, epoch: 3 }), false);
    assert.deepEqual(failures, []);
  } finally {
    for (const c of clients) c.close();
    thread.terminate();
    for (const s of servers) await s.stop();
  }
});

Deno.test("a proxy thread that cannot load, or dies, says why and stops its proxies", async (t) => {
  await t.step("a module that does not exist", async () => {
    const missing = new URL("./no_such_proxy_thread.ts", import.meta.url);
    await assert.rejects(
      ProxyThread.start(missing, { log: () => {}, failed: () => {} }),
      /Cannot start the proxy thread from .*no_such_proxy_thread\.ts/,
    );
  });

  await t.step("a module that loads but never serves", async () => {
    // Plain data: it loads, and never answers as a proxy thread.
    const silent = new URL("../lib/proxy/task_spec.ts", import.meta.url);
    await assert.rejects(
      ProxyThread.start(silent, { log: () => {}, failed: () => {} }, 300),
      /Cannot start the proxy thread from .*task_spec\.ts: no answer within 300 ms/,
    );
  });

  await t.step("a thread that dies ends its proxies' serving, not their closed", async () => {
    const failures: string[] = [];
    const thread = await ProxyThread.start(
      new URL("./_failing_proxy_thread.ts", import.meta.url),
      { log: () => {}, failed: (reason) => failures.push(reason) },
    );
    const port = freePort();
    let proxy: ProxyHandle | undefined;
    try {
      proxy = await thread.open("a", { hostname: "127.0.0.1", port });
      await proxy.serving; // settles when the thread dies
      assert.equal(proxy.closed, false, "nobody closed it: its owner must treat it as failed");
      assert.match(proxy.stopReason ?? "", /The proxy thread failed: .*broke on purpose/);
      assert.match(failures.join("\n"), /The proxy thread failed: .*broke on purpose/);
      assert.match(thread.failure ?? "", /broke on purpose/);
      await assert.rejects(thread.open("b", { hostname: "127.0.0.1", port: freePort() }), /broke/);
      await waitFor("the port freed with the thread", async () => !(await listening(port)));
      await proxy.close(); // answered without the thread
    } finally {
      thread.terminate();
    }
  });
});
