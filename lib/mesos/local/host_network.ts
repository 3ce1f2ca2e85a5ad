/**
 * Agents of the local cluster as hosts of their own (Linux, root): each
 * agent gets a network namespace with one address on a private IPv4 /24,
 * joined by a veth pair to a bridge in the cluster's namespace (the bridge
 * holds `.1`, agent i holds `.(10+i)`), and its processes run in a mount
 * namespace whose root is made of the system directories alone (`/usr`,
 * `/bin`, `/sbin`, `/lib*`, `/etc`, `/dev`, `/proc`, `/sys`), an empty `/tmp`
 * and `/root`, and that agent's own sandboxes and data dir at their usual
 * paths: the source tree, the scheduler's work directory, other agents'
 * files and the Deno cache are not there.
 *
 * Names derive from the subnet (`198.18.7.0/24` → tag `c61207`): bridge
 * `mrrc61207`, veth `mrrc61207h<i>` on the bridge side, namespace
 * `mrr-c61207-<i>`. The bridge's alias names the pid (and start time) of the
 * cluster that owns it, so a cluster that died without cleaning up is
 * cleaned up by the next one (or {@linkcode removeHostNetwork}), and a live
 * one is never taken over.
 *
 * @module
 */

import { processStartTime } from "./daemon.ts";

/** The plan of a multi-host network: addresses and names, from its subnet. */
export interface HostNetwork {
  /** The subnet as given, normalised (`198.18.7.0/24`). */
  subnet: string;
  /** The first three octets (`198.18.7`). */
  prefix: string;
  /** Six hex digits naming the network's links and namespaces. */
  tag: string;
  /** The bridge (in the cluster's namespace). */
  bridge: string;
  /** The bridge's address, where agents reach the cluster and the scheduler (`.1`). */
  bridgeAddress: string;
}

/** Most agents one network holds (`.10` to `.249`). */
export const MAX_HOST_AGENTS = 240;

/**
 * Parses an IPv4 `/24` subnet written `a.b.c.0/24`; throws a `TypeError`
 * naming `what` and the value when it is not one or is loopback, link-local,
 * multicast or `0.x`.
 */
export function parseHostNetwork(cidr: string, what = "The network"): HostNetwork {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.0\/24$/.exec(cidr.trim());
  const octets = m ? [m[1], m[2], m[3]].map(Number) : [];
  if (!m || octets.some((o) => o > 255)) {
    throw new TypeError(
      `${what} must be an IPv4 /24 subnet written like "198.18.7.0/24", but got "${cidr}"`,
    );
  }
  const [a, b, c] = octets as [number, number, number];
  if (a === 0 || a === 127 || a >= 224 || (a === 169 && b === 254)) {
    throw new TypeError(
      `${what} must be a private or test subnet such as "198.18.7.0/24" (not loopback, link-local, multicast or 0.x), but got "${cidr}"`,
    );
  }
  const tag = [a, b, c].map((o) => o.toString(16).padStart(2, "0")).join("");
  return {
    subnet: `${a}.${b}.${c}.0/24`,
    prefix: `${a}.${b}.${c}`,
    tag,
    bridge: `mrr${tag}`,
    bridgeAddress: `${a}.${b}.${c}.1`,
  };
}

/** The address of agent `index` (`.(10+index)`). */
export function agentAddress(net: HostNetwork, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_HOST_AGENTS) {
    throw new RangeError(`Agent index ${index} is out of range 0..${MAX_HOST_AGENTS - 1}`);
  }
  return `${net.prefix}.${10 + index}`;
}

/** The network namespace of agent `index`. */
export function agentNamespace(net: HostNetwork, index: number): string {
  return `mrr-${net.tag}-${index}`;
}

/** The bridge-side veth of agent `index`: `ip link set <it> down` cuts the agent off. */
export function agentLink(net: HostNetwork, index: number): string {
  return `mrr${net.tag}h${index}`;
}

async function ip(args: string[], allowFailure = false): Promise<string> {
  const out = await new Deno.Command("ip", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success && !allowFailure) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`"ip ${args.join(" ")}" failed: ${err || `exit code ${out.code}`}`);
  }
  return text;
}

async function linkNames(): Promise<string[]> {
  const list = JSON.parse(await ip(["-j", "link", "show"]) || "[]") as { ifname: string }[];
  return list.map((l) => l.ifname);
}

async function namespaces(): Promise<string[]> {
  return (await ip(["netns", "list"], true)).split("\n").map((l) => l.split(" ")[0]!).filter(
    (n) => n !== "",
  );
}

