/**
 * The network of a multi-host local cluster (`mesos_local --network`): made
 * at start (bridge with the master on it, a namespace and veth per agent),
 * refused to a second cluster while its owner runs, left behind by a killed
 * cluster and removed by the next one on that subnet, removed at a clean
 * stop. Root only: elsewhere the suite says why and is ignored.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { hostsUnavailable, reserveTestNetwork } from "./_hosts.ts";
import { agentLink, agentNamespace } from "../lib/mesos/local/host_network.ts";

const ROOT = new URL("..", import.meta.url).pathname;

if (hostsUnavailable) {
  console.log(`mesos_local_hosts_net_test.ts skipped: ${hostsUnavailable}`);
}

function linkExists(name: string): boolean {
  try {
    Deno.statSync(`/sys/class/net/${name}`);
    return true;
  } catch {
    return false;
  }
}

function namespaceExists(name: string): boolean {
  try {
    Deno.statSync(`/run/netns/${name}`);
    return true;
  } catch {
    return false;
  }
}

function mesosLocal(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}cmd/mesos_local.ts`, "--port", "0", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Starts a cluster and resolves with it and its URL once it prints the URL. */
async function startCluster(
  subnet: string,
): Promise<{ child: Deno.ChildProcess; url: string }> {
  const child = mesosLocal(["--agents", "2", "--network", subnet]).spawn();
  child.stderr.cancel();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`mesos_local ended before printing its URL: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return { child, url: text.trim() };
}

Deno.test({
  name:
    "mesos_local --network: its network while it runs, refused to a second cluster, left by a killed one and removed by the next, gone after a stop",
  ignore: hostsUnavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = reserveTestNetwork();
    const children: Deno.ChildProcess[] = [];
    const links = [net.bridge, agentLink(net, 0), agentLink(net, 1)];
    const namespaces = [agentNamespace(net, 0), agentNamespace(net, 1)];
    try {
      const first = await startCluster(net.subnet);
      children.push(first.child);
      assertMatch(
        first.url,
        new RegExp(`^http://${net.bridgeAddress.replaceAll(".", "\\.")}:\\d+$`),
      );
      for (const l of links) assert(linkExists(l), `link ${l} exists`);
      for (const n of namespaces) assert(namespaceExists(n), `namespace ${n} exists`);
      const health = await fetch(`${first.url}/health`);
      await health.body?.cancel();
      assertEquals(health.status, 200);

      // A second cluster on the same subnet is refused with one line.
      const second = await mesosLocal(["--agents", "1", "--network", net.subnet]).output();
      const stderr = new TextDecoder().decode(second.stderr).trim();
      assertEquals(second.code, 1, stderr);
      assertMatch(
        stderr,
        new RegExp(
          `^The local cluster could not start: The network ${
            net.subnet.replaceAll(".", "\\.")
          } is in use by the local cluster of pid ${first.child.pid} `,
        ),
      );
      assertEquals(stderr.split("\n").length, 1, stderr);
      for (const l of links) assert(linkExists(l), `the first cluster's ${l} is untouched`);

      // Killed, it leaves its network; the next cluster on the subnet removes it first.
      first.child.kill("SIGKILL");
      await first.child.status;
      assert(linkExists(net.bridge), "a killed cluster leaves its bridge");
      const third = await startCluster(net.subnet);
      children.push(third.child);
      const again = await fetch(`${third.url}/health`);
      await again.body?.cancel();
      assertEquals(again.status, 200);

      // A clean stop removes everything.
      third.child.kill("SIGTERM");
      assertEquals((await third.child.status).code, 0);
      for (const l of links) assert(!linkExists(l), `link ${l} is gone`);
      for (const n of namespaces) assert(!namespaceExists(n), `namespace ${n} is gone`);
    } finally {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch {
          // gone
        }
        await child.status.catch(() => {});
      }
      await net.release();
    }
  },
});
