/**
 * The release of `deno task release`: its programs run with the Deno runtime
 * inside it, and its sched ships the executor bundle and that runtime to the
 * agents, so nothing the agents run refers to the source tree or the Deno
 * cache of the machine that built it.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { testRelease } from "./_release.ts";
import { fileDigest } from "../lib/release/shipping.ts";
import { create, startSched, waitRunning, withRedis } from "./_sched.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

async function runIn(
  dir: string,
  program: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(program, {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { DENO_DIR: join(dir, "deno-dir-that-must-stay-unused") },
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

/** The contents of every file called `name` under `dir`. */
async function filesNamed(dir: string, name: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) found.push(...await filesNamed(path, name));
    else if (entry.isFile && entry.name === name) found.push(await Deno.readTextFile(path));
  }
  return found;
}

/** The Deno cache of this machine. */
async function denoCache(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

Deno.test({
  name: "a release holds sched, MrRedisExecutor, mrr and mesos_local run by its own Deno",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const release = await testRelease();
    const dir = await tempDir("release-programs");
    try {
      const manifest = JSON.parse(await Deno.readTextFile(join(release, "release.json")));
      assertEquals(manifest.name, "mr-redis");
      assertEquals(manifest.deno, "2.9.6");
      // The runtime's digest, taken at build time, is the one sched would take.
      assertEquals(manifest.runtimeDigest, await fileDigest(join(release, "runtime", "deno")));
      const runtime = await runIn(dir, join(release, "runtime", "deno"), ["--version"]);
      assertMatch(runtime.stdout, /^deno 2\.9\.6 /);
      for (const program of ["sched", "MrRedisExecutor", "mrr", "mesos_local"]) {
        const text = await Deno.readTextFile(join(release, program));
        assertMatch(text, /^#!\/bin\/sh\n/);
        assert(!text.includes(ROOT), `${program} names no source path`);
        assert(((await Deno.stat(join(release, program))).mode! & 0o111) !== 0);
      }
      // The README's steps: dump the config, then it loads back.
      const dump = await runIn(dir, join(release, "sched"), ["-DumpEmptyConfig"]);
      assertEquals(dump.code, 0, dump.stderr);
      const config = JSON.parse(dump.stdout);
      assertEquals(config.ExecutorPath, "");
      assertEquals(config.Master, "local");
      const help = await runIn(dir, join(release, "mrr"), ["help"]);
      assertEquals(help.code, 0, help.stderr);
      assertMatch(help.stdout, /mrr/);
      const badFlag = await runIn(dir, join(release, "mesos_local"), ["--agents", "x"]);
      assertEquals(badFlag.code, 2);
      assertMatch(badFlag.stderr, /^Option "--agents" must be a whole number/);
      const executor = await runIn(dir, join(release, "MrRedisExecutor"), ["--help"]);
      assertEquals(executor.code, 0, executor.stderr);
      // Agents get runtime/deno itself: nothing else is in runtime/.
      const runtimeDir = [];
      for await (const e of Deno.readDir(join(release, "runtime"))) runtimeDir.push(e.name);
      assertEquals(runtimeDir, ["deno"]);
      // The bundles read nothing from the source tree.
      for (const bundle of ["sched", "executor", "mrr", "mesos_local"]) {
        const text = await Deno.readTextFile(join(release, "lib", `${bundle}.js`));
        assert(!/__dirname}\/\.\.\/proto\/rpc\.proto/.test(text), `${bundle}.js reads etcd protos`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Every process whose working directory is under `root`. */
async function processesUnder(root: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cwd = await Deno.readLink(`/proc/${entry.name}/cwd`);
      if (cwd.startsWith(root)) pids.push(Number(entry.name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Command line, environment and open files of a process, as text. */
async function footprint(pid: number): Promise<string> {
  const parts: string[] = [];
  try {
    parts.push((await Deno.readTextFile(`/proc/${pid}/cmdline`)).replaceAll("\0", " "));
    parts.push((await Deno.readTextFile(`/proc/${pid}/environ`)).replaceAll("\0", " "));
    for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
      try {
        parts.push(await Deno.readLink(`/proc/${pid}/fd/${fd.name}`));
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // exited meanwhile
  }
  return parts.join("\n");
}

Deno.test({
  name:
    "the release's sched ships its executor and runtime to the agents; nothing they run refers to the source tree or the Deno cache",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const release = await testRelease();
    const dir = await tempDir("release-sched");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:2",
      program: join(release, "sched"),
    });
    try {
      assertMatch(sched.log(), /shipping the executor bundle and Deno 2\.9\.6 of the release /);
      assertEquals((await create(sched, "rel", 20, 1)).status, 201);
      const view = await waitRunning(sched, "rel", 120_000);
      await withRedis(view.Master!, async (redis) => {
        assertEquals(await redis.set("k", "v"), "OK");
        assertEquals(await redis.get("k"), "v");
      });
      // Its proxies run on the bundled executor's proxy thread, started from
      // the bundle itself (there is no source tree to start it from).
      const proxies = await waitFor("2 proxies in STATUS", async () => {
        const v = await (await sched.api("/v1/STATUS/rel")).json() as {
          Proxies: { IP: string; Port: string }[];
        };
        return v.Proxies.length === 2 ? v.Proxies : undefined;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      await withRedis(
        { ...view.Master!, IP: proxies[0]!.IP, Port: proxies[0]!.Port },
        async (r) => {
          assertEquals(await r.get("k"), "v");
        },
      );
      const sandboxes = join(dir, "local");
      const executorLogs = await filesNamed(sandboxes, "stderr");
      assertEquals(
        executorLogs.filter((text) => text.includes("Proxies run on a thread of their own")).length,
        2,
        `both executors start their proxy thread: ${executorLogs.join("\n---\n")}`,
      );
      const pids = await processesUnder(sandboxes);
      const cache = await denoCache();
      const footprints = await Promise.all(pids.map(async (pid) => [pid, await footprint(pid)]));
      const commandOf = (f: unknown) => (f as string).split("\n")[0]!;
      const executors = footprints.filter(([, f]) =>
        /^\.\/deno run .*\.\/MrRedisExecutor\.js/.test(commandOf(f))
      );
      const redises = footprints.filter(([, f]) => /^\S*redis-server /.test(commandOf(f)));
      assertEquals(executors.length, 2, `one executor per agent: ${JSON.stringify(footprints)}`);
      assertEquals(redises.length, 2, `two redis-servers: ${JSON.stringify(footprints)}`);
      for (const [pid, text] of footprints) {
        assert(
          !(text as string).includes(ROOT),
          `process ${pid} refers to the source tree: ${text}`,
        );
        assert(
          !(text as string).includes(cache),
          `process ${pid} refers to the Deno cache: ${text}`,
        );
        assert(
          !(text as string).includes(release),
          `process ${pid} refers to the release: ${text}`,
        );
      }
      // Each agent's fetcher downloaded the runtime once into its cache (the
      // executors above run their sandbox's copy).
      for (const agent of ["0", "1"]) {
        const cached = [];
        for await (const e of Deno.readDir(join(sandboxes, "fetcher-cache", agent))) {
          cached.push(e.name);
        }
        assertEquals(cached.filter((n) => n.endsWith("-deno")).length, 1, cached.join(", "));
      }
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