/**
 * Why this machine cannot run a multi-host cluster (not root, no `ip`,
 * `unshare` or `chroot`, namespaces refused), or `undefined` when it can.
 * Tries a namespace of its own and removes it.
 */
export async function hostNetworkUnavailable(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (typeof Deno.uid === "function" && Deno.uid() !== 0) return "network namespaces need root";
  for (const tool of ["ip", "unshare", "chroot"]) {
    try {
      const out = await new Deno.Command("sh", {
        args: ["-c", `command -v ${tool}`],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!out.success) return `"${tool}" is not installed`;
    } catch (error) {
      return `cannot run sh: ${(error as Error).message}`;
    }
  }
  // A namespace, a veth pair into it and a mount namespace with a tmpfs:
  // what a host needs, tried on a throwaway one.
  const tag = `${Deno.pid % 100000}${Math.floor(Math.random() * 100)}`;
  const probe = `mrr-probe-${tag}`;
  const link = `mrrp${tag}`;
  let dir: string | undefined;
  try {
    await ip(["netns", "add", probe]);
    await ip(["-n", probe, "link", "set", "lo", "up"]);
    await ip(["link", "add", link, "type", "veth", "peer", "name", `${link}n`, "netns", probe]);
    dir = await Deno.makeTempDir({ prefix: "mrr-probe-" });
    const mount = await new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        probe,
        "unshare",
        "-m",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        'mount -t tmpfs mrr-probe "$1"',
        "sh",
        dir,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!mount.success) {
      return `a mount namespace cannot be made: ${
        new TextDecoder().decode(mount.stderr).trim() || `exit code ${mount.code}`
      }`;
    }
    return undefined;
  } catch (error) {
    return (error as Error).message;
  } finally {
    await ip(["link", "del", link], true);
    await ip(["netns", "del", probe], true);
    if (dir) await Deno.remove(dir).catch(() => {});
  }
}

/** Pid and start time of the cluster that owns the network (the bridge's alias). */
async function owner(net: HostNetwork): Promise<{ pid: number; start: string } | undefined> {
  const out = await ip(["-j", "link", "show", "dev", net.bridge], true);
  if (!out.trim()) return undefined;
  const alias = (JSON.parse(out) as { ifalias?: string }[])[0]?.ifalias ?? "";
  const m = /pid=(\d+) start=(\S+)/.exec(alias);
  return m ? { pid: Number(m[1]), start: m[2]! } : { pid: 0, start: "" };
}

/**
 * Creates the bridge and one namespace, veth pair and address per agent;
 * owned by this process. A network of the same subnet left by a cluster that
 * is gone is removed first; one whose owner still runs is refused.
 */
export async function createHostNetwork(net: HostNetwork, agents: number): Promise<void> {
  if (agents > MAX_HOST_AGENTS) {
    throw new RangeError(`A multi-host cluster holds at most ${MAX_HOST_AGENTS} agents`);
  }
  const was = await owner(net);
  if (was) {
    if (was.pid > 0 && processStartTime(was.pid) === was.start) {
      throw new Error(
        `The network ${net.subnet} is in use by the local cluster of pid ${was.pid} (bridge ${net.bridge}); stop it or choose another subnet`,
      );
    }
    await removeHostNetwork(net);
  }
  try {
    await ip(["link", "add", net.bridge, "type", "bridge"]);
    await ip([
      "link",
      "set",
      "dev",
      net.bridge,
      "alias",
      `mrr-local pid=${Deno.pid} start=${processStartTime(Deno.pid) ?? ""}`,
    ]);
    await ip(["addr", "add", `${net.bridgeAddress}/24`, "dev", net.bridge]);
    await ip(["link", "set", net.bridge, "up"]);
    for (let i = 0; i < agents; i++) await addHost(net, i);
  } catch (error) {
    await removeHostNetwork(net);
    throw error;
  }
}

/**
 * Adds host `index` to the network of `net` (whose bridge must exist): its
 * namespace, veth pair and address `.(10+index)`, with a default route via
 * the bridge. Tests use indexes past the agents' for hosts of their own (a
 * store, a scheduler); {@linkcode removeHostNetwork} removes them too.
 */
