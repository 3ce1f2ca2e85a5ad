/**
 * What sched ships to agents: the choice of executor (compiled, release,
 * development launcher), where agents run, the shipment's URIs and the
 * artifact server that serves them.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { devLauncherScript, startArtifactServer } from "../lib/scheduler/artifacts.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import {
  agentsShareHost,
  artifactAddress,
  chooseExecutorArtifact,
  isLoopback,
  pickHostAddress,
  planShipment,
  type Release,
  releaseAt,
  shipmentUris,
} from "../lib/release/mod.ts";
import { ConfigError } from "../lib/config.ts";

/** Runs `fn`, which must throw a ConfigError; returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    assert(error instanceof ConfigError, `a ConfigError, got ${error}`);
    return error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("agents share this host for the local cluster and masters on loopback only", () => {
  const table: [string, boolean][] = [
    ["local", true],
    ["local:5", true],
    ["127.0.0.1:5050", true],
    ["localhost:5050", true],
    ["127.0.0.1:5050,127.0.0.2:5050", true],
    ["[::1]:5050", true],
    ["http://127.0.0.1:5050", true],
    ["10.0.0.5:5050", false],
    ["127.0.0.1:5050,10.0.0.5:5050", false],
    ["mesos.example.com:5050", false],
    ["zk://127.0.0.1:2181/mesos", false],
  ];
  for (const [master, shared] of table) assertEquals(agentsShareHost(master), shared, master);
  // A multi-host local cluster's agents are hosts of their own.
  assertEquals(agentsShareHost("local:3", "198.18.7.0/24"), false);
  assertEquals(agentsShareHost("10.0.0.5:5050", "198.18.7.0/24"), false);
  assert(isLoopback("127.1.2.3") && isLoopback("::1") && !isLoopback("10.1.1.1"));
});

Deno.test("ArtifactIP defaults to loopback for local agents, else to this host's address", () => {
  const interfaces = [
    { family: "IPv4", address: "127.0.0.1" },
    { family: "IPv6", address: "fe80::1" },
    { family: "IPv4", address: "169.254.3.4" },
    { family: "IPv4", address: "10.1.2.3" },
  ];
  assertEquals(pickHostAddress(interfaces), "10.1.2.3");
  assertEquals(pickHostAddress(interfaces.slice(0, 3)), undefined);
  assertEquals(artifactAddress("", "local", () => interfaces), "127.0.0.1");
  assertEquals(artifactAddress("", "10.0.0.5:5050", () => interfaces), "10.1.2.3");
  assertEquals(artifactAddress("sched.example", "10.0.0.5:5050", () => []), "sched.example");
  assertEquals(artifactAddress("", "10.0.0.5:5050", () => []), undefined);
  // A multi-host local cluster: the bridge's address.
  assertEquals(artifactAddress("", "local:3", () => interfaces, "198.18.7.0/24"), "198.18.7.1");
  assertEquals(artifactAddress("10.9.9.9", "local", () => [], "198.18.7.0/24"), "10.9.9.9");
});

async function fakeRelease(dir: string): Promise<Release> {
  await Deno.mkdir(join(dir, "lib"), { recursive: true });
  await Deno.mkdir(join(dir, "runtime"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "release.json"),
    JSON.stringify({ name: "mr-redis", version: "9.9.9", deno: "2.9.6", platform: "linux-x64" }),
  );
  await Deno.writeTextFile(join(dir, "lib", "executor.js"), "console.log('executor')");
  await Deno.writeTextFile(join(dir, "runtime", "deno"), "runtime");
  await Deno.writeTextFile(join(dir, "MrRedisExecutor"), "#!/bin/sh\n");
  return releaseAt(dir)!;
}

Deno.test("the executor is chosen from ExecutorPath, the release, a compiled sibling or the launcher", async () => {
  const dir = await tempDir("artifacts-choice");
  try {
    const release = await fakeRelease(join(dir, "rel"));
    await Deno.writeTextFile(join(dir, "compiled"), "ELF");
    const base = { master: "10.0.0.5:5050", agentsShareHost: false };
    // An explicit path: a release directory, a release's launcher, a binary.
    assertEquals(
      chooseExecutorArtifact({ ...base, executorPath: join(dir, "rel") }).kind,
      "release",
    );
    assertEquals(
      chooseExecutorArtifact({ ...base, executorPath: join(dir, "rel", "MrRedisExecutor") }),
      { kind: "release", release },
    );
    assertEquals(chooseExecutorArtifact({ ...base, executorPath: join(dir, "compiled") }), {
      kind: "binary",
      path: join(dir, "compiled"),
    });
    const missing = configError(() =>
      chooseExecutorArtifact({ ...base, executorPath: join(dir, "nope") })
    );
    assertMatch(missing.message, /^Field "ExecutorPath" names ".*nope", which is neither/);
    // Empty: what comes with this sched.
    assertEquals(
      chooseExecutorArtifact({ ...base, executorPath: "", release, launcher: "x" }).kind,
      "release",
    );
    assertEquals(
      chooseExecutorArtifact({ ...base, executorPath: "", compiledSibling: "/d/MrRedisExecutor" }),
      { kind: "binary", path: "/d/MrRedisExecutor" },
    );
    assertEquals(
      chooseExecutorArtifact({
        executorPath: "",
        master: "local",
        agentsShareHost: true,
        launcher: "#!/bin/sh",
      }),
      { kind: "launcher", script: "#!/bin/sh" },
    );
    const refused = configError(() =>
      chooseExecutorArtifact({ ...base, executorPath: "", launcher: "#!/bin/sh" })
    );
    assertMatch(
      refused.message,
      /development launcher works only on this host.*"10\.0\.0\.5:5050"/,
    );
    assert(!refused.message.includes("\n"));
    // Agents that are hosts of their own cannot run it either.
    const hosts = configError(() =>
      chooseExecutorArtifact({
        executorPath: "",
        master: "local:3",
        localNetwork: "198.18.7.0/24",
        agentsShareHost: false,
        launcher: "#!/bin/sh",
      })
    );
    assertMatch(
      hosts.message,
      /works only on this host, but the agents of Master "local:3" are hosts of their own \(LocalNetwork "198\.18\.7\.0\/24"\)/,
    );
    configError(() => chooseExecutorArtifact({ ...base, executorPath: "" }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a release ships its runtime (executable, cache) and bundle (cache) by digest", async () => {
  const dir = await tempDir("artifacts-release");
  try {
    const release = await fakeRelease(dir);
    await Deno.writeTextFile(join(dir, "redis-server"), "redis binary");
    const shipment = await planShipment({ kind: "release", release }, join(dir, "redis-server"));
    const uris = shipmentUris(shipment, "http://10.1.2.3:5454/");
    assertEquals(uris.length, 3);
    assertMatch(
      uris[0]!.value,
      /^http:\/\/10\.1\.2\.3:5454\/a\/[0-9a-f]{16}\/deno$/,
    );
    assertEquals([uris[0]!.extract, uris[0]!.cache, uris[0]!.executable], [false, true, true]);
    assertMatch(uris[1]!.value, /\/a\/[0-9a-f]{16}\/MrRedisExecutor\.js$/);
    assertEquals([uris[1]!.extract, uris[1]!.cache, uris[1]!.executable], [false, true, false]);
    assertMatch(uris[2]!.value, /\/a\/[0-9a-f]{16}\/redis-server$/);
    assertEquals([uris[2]!.executable, uris[2]!.cache], [true, true]);
    assertMatch(
      shipment.command,
      /exec \.\/deno run --no-config .* \.\/MrRedisExecutor\.js$/,
    );
    assert(!shipment.command.includes(dir), "the command refers to the sandbox only");
    assertEquals(shipment.environment, { MRR_REDIS_SERVER: "./redis-server" });
    // The digest follows the content, so a cached copy is never stale.
    await Deno.writeTextFile(join(dir, "lib", "executor.js"), "console.log('v2')");
    const next = shipmentUris(await planShipment({ kind: "release", release }), "http://h:1");
    assertEquals(next[0]!.value.split("/")[4], uris[0]!.value.split("/")[4]);
    assert(next[1]!.value !== uris[1]!.value.replace("http://10.1.2.3:5454", "http://h:1"));
    // A release names its runtime's digest in release.json (taken when it was
    // built): sched uses it and does not read the runtime. One that is not a
    // digest is left out, and the runtime is digested.
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "release.json")));
    for (
      const [runtimeDigest, expected] of [
        ["0123456789abcdef", "0123456789abcdef"],
        ["../../etc/passwd", uris[0]!.value.split("/")[4]],
      ]
    ) {
      await Deno.writeTextFile(
        join(dir, "release.json"),
        JSON.stringify({ ...manifest, runtimeDigest }),
      );
      const named = shipmentUris(
        await planShipment({ kind: "release", release: releaseAt(dir)! }),
        "http://h:1",
      );
      assertEquals(named[0]!.value, `http://h:1/a/${expected}/deno`);
    }
    const bad = await planShipment({ kind: "release", release }, join(dir, "nope")).catch((e) => e);
    assert(bad instanceof ConfigError);
    assertMatch(bad.message, /^Field "RedisServerPath" names ".*nope", which is not a file$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the artifact server serves the shipment's files and nothing else", async () => {
  const dir = await tempDir("artifacts-serve");
  await Deno.writeTextFile(`${dir}/MrRedisExecutor`, "binary-executor");
  await Deno.writeTextFile(`${dir}/redis-server`, "binary-redis");
  const shipment = await planShipment(
    { kind: "binary", path: `${dir}/MrRedisExecutor` },
    `${dir}/redis-server`,
  );
  const server = await startArtifactServer({ hostname: "127.0.0.1", port: 0, shipment });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const info = buildExecutorInfo({
      uris: shipmentUris(shipment, base),
      command: shipment.command,
      resources: DEFAULT_RESOURCES,
      environment: shipment.environment,
    });
    assertEquals(info.type, "CUSTOM");
    assertEquals(info.command?.value, "./MrRedisExecutor");
    assertEquals(info.command?.environment?.variables, [
      { name: "MRR_REDIS_SERVER", value: "./redis-server" },
    ]);
    const [exe, redis] = info.command!.uris!;
    assertEquals(await (await fetch(exe!.value)).text(), "binary-executor");
    assertEquals(await (await fetch(redis!.value)).text(), "binary-redis");
    const head = await fetch(exe!.value, { method: "HEAD" });
    assertEquals(head.headers.get("content-length"), "15");
    await head.body?.cancel();
    for (const path of ["/MrRedisExecutor", "/a/0000/MrRedisExecutor", "/etc/passwd"]) {
      const res = await fetch(`${base}${path}`);
      assertEquals(res.status, 404, path);
      await res.body?.cancel();
    }
    const post = await fetch(exe!.value, { method: "POST" });
    assertEquals(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("from source, the development launcher runs cmd/executor.ts with this Deno", async () => {
  const script = devLauncherScript()!;
  assertMatch(script, /^#!\/bin\/sh\n/);
  assertMatch(script, /run -A --config '.*deno\.json' '.*\/cmd\/executor\.ts' "\$@"/);
  assert(script.includes(Deno.execPath()));
  // The script is the command itself: nothing to fetch before the executor starts.
  const shipment = await planShipment({ kind: "launcher", script });
  assertEquals(shipment.files, []);
  assertEquals(shipment.command, script);
  // It runs as an agent runs a shell command (sh -c) and starts the executor,
  // which says which environment variable it misses.
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", shipment.command],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertMatch(new TextDecoder().decode(out.stderr), /MrRedisExecutor: .*MESOS_/);
});
