/**
 * Installs the system packages mr-redis needs on a fresh Debian machine.
 *
 * `deno run -A tools/setup.ts start` checks what the scheduler on the embedded
 * defaults needs (redis-server); `deno run -A tools/setup.ts test` what the test
 * suite needs (redis, etcd, ZooKeeper, redis-sentinel); `bench` adds the proxies
 * the benchmarks compare with (nutcracker, HAProxy). Missing
 * packages are installed with apt-get when running as root; otherwise the
 * program stops with one line naming the packages to install.
 *
 * @module
 */

interface Need {
  /** Debian package. */
  pkg: string;
  /** Paths of which at least one must exist once it is installed. */
  paths: string[];
}

const NEEDS: Record<string, Need[]> = {
  start: [
    { pkg: "redis-server", paths: ["/usr/bin/redis-server"] },
    { pkg: "redis-tools", paths: ["/usr/bin/redis-cli"] },
  ],
  test: [
    { pkg: "redis-server", paths: ["/usr/bin/redis-server"] },
    { pkg: "redis-tools", paths: ["/usr/bin/redis-cli"] },
    { pkg: "redis-sentinel", paths: ["/usr/bin/redis-sentinel"] },
    { pkg: "etcd-server", paths: ["/usr/bin/etcd"] },
    { pkg: "zookeeper", paths: ["/usr/share/java/zookeeper.jar"] },
    { pkg: "procps", paths: ["/usr/bin/pgrep"] },
    { pkg: "wrk", paths: ["/usr/bin/wrk"] },
    // promtool checks the /metrics text in the tests.
    { pkg: "prometheus", paths: ["/usr/bin/promtool"] },
    // Agents as hosts of their own: network namespaces, veths, a bridge.
    { pkg: "iproute2", paths: ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] },
  ],
};
NEEDS.bench = [
  ...NEEDS.test!,
  { pkg: "nutcracker", paths: ["/usr/sbin/nutcracker", "/usr/bin/nutcracker"] },
  { pkg: "haproxy", paths: ["/usr/sbin/haproxy", "/usr/bin/haproxy"] },
  // The slow-disk case builds an LD_PRELOAD shim with cc.
  { pkg: "gcc", paths: ["/usr/bin/cc", "/usr/bin/gcc"] },
];

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

async function run(cmd: string, args: string[]): Promise<boolean> {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const child = new Deno.Command(cmd, { args, env, stdout: "inherit", stderr: "inherit" }).spawn();
  return (await child.status).success;
}

/** Installs what `mode` needs; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const mode = args[0] ?? "test";
  const needs = NEEDS[mode];
  if (!needs) {
    console.error(`setup: unknown mode "${mode}"; use one of ${Object.keys(NEEDS).join(", ")}`);
    return 2;
  }
  const missing = needs.filter((n) => !n.paths.some(exists)).map((n) => n.pkg);
  if (missing.length === 0) return 0;
  const isRoot = Deno.uid?.() === 0;
  if (!isRoot) {
    console.error(
      `setup: missing system packages: ${
        missing.join(" ")
      } (install them: sudo apt-get install -y ${missing.join(" ")})`,
    );
    return 1;
  }
  console.error(`setup: installing ${missing.join(" ")} with apt-get`);
  if (!await run("apt-get", ["update", "-qq"])) {
    console.error("setup: apt-get update failed");
    return 1;
  }
  if (!await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing])) {
    console.error(`setup: apt-get install failed for ${missing.join(" ")}`);
    return 1;
  }
  const still = needs.filter((n) => !n.paths.some(exists)).map((n) => n.pkg);
  if (still.length > 0) {
    console.error(`setup: still missing after install: ${still.join(" ")}`);
    return 1;
  }
  // Debian starts the services it installs; tests run their own on other
  // ports, so stop the system ones to free memory and the default ports.
  for (
    const service of [
      "redis-server",
      "redis-sentinel",
      "etcd",
      "zookeeper",
      "haproxy",
      "nutcracker",
      "prometheus",
    ]
  ) {
    await new Deno.Command("sh", {
      args: ["-c", `command -v service >/dev/null && service ${service} stop >/dev/null 2>&1`],
    }).output();
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
