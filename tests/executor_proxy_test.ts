/**
 * Proxy tasks of MrRedisExecutor (lib/executor/proxy_tasks.ts), driven event
 * by event with a real redis-server behind: LAUNCH gives STARTING then
 * RUNNING with {host, port}; commands go through to the master; a
 * `proxy-master` command moves it and is answered; KILL gives TASK_KILLED and
 * frees the port; a bad spec gives TASK_FAILED naming the field.
 */
import assert from "node:assert/strict";
import { encodeTaskSpec } from "../lib/executor_messages.ts";
import { RedisExecutor, type TaskStatusUpdate } from "../lib/executor/mod.ts";
import { encodeProxySpec } from "../lib/proxy/task_spec.ts";
import { RedisClient } from "../lib/redis/mod.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import { listening } from "./_listeners.ts";
import { command, launch, RecordingDriver, subscribed } from "./_executor.ts";

function data(update: TaskStatusUpdate | undefined): Record<string, unknown> {
  assert.ok(update?.data, "update carries data");
  return JSON.parse(new TextDecoder().decode(update.data));
}

const WAIT = { timeoutMs: 20_000, intervalMs: 50 };

Deno.test("RedisExecutor runs proxy tasks in front of a redis task", async (t) => {
  const sandbox = await tempDir("executor-proxy");
  const driver = new RecordingDriver();
  const ex = new RedisExecutor({
    driver,
    sandbox,
    bind: "127.0.0.1",
    statsIntervalMs: 200,
    idleTimeoutMs: 0,
    stopTimeoutMs: 3000,
  });
  ex.handle(subscribed());
  const password = "proxy-test-password-0123";
  const masters = [freePort(), freePort()];
  const proxyPort = freePort();
  const clients: RedisClient[] = [];
  try {
    // Two single redis tasks: the first master, then the one the proxy moves to.
    for (const [i, port] of masters.entries()) {
      ex.handle(launch(
        `r${i}`,
        encodeTaskSpec({
          instance: "inst",
          procId: `p${i + 1}`,
          role: "master",
          port,
          capacityMB: 12,
          dataDir: `redis-p${i + 1}`,
          auth: { password, adminPassword: `admin-${password}` },
        }),
      ));
    }
    await waitFor(
      "redis RUNNING",
      () => driver.last("r0", "TASK_RUNNING") && driver.last("r1", "TASK_RUNNING"),
      WAIT,
    );

    await t.step("a proxy task goes STARTING then RUNNING and serves the master", async () => {
      ex.handle(launch(
        "inst.x1.1",
        encodeProxySpec({
          kind: "proxy",
          instance: "inst",
          proxyId: "x1",
          port: proxyPort,
          master: { host: "127.0.0.1", port: masters[0]!, epoch: 0 },
          password,
          waitMs: 5000,
        }),
      ));
      await waitFor("proxy RUNNING", () => driver.last("inst.x1.1", "TASK_RUNNING"), WAIT);
      assert.deepEqual(driver.states("inst.x1.1"), ["TASK_RUNNING"], "no TASK_STARTING first");
      assert.deepEqual(data(driver.last("inst.x1.1", "TASK_RUNNING")), {
        host: "127.0.0.1",
        port: proxyPort,
      });
      assert.ok(ex.taskIds.includes("inst.x1.1"));
      // Its executor's stats name it: the scheduler's heartbeat of the proxy.
      const since = driver.messages.length;
      await waitFor(
        "stats naming the proxy",
        () =>
          driver.messages.slice(since).some((m) =>
            m.kind === "stats" && (m.proxies ?? []).includes("inst.x1.1")
          ),
        WAIT,
      );
      const c = new RedisClient({ port: proxyPort, password, timeoutMs: 5000 });
      clients.push(c);
      assert.equal(await c.call("SET", ["k", "one"]), "OK");
      const direct = new RedisClient({ port: masters[0]!, password, timeoutMs: 5000 });
      clients.push(direct);
      assert.equal(await direct.call("GET", ["k"]), "one");
    });

    await t.step("proxy-master moves it to another master and is answered", async () => {
      ex.handle(command({
        kind: "proxy-master",
        commandId: "c1",
        taskId: "inst.x1.1",
        host: "127.0.0.1",
        port: masters[1]!,
        epoch: 1,
      }));
      await waitFor("the result", () => driver.result("c1"), WAIT);
      assert.deepEqual(driver.result("c1"), { kind: "result", commandId: "c1", ok: true });
      const c = new RedisClient({ port: proxyPort, password, timeoutMs: 5000 });
      clients.push(c);
      await waitFor("writes on the second master", async () => {
        await c.call("SET", ["k2", "two"]).catch(() => undefined);
        const direct = new RedisClient({ port: masters[1]!, password, timeoutMs: 5000 });
        try {
          return (await direct.call("GET", ["k2"])) === "two";
        } finally {
          direct.close();
        }
      }, WAIT);
      // An older epoch is taken as an answer but changes nothing.
      ex.handle(command({
        kind: "proxy-master",
        commandId: "c2",
        taskId: "inst.x1.1",
        host: "127.0.0.1",
        port: masters[0]!,
        epoch: 0,
      }));
      await waitFor("the result", () => driver.result("c2"), WAIT);
      assert.equal(await c.call("GET", ["k2"]), "two");
    });

    await t.step("a command for a proxy that does not run here fails with a reason", async () => {
      ex.handle(command({
        kind: "proxy-master",
        commandId: "c3",
        taskId: "inst.x9.1",
        host: "127.0.0.1",
        port: masters[0]!,
        epoch: 2,
      }));
      await waitFor("the result", () => driver.result("c3"), WAIT);
      const r = driver.result("c3") as { ok: boolean; error?: string };
      assert.equal(r.ok, false);
      assert.match(r.error ?? "", /proxy task "inst\.x9\.1".*does not run here/);
    });

    await t.step(
      "proxy-masters tells several proxies in one command, naming failures",
      async () => {
        const secondPort = freePort();
        ex.handle(launch(
          "inst.x4.1",
          encodeProxySpec({
            kind: "proxy",
            instance: "inst",
            proxyId: "x4",
            port: secondPort,
            password,
            waitMs: 5000,
          }),
        ));
        await waitFor("second proxy RUNNING", () => driver.last("inst.x4.1", "TASK_RUNNING"), WAIT);
        ex.handle(command({
          kind: "proxy-masters",
          commandId: "c4",
          proxies: [
            { taskId: "inst.x1.1", host: "127.0.0.1", port: masters[0]!, epoch: 3 },
            { taskId: "inst.x4.1", host: "127.0.0.1", port: masters[0]!, epoch: 3 },
            { taskId: "inst.x9.1", host: "127.0.0.1", port: masters[0]!, epoch: 3 },
            { taskId: "inst.x4.1", host: "", port: 0, epoch: 3 },
          ],
        }));
        await waitFor("the result", () => driver.result("c4"), WAIT);
        const r = driver.result("c4") as {
          ok: boolean;
          error?: string;
          failed?: { taskId: string; error: string }[];
        };
        assert.equal(r.ok, false);
        assert.deepEqual(r.failed?.map((f) => f.taskId), ["inst.x9.1", "inst.x4.1"]);
        assert.match(r.failed?.[0]?.error ?? "", /does not run here/);
        assert.match(r.failed?.[1]?.error ?? "", /bad master ""/);
        // Both proxies now send clients to the first master.
        const direct = new RedisClient({ port: masters[0]!, password, timeoutMs: 5000 });
        clients.push(direct);
        for (const [i, port] of [proxyPort, secondPort].entries()) {
          const c = new RedisClient({ port, password, timeoutMs: 5000 });
          clients.push(c);
          await waitFor(`proxy ${i + 1} on the first master`, async () => {
            await c.call("SET", [`k3-${i}`, "three"]).catch(() => undefined);
            return (await direct.call("GET", [`k3-${i}`])) === "three";
          }, WAIT);
        }
        ex.handle({
          type: "MESSAGE",
          message: {
            data: new TextEncoder().encode(
              JSON.stringify({ kind: "proxy-masters", commandId: "c5", proxies: "x1" }),
            ),
          },
        });
        await waitFor("the result", () => driver.result("c5"), WAIT);
        assert.deepEqual(driver.result("c5"), {
          kind: "result",
          commandId: "c5",
          ok: false,
          error: 'Cannot run command "proxy-masters": no array "proxies"',
        });
        ex.handle({ type: "KILL", kill: { task_id: { value: "inst.x4.1" } } });
        await waitFor("second proxy KILLED", () => driver.last("inst.x4.1", "TASK_KILLED"), WAIT);
      },
    );

    await t.step("KILL stops the proxy: TASK_KILLED and the port is free", async () => {
      ex.handle({ type: "KILL", kill: { task_id: { value: "inst.x1.1" } } });
      await waitFor("proxy KILLED", () => driver.last("inst.x1.1", "TASK_KILLED"), WAIT);
      assert.ok(!(await listening(proxyPort)));
      assert.ok(!ex.taskIds.includes("inst.x1.1"));
    });

    await t.step("a bad proxy spec is TASK_FAILED naming the field", async () => {
      ex.handle(launch(
        "inst.x2.1",
        new TextEncoder().encode(JSON.stringify({ kind: "proxy", instance: "inst", port: 0 })),
      ));
      await waitFor("failed", () => driver.last("inst.x2.1", "TASK_FAILED"), WAIT);
      const failed = driver.last("inst.x2.1", "TASK_FAILED")!;
      assert.equal(failed.reason, "REASON_TASK_INVALID");
      assert.match(failed.message ?? "", /field "proxyId" must be a non-empty string/);
    });

    await t.step("a port already taken is TASK_FAILED at start", async () => {
      const holder = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      try {
        ex.handle(launch(
          "inst.x3.1",
          encodeProxySpec({
            kind: "proxy",
            instance: "inst",
            proxyId: "x3",
            port: (holder.addr as Deno.NetAddr).port,
          }),
        ));
        await waitFor("failed", () => driver.last("inst.x3.1", "TASK_FAILED"), WAIT);
        assert.match(
          driver.last("inst.x3.1", "TASK_FAILED")!.message ?? "",
          /Cannot start the proxy/,
        );
      } finally {
        holder.close();
      }
    });
  } finally {
    for (const c of clients) c.close();
    await ex.shutdown();
    await ex.flush(1000);
    await Deno.remove(sandbox, { recursive: true });
  }
});

