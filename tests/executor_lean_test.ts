import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url).pathname;

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier: string };
    type?: { specifier: string };
    isDynamic?: boolean;
  }[];
}

/** Every module `entry` loads at start-up: static imports only, followed transitively. */
async function staticGraph(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `${ROOT}${entry}`],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    roots: string[];
    modules: InfoModule[];
    redirects: Record<string, string>;
  };
  const bySpecifier = new Map(info.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const visit = (specifier: string) => {
    const resolved = info.redirects[specifier] ?? specifier;
    if (seen.has(resolved)) return;
    seen.add(resolved);
    for (const dep of bySpecifier.get(resolved)?.dependencies ?? []) {
      if (!dep.isDynamic && dep.code) visit(dep.code.specifier);
    }
  };
  for (const root of info.roots) visit(root);
  return seen;
}

Deno.test("the executor loads no npm package at start-up (no protobufjs, no ioredis)", async () => {
  const graph = await staticGraph("cmd/executor.ts");
  const npm = [...graph].filter((s) => s.startsWith("npm:"));
  assert.deepEqual(npm, []);
  assert.ok([...graph].some((s) => s.endsWith("/lib/redis/resp.ts")));
});

Deno.test("the executor imports no node: module at start-up (the Node layer costs its start)", async () => {
  const graph = await staticGraph("cmd/executor.ts");
  assert.deepEqual([...graph].filter((s) => s.startsWith("node:")), []);
});

Deno.test("the scheduler and the local cluster load the ZooKeeper client only when a zk:// address needs it", async () => {
  for (const entry of ["cmd/sched.ts", "cmd/mesos_local.ts"]) {
    const graph = await staticGraph(entry);
    const zk = [...graph].filter((s) => s.includes("node-zookeeper-client"));
    assert.deepEqual(zk, [], `${entry} loads ${zk.join(", ")} at start-up`);
    assert.ok([...graph].some((s) => s.endsWith("/lib/mesos/detector.ts")), entry);
  }
});
