/**
 * The artifact server: the development launcher, a compiled executor file,
 * and a shipped redis-server.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { devLauncherScript, startArtifactServer } from "../lib/scheduler/artifacts.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";

Deno.test("artifact server ships the development launcher when no compiled executor exists", async () => {
  const dir = await tempDir("artifacts");
  const server = await startArtifactServer({
    hostname: "127.0.0.1",
    port: 0,
    executorPath: `${dir}/missing`,
  });
  try {
    const res = await fetch(`http://127.0.0.1:${server.port}/MrRedisExecutor`);
    assertEquals(res.status, 200);
    const script = await res.text();
    assertEquals(script, devLauncherScript());
    assertMatch(script, /^#!\/bin\/sh\n/);
    assertMatch(script, /run -A --config '.*deno\.json' '.*\/cmd\/executor\.ts' "\$@"/);
    assert(script.includes(Deno.execPath()));
    const none = await fetch(`http://127.0.0.1:${server.port}/redis-server`);
    assertEquals(none.status, 404);
    await none.body?.cancel();
    const post = await fetch(`http://127.0.0.1:${server.port}/MrRedisExecutor`, { method: "POST" });
    assertEquals(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("artifact server ships a compiled executor and redis-server as files", async () => {
  const dir = await tempDir("artifacts");
  await Deno.writeTextFile(`${dir}/MrRedisExecutor`, "binary-executor");
  await Deno.writeTextFile(`${dir}/redis-server`, "binary-redis");
  const server = await startArtifactServer({
    hostname: "127.0.0.1",
    port: 0,
    executorPath: `${dir}/MrRedisExecutor`,
    redisServerPath: `${dir}/redis-server`,
  });
  try {
    assert(server.shipsRedisServer);
    const exe = await fetch(`http://127.0.0.1:${server.port}/MrRedisExecutor`);
    assertEquals(await exe.text(), "binary-executor");
    const redis = await fetch(`http://127.0.0.1:${server.port}/redis-server`);
    assertEquals(await redis.text(), "binary-redis");
    const info = buildExecutorInfo({
      artifactUrl: `http://127.0.0.1:${server.port}`,
      shipsRedisServer: server.shipsRedisServer,
      resources: DEFAULT_RESOURCES,
    });
    assertEquals(info.type, "CUSTOM");
    assertEquals(info.command?.value, "./MrRedisExecutor");
    assertEquals(info.command?.uris?.map((u) => u.value.split("/").pop()), [
      "MrRedisExecutor",
      "redis-server",
    ]);
    assert(info.command?.uris?.every((u) => u.executable));
    assertEquals(info.command?.environment?.variables, [
      { name: "MRR_REDIS_SERVER", value: "./redis-server" },
    ]);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
