/**
 * The multi-host local cluster's plan (addresses, names, the command that
 * runs a process on a host) and its config checks. What it does on a real
 * machine is in e2e_hosts_test.ts and e2e_hosts_partition_test.ts.
 */
import { assertEquals, assertMatch, assertThrows } from "./_assert.ts";
import {
  agentAddress,
  agentLink,
  agentNamespace,
  hostCommand,
  parseHostNetwork,
} from "../lib/mesos/local/host_network.ts";
import { parseConfig } from "../lib/config.ts";
import { clusterFlags } from "../lib/mesos/local/daemon.ts";

Deno.test("a host network is an IPv4 /24; its names derive from the subnet", () => {
  const net = parseHostNetwork(" 198.18.7.0/24 ");
  assertEquals(net, {
    subnet: "198.18.7.0/24",
    prefix: "198.18.7",
    tag: "c61207",
    bridge: "mrrc61207",
    bridgeAddress: "198.18.7.1",
  });
  assertEquals(agentAddress(net, 0), "198.18.7.10");
  assertEquals(agentAddress(net, 2), "198.18.7.12");
  assertEquals(agentNamespace(net, 1), "mrr-c61207-1");
  assertEquals(agentLink(net, 1), "mrrc61207h1");
  // Interface names fit the kernel's 15 characters.
  assertEquals(agentLink(parseHostNetwork("223.255.255.0/24"), 239).length <= 15, true);
  assertMatch((assertThrows(() => agentAddress(net, 240)) as Error).message, /out of range/);
  const bad: [string, RegExp][] = [
    [
      "198.18.7.0/16",
      /must be an IPv4 \/24 subnet written like "198\.18\.7\.0\/24", but got "198\.18\.7\.0\/16"/,
    ],
    ["198.18.7.1/24", /but got "198\.18\.7\.1\/24"/],
    ["198.300.7.0/24", /but got "198\.300\.7\.0\/24"/],
    ["", /but got ""/],
    ["127.0.5.0/24", /not loopback, link-local, multicast or 0\.x/],
    ["169.254.1.0/24", /not loopback/],
    ["224.1.1.0/24", /not loopback/],
    ["0.1.1.0/24", /not loopback/],
  ];
  for (const [cidr, message] of bad) {
    const error = assertThrows(() => parseHostNetwork(cidr, 'Option "--network"'));
    assertEquals(error instanceof TypeError, true);
    assertMatch((error as Error).message, /^Option "--network" must be/);
    assertMatch((error as Error).message, message);
  }
});

Deno.test("a process on a host runs in its namespace, in a root of its own, keeping its pid", () => {
  const host = {
    namespace: "mrr-c61207-0",
    root: "/w/hosts/0",
    keep: ["/w/agents/A", "/w/data/A"],
  };
  const full = hostCommand(host, "/w/agents/A/sb", ["/usr/bin/setsid", "/bin/sh", "-c", "x"]);
  assertEquals(full.command, "ip");
  assertEquals(full.args.slice(0, 7), [
    "netns",
    "exec",
    "mrr-c61207-0",
    "unshare",
    "-m",
    "--propagation",
    "private",
  ]);
  // After the script: root, the kept dirs, the dir to start in, the command.
  assertEquals(full.args.slice(-10), [
    "sh",
    "/w/hosts/0",
    "2",
    "/w/agents/A",
    "/w/data/A",
    "/w/agents/A/sb",
    "/usr/bin/setsid",
    "/bin/sh",
    "-c",
    "x",
  ]);
  const script = full.args[9]!;
  // Every step execs: the pid the agent spawned is the executor's.
  assertMatch(script, /exec chroot "\$R"/);
  assertMatch(script, /mount -t tmpfs/);
  const plain = hostCommand(host, "/w/agents/A/sb", ["/bin/true"], false);
  assertEquals(plain.args.slice(0, 3), ["netns", "exec", "mrr-c61207-0"]);
  assertEquals(plain.args.includes("unshare"), false);
  assertEquals(plain.args.at(-1), "/bin/true");
});

Deno.test("LocalNetwork: a /24 for Master local only; the cluster gets --network", () => {
  const config = parseConfig(`{"Master": "local:3", "LocalNetwork": "198.18.7.0/24"}`);
  assertEquals(config.LocalNetwork, "198.18.7.0/24");
  assertEquals(parseConfig("{}").LocalNetwork, "");
  const cases: [string, RegExp][] = [
    [
      `{"Master": "10.0.0.5:5050", "LocalNetwork": "198.18.7.0/24"}`,
      /field "LocalNetwork" "198\.18\.7\.0\/24" needs Master "local" or "local:N", but got "10\.0\.0\.5:5050"/,
    ],
    [
      `{"LocalNetwork": "198.18.7.0"}`,
      /field "LocalNetwork" must be an IPv4 \/24 subnet written like "198\.18\.7\.0\/24", but got "198\.18\.7\.0"/,
    ],
    [
      `{"LocalNetwork": "198.18.7.0/24", "ArtifactIP": "127.0.0.1"}`,
      /field "ArtifactIP" is the loopback address "127\.0\.0\.1"/,
    ],
    [`{"LocalNetwork": 7}`, /LocalNetwork/],
  ];
  for (const [text, message] of cases) {
    const error = assertThrows(() => parseConfig(text)) as Error;
    assertMatch(error.message, message);
    assertEquals(error.message.includes("\n"), false);
  }
  const flags = clusterFlags({
    workDir: "/w",
    agents: 3,
    portsBase: 31000, // flags only: nothing listens (ports-range-ok)
    portsPerAgent: 10,
    network: "198.18.7.0/24",
  });
  assertEquals(flags.slice(-2), ["--network", "198.18.7.0/24"]);
});
