/**
 * End to end on a multi-host local cluster (`LocalNetwork`): the release's
 * sched, three agents that are hosts of their own (network namespace,
 * address, root). A 1+2 instance with Distribution 1 gets one process per
 * host at that host's address, clients in this namespace reach them there,
 * and no executor or redis-server can see or names the source tree or the
 * Deno cache. Root only: elsewhere the suite says why and is ignored.
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { create, type Sched, stopLocalProcesses, waitRunning } from "./_sched.ts";
import { hostsUnavailable, pidsOnHost, reserveTestNetwork, startHostsSched } from "./_hosts.ts";
import { agentAddress } from "../lib/mesos/local/host_network.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

if (hostsUnavailable) {
  console.log(`e2e_hosts_test.ts skipped: ${hostsUnavailable}`);
}

/** The Deno cache of this machine. */
async function denoCache(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/** Command line, environment and open files of a process, as text (first line: the command). */
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

/** `redis-cli -h host -p port ARGS` run in this namespace (the password in REDISCLI_AUTH). */
async function redisCli(
  host: string,
  port: string,
  password: string | undefined,
  args: string[],
): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-h", host, "-p", port, ...args],
    env: password ? { REDISCLI_AUTH: password } : {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.success, `redis-cli ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test({
  name:
    "the release's sched on 3 agent hosts: 1+2 with Distribution 1, one process per host at its address, nothing of the source tree or Deno cache there",
  ignore: hostsUnavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = reserveTestNetwork();
    const dir = await tempDir("e2e-hosts");
    let sched: Sched | undefined;
    try {
      sched = await startHostsSched(dir, net);
      assertMatch(sched.log(), new RegExp(`artifact server at http://${net.bridgeAddress}:`));
      const res = await create(sched, "h1", 20, 2, { Distribution: 1 });
      assertEquals(res.status, 201);
      const view = await waitRunning(sched, "h1", 180_000);
      const hosts = [0, 1, 2].map((i) => agentAddress(net, i));
      const ips = [view.Master!, ...view.Slaves].map((p) => p.IP);
      assertEquals([...ips].sort(), [...hosts].sort(), "one process on each host, at its address");

      // Clients in this namespace reach every process at its host's address.
      const password = view.Master!.password;
      await waitFor("the master to take a write", async () => {
        const reply = await redisCli(view.Master!.IP, view.Master!.Port, password, [
          "SET",
          "hello",
          "hosts",
        ]);
        if (/^NOREPLICAS/.test(reply)) return false;
        assertEquals(reply, "OK");
        return true;
      }, { timeoutMs: 20_000, intervalMs: 100 });
      assertEquals(
        await redisCli(view.Master!.IP, view.Master!.Port, password, ["WAIT", "2", "5000"]),
        "2",
      );
      for (const slave of view.Slaves) {
        assertEquals(await redisCli(slave.IP, slave.Port, password, ["GET", "hello"]), "hosts");
        assertMatch(
          await redisCli(slave.IP, slave.Port, password, ["INFO", "replication"]),
          new RegExp(`master_host:${view.Master!.IP.replaceAll(".", "\\.")}\\s`),
        );
      }

      // Each host fetched the release's executor and runtime over its own link.
      const fetchedBy = new Set(
        [...sched.log().matchAll(/Artifact server: \/a\/\w+\/\S+ to (\S+)/g)].map((m) => m[1]),
      );
      assertEquals(
        [...fetchedBy].sort(),
        [...hosts].sort(),
        "the hosts fetched from their address",
      );

      // What runs on the hosts: one executor each (the release's, from its
      // sandbox) and the redis-servers, none of which names or holds the
      // source tree or the Deno cache.
      const cache = await denoCache();
      const seen: { pid: number; host: number; text: string }[] = [];
      for (const host of [0, 1, 2]) {
        for (const pid of await pidsOnHost(net, host)) {
          seen.push({ pid, host, text: await footprint(pid) });
        }
      }
      const commandOf = (text: string) => text.split("\n")[0]!;
      const executors = seen.filter((p) =>
        /^\.\/deno run .*\.\/MrRedisExecutor\.js/.test(commandOf(p.text))
      );
      const redises = seen.filter((p) => /^\S*redis-server /.test(commandOf(p.text)));
      assertEquals(
        executors.map((p) => p.host).sort(),
        [0, 1, 2],
        `one executor per host: ${JSON.stringify(seen)}`,
      );
      assertEquals(redises.map((p) => p.host).sort(), [0, 1, 2], "one redis-server per host");
      for (const p of seen) {
        assert(!p.text.includes(ROOT), `process ${p.pid} refers to the source tree: ${p.text}`);
        assert(!p.text.includes(cache), `process ${p.pid} refers to the Deno cache: ${p.text}`);
      }
      // Neither can they see them: the host's root holds no source tree,
      // Deno cache or scheduler work dir.
      for (const p of [...executors, ...redises]) {
        const root = `/proc/${p.pid}/root`;
        for (const hidden of [ROOT, cache, join(dir, "store"), join(dir, "sched.log")]) {
          let visible = true;
          try {
            await Deno.stat(`${root}${hidden}`);
          } catch {
            visible = false;
          }
          assert(!visible, `process ${p.pid} on host ${p.host} can see ${hidden}`);
        }
      }
    } finally {
      await sched?.stop().catch(() => {});
      await stopLocalProcesses(dir).catch(() => {});
      await net.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
