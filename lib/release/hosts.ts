/**
 * Where agents run relative to the scheduler, and the address they reach it
 * at: pure helpers for the config checks and the `ArtifactIP` default.
 *
 * @module
 */

/**
 * Whether every agent of `master` runs on this host: the local cluster
 * (`local`, `local:N`) unless its agents are hosts of their own
 * (`localNetwork`, config `LocalNetwork`), or masters on loopback addresses
 * (a master bound to loopback can only have agents on its own host).
 */
export function agentsShareHost(master: string, localNetwork = ""): boolean {
  if (/^local(:\d+)?$/.test(master)) return localNetwork === "";
  if (/^zk:\/\//i.test(master)) return false;
  const hosts = master.split(",").map((entry) =>
    entry.trim().replace(/^https?:\/\//i, "").replace(/^master@/, "").replace(/\/.*$/, "")
  );
  return hosts.length > 0 && hosts.every((hostPort) => isLoopback(hostOf(hostPort)));
}

function hostOf(hostPort: string): string {
  const bracket = /^\[([^\]]+)\]/.exec(hostPort);
  if (bracket) return bracket[1]!;
  const colons = hostPort.split(":").length - 1;
  return colons === 1 ? hostPort.slice(0, hostPort.indexOf(":")) : hostPort;
}

/** Whether `host` is a loopback address or `localhost`. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) ||
    h === "::1" || h === "0:0:0:0:0:0:0:1";
}

/** A network interface, as `Deno.networkInterfaces()` lists it. */
export interface Interface {
  /** `IPv4` or `IPv6`. */
  family: string;
  /** The address. */
  address: string;
}

/**
 * The address agents on other hosts reach this host at: the first IPv4
 * address that is neither loopback nor link-local; `undefined` when none.
 */
export function pickHostAddress(interfaces: readonly Interface[]): string | undefined {
  return interfaces.find((i) =>
    i.family === "IPv4" && !isLoopback(i.address) && !i.address.startsWith("169.254.")
  )?.address;
}

/**
 * The effective `ArtifactIP`: the configured one, else `127.0.0.1` when the
 * agents share this host, else the bridge address (`.1`) of a multi-host
 * local cluster's `localNetwork`, else {@linkcode pickHostAddress}.
 */
export function artifactAddress(
  configured: string,
  master: string,
  interfaces: () => readonly Interface[],
  localNetwork = "",
): string | undefined {
  if (configured !== "") return configured;
  if (agentsShareHost(master, localNetwork)) return "127.0.0.1";
  if (/^local(:\d+)?$/.test(master)) {
    return localNetwork.trim().replace(/\.0\/24$/, ".1");
  }
  return pickHostAddress(interfaces());
}