/**
 * Sends PING through the proxy on `port` from another process, 300 ms after
 * this call, while this thread is held busy for `holdMs` (as a spawn or a
 * long task holds the executor's thread); returns how long before the end of
 * the hold the PONG came (negative: after it).
 */
async function pongBeforeHoldEnds(port: number, password: string, holdMs: number) {
  const client = new Deno.Command("sh", {
    args: [
      "-c",
      `sleep 0.3; redis-cli -h 127.0.0.1 -p ${port} -a "$1" --no-auth-warning PING; date +%s%3N`,
      "sh",
      password,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const end = Date.now() + holdMs;
  while (Date.now() < end) {
    // busy: nothing else runs on this thread
  }
  const out = await client.output();
  const [reply, at] = new TextDecoder().decode(out.stdout).trim().split("\n");
  assert.equal(reply, "PONG", new TextDecoder().decode(out.stderr));
  return end - Number(at);
}

/** An executor subscribed on 127.0.0.1 whose log lines are kept, for the proxy thread tests. */
function loggedExecutor(sandbox: string, proxyThreadModule: URL | null | undefined) {
  const driver = new RecordingDriver();
  const lines: string[] = [];
  const ex = new RedisExecutor({
    driver,
    sandbox,
    bind: "127.0.0.1",
    idleTimeoutMs: 0,
    log: (line) => lines.push(line),
    ...(proxyThreadModule !== undefined ? { proxyThreadModule } : {}),
  });
  ex.handle(subscribed());
  return { ex, driver, lines };
}

Deno.test("proxy tasks answer while the executor's thread is busy; on it they wait", async () => {
  const sandbox = await tempDir("executor-proxy-thread");
  const password = "proxy-thread-password-0123";
  // `undefined`: the proxy thread (the default); `null`: the executor's thread.
  for (const threadModule of [undefined, null]) {
    const { ex, driver, lines } = loggedExecutor(sandbox, threadModule);
    const master = freePort();
    const proxyPort = freePort();
    try {
      ex.handle(launch(
        "r0",
        encodeTaskSpec({
          instance: "inst",
          procId: "p1",
          role: "master",
          port: master,
          capacityMB: 12,
          dataDir: "redis-p1",
          auth: { password, adminPassword: `admin-${password}` },
        }),
      ));
      await waitFor("redis RUNNING", () => driver.last("r0", "TASK_RUNNING"), WAIT);
      ex.handle(launch(
        "inst.x1.1",
        encodeProxySpec({
          kind: "proxy",
          instance: "inst",
          proxyId: "x1",
          port: proxyPort,
          master: { host: "127.0.0.1", port: master, epoch: 0 },
          password,
        }),
      ));
      await waitFor("proxy RUNNING", () => driver.last("inst.x1.1", "TASK_RUNNING"), WAIT);
      // The proxy has its master before the hold.
      const c = new RedisClient({ port: proxyPort, password, timeoutMs: 5000 });
      assert.equal(await c.call("PING", []), "PONG");
      c.close();
      const margin = await pongBeforeHoldEnds(proxyPort, password, 1500);
      if (threadModule === undefined) {
        assert.ok(lines.includes("Proxies run on a thread of their own"), lines.join("\n"));
        assert.ok(margin > 500, `PONG ${margin} ms before the hold ended; expected > 500`);
      } else {
        assert.ok(!lines.includes("Proxies run on a thread of their own"), lines.join("\n"));
        assert.ok(margin <= 0, `PONG ${margin} ms before the hold ended; expected after it`);
      }
    } finally {
      await ex.shutdown();
      await ex.flush(1000);
    }
  }
  await Deno.remove(sandbox, { recursive: true });
});

Deno.test("a proxy thread that dies fails its proxy tasks, saying why", async () => {
  const sandbox = await tempDir("executor-proxy-thread-dies");
  // Its thread dies 1 s after it starts serving.
  const { ex, driver, lines } = loggedExecutor(
    sandbox,
    new URL("./_failing_proxy_thread.ts", import.meta.url),
  );
  const port = freePort();
  try {
    ex.handle(launch(
      "inst.x1.1",
      encodeProxySpec({ kind: "proxy", instance: "inst", proxyId: "x1", port }),
    ));
    await waitFor("the proxy failed", () => driver.last("inst.x1.1", "TASK_FAILED"), WAIT);
    assert.deepEqual(driver.states("inst.x1.1"), ["TASK_RUNNING", "TASK_FAILED"]);
    assert.match(
      driver.last("inst.x1.1", "TASK_FAILED")!.message ?? "",
      /^The proxy stopped accepting connections: The proxy thread failed: .*broke on purpose/,
    );
    assert.ok(lines.some((l) => /The proxy thread failed: .*its proxy tasks fail/.test(l)));
    assert.equal(await listening(port), false, "its port is free");
    assert.deepEqual(ex.taskIds, []);
  } finally {
    await ex.shutdown();
    await ex.flush(1000);
    await Deno.remove(sandbox, { recursive: true });
  }
});