export async function addHost(net: HostNetwork, index: number): Promise<void> {
  const ns = agentNamespace(net, index);
  const link = agentLink(net, index);
  const peer = `mrr${net.tag}n${index}`;
  await ip(["netns", "add", ns]);
  await ip(["link", "add", link, "type", "veth", "peer", "name", peer, "netns", ns]);
  await ip(["link", "set", link, "master", net.bridge, "up"]);
  await ip(["-n", ns, "link", "set", peer, "name", "eth0"]);
  await ip(["-n", ns, "addr", "add", `${agentAddress(net, index)}/24`, "dev", "eth0"]);
  await ip(["-n", ns, "link", "set", "eth0", "up"]);
  await ip(["-n", ns, "link", "set", "lo", "up"]);
  await ip(["-n", ns, "route", "add", "default", "via", net.bridgeAddress]);
}

/**
 * Removes the network of `net`: every process left in its namespaces is
 * SIGKILLed, then the namespaces, veths and bridge are deleted. Idempotent;
 * never throws for what is already gone.
 */
export async function removeHostNetwork(net: HostNetwork): Promise<void> {
  const ours = (await namespaces()).filter((n) => n.startsWith(`mrr-${net.tag}-`));
  for (const ns of ours) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const pids = (await ip(["netns", "pids", ns], true)).split("\n").map(Number).filter((p) =>
        Number.isInteger(p) && p > 0
      );
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // gone
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (const name of await linkNames()) {
    if (name.startsWith(`mrr${net.tag}h`)) await ip(["link", "del", name], true);
  }
  for (const ns of ours) await ip(["netns", "del", ns], true);
  await ip(["link", "del", net.bridge], true);
}

/**
 * Builds the root of an agent's host in `root` (an empty directory, mounted
 * over with a tmpfs inside the new mount namespace) and runs the command
 * there: `$1` root, `$2` the number of kept directories, then those
 * directories, then the directory to start in, then the command.
 */
const HOST_SCRIPT = `set -e
R="$1"; n="$2"; shift 2
mount -t tmpfs -o mode=755 mrr-host "$R"
for d in /usr /bin /sbin /lib /lib32 /lib64 /libx32 /etc; do
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "$R$d"
  elif [ -d "$d" ]; then mkdir -p "$R$d"; mount --rbind "$d" "$R$d"; fi
done
for d in /dev /proc /sys; do mkdir -p "$R$d"; mount --rbind "$d" "$R$d"; done
mkdir -p "$R/tmp" "$R/root"; chmod 1777 "$R/tmp"
while [ "$n" -gt 0 ]; do mkdir -p "$1" "$R$1"; mount --rbind "$1" "$R$1"; shift; n=$((n-1)); done
dir="$1"; shift
cd /
exec chroot "$R" /bin/sh -c 'cd "$1"; shift; exec "$@"' sh "$dir" "$@"`;

/** Where and how one agent's processes run as a host of their own. */
export interface AgentHost {
  /** Its network namespace. */
  namespace: string;
  /** An empty directory the host's root is built on (inside its mount namespace). */
  root: string;
  /** Directories of this agent kept visible at their paths (sandboxes, data). */
  keep: string[];
}

/**
 * The command line that runs `argv` in `cwd` on an agent's host: its
 * network namespace, a mount namespace of its own and the root described in
 * the module doc (with `isolate: false`, the network namespace alone). The
 * process keeps its pid through every step (`ip netns exec`, `unshare`,
 * `chroot` all exec).
 */
export function hostCommand(
  host: AgentHost,
  cwd: string,
  argv: string[],
  isolate = true,
): { command: string; args: string[] } {
  if (!isolate) {
    return {
      command: "ip",
      args: [
        "netns",
        "exec",
        host.namespace,
        "/bin/sh",
        "-c",
        'cd "$1"; shift; exec "$@"',
        "sh",
        cwd,
        ...argv,
      ],
    };
  }
  return {
    command: "ip",
    args: [
      "netns",
      "exec",
      host.namespace,
      "unshare",
      "-m",
      "--propagation",
      "private",
      "/bin/sh",
      "-c",
      HOST_SCRIPT,
      "sh",
      host.root,
      String(host.keep.length),
      ...host.keep,
      cwd,
      ...argv,
    ],
  };
}

/**
 * Whether the host at `address` answers on the network within `timeoutMs`:
 * a TCP connection to its port 9 is either accepted or refused by its kernel
 * (both are answers); a time-out or an unreachable route is not.
 */
export async function hostAnswers(address: string, timeoutMs: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname: address, port: 9 }).then(
    (conn) => {
      conn.close();
      return true;
    },
    (error) => error instanceof Deno.errors.ConnectionRefused,
  );
  const late = new Promise<boolean>((resolve) =>
    timer = setTimeout(() => resolve(false), timeoutMs)
  );
  try {
    return await Promise.race([attempt, late]);
  } finally {
    clearTimeout(timer);
  }
}
