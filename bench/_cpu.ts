/**
 * The CPU time of a group of processes and of everything they start, read
 * from the kernel's CPU accounting of a control group made for it (cgroup
 * v1 `cpuacct`, or cgroup v2). Unlike sampling `/proc/<pid>/stat`, it is
 * exact (nanoseconds or microseconds, not 10 ms ticks), and it keeps the CPU
 * of processes that have exited meanwhile: the BGSAVE forks of a master, a
 * shell that ran for a moment.
 *
 * The benchmarks use it to report the CPU-seconds of a create next to its
 * wall time: on a machine whose cores are all busy through a create, the
 * wall time follows the CPU-seconds, and the split between the processes
 * says where the work went. They are not steadier than the wall time: a
 * busier machine makes the same work cost more CPU as well (one run's cold
 * create took 2.93 CPU-s, another's on a slower hour 3.35).
 *
 * Needs permission to make a control group (root, as on the CI machines).
 * {@linkcode CpuGroup.open} returns `undefined`, with the reason in
 * {@linkcode CpuGroup.unavailable}, where that is not possible.
 *
 * @module
 */

interface Hierarchy {
  /** Mount point of the hierarchy. */
  root: string;
  /** This process's control group in it, relative to `root`. */
  own: string;
  /** Reads a group's CPU use in seconds. */
  usage(dir: string): number;
}

function v1Usage(dir: string): number {
  return Number(Deno.readTextFileSync(`${dir}/cpuacct.usage`).trim()) / 1e9;
}

function v2Usage(dir: string): number {
  const line = Deno.readTextFileSync(`${dir}/cpu.stat`).split("\n")
    .find((l) => l.startsWith("usage_usec "));
  if (!line) throw new Error(`${dir}/cpu.stat has no usage_usec line`);
  return Number(line.slice("usage_usec ".length)) / 1e6;
}

/** This process's group in the v1 hierarchy of `controller`, or in the v2 one (`controller` ""). */
function ownGroup(controller: string): string | undefined {
  for (const line of Deno.readTextFileSync("/proc/self/cgroup").split("\n")) {
    const [, controllers, path] = line.match(/^\d+:([^:]*):(.*)$/) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controller === "" ? controllers === "" : controllers.split(",").includes(controller)) {
      return path;
    }
  }
  return undefined;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Where each kind of hierarchy may be mounted, the file that marks it, and its counter. */
const KINDS = [
  // v1 `cpuacct` first: its counter has nanoseconds.
  {
    controller: "cpuacct",
    roots: ["/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"],
    marker: "cpuacct.usage",
    usage: v1Usage,
  },
  {
    controller: "",
    roots: ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"],
    marker: "cgroup.controllers",
    usage: v2Usage,
  },
];

/** The hierarchies to try, in the order of {@linkcode KINDS}. */
function hierarchies(): Hierarchy[] {
  const found: Hierarchy[] = [];
  for (const kind of KINDS) {
    const own = ownGroup(kind.controller);
    const root = own === undefined
      ? undefined
      : kind.roots.find((r) => isFile(`${r}/${kind.marker}`));
    if (own !== undefined && root !== undefined) found.push({ root, own, usage: kind.usage });
  }
  return found;
}

let made = 0;

/** A control group counting the CPU of the processes put in it and of their descendants. */
export class CpuGroup {
  /** Why the last {@linkcode CpuGroup.open} returned `undefined`. */
  static unavailable = "";

  readonly #dir: string;
  readonly #home: string;
  readonly #usage: (dir: string) => number;
  #closed = false;

  private constructor(dir: string, home: string, usage: (dir: string) => number) {
    this.#dir = dir;
    this.#home = home;
    this.#usage = usage;
  }

  /** Makes a new group; `undefined` when no hierarchy lets this process make one. */
  static open(): CpuGroup | undefined {
    if (Deno.build.os !== "linux") {
      CpuGroup.unavailable = `no control groups on ${Deno.build.os}`;
      return undefined;
    }
    const reasons: string[] = [];
    let all: Hierarchy[];
    try {
      all = hierarchies();
    } catch (error) {
      CpuGroup.unavailable = `cannot read /proc/self/cgroup: ${(error as Error).message}`;
      return undefined;
    }
    for (const h of all) {
      const dir = `${h.root}/mr-redis-bench-${Deno.pid}-${++made}`;
      try {
        Deno.mkdirSync(dir);
      } catch (error) {
        reasons.push(`cannot make ${dir}: ${(error as Error).message}`);
        continue;
      }
      const group = new CpuGroup(dir, `${h.root}${h.own === "/" ? "" : h.own}`, h.usage);
      try {
        group.seconds();
        return group;
      } catch (error) {
        reasons.push(`cannot read the CPU use of ${dir}: ${(error as Error).message}`);
        group.close();
      }
    }
    CpuGroup.unavailable = reasons.length > 0
      ? reasons.join("; ")
      : "no cgroup v1 cpuacct or cgroup v2 hierarchy mounted under /sys/fs/cgroup";
    return undefined;
  }

  /** The group's directory. */
  toString(): string {
    return this.#dir;
  }

  /** Puts process `pid` (all its threads) in the group; what it starts from now on is counted too. */
  add(pid: number): void {
    Deno.writeTextFileSync(`${this.#dir}/cgroup.procs`, `${pid}\n`);
  }

  /**
   * Runs `start` (synchronous: the spawns of the processes to count) with
   * this process in the group, so that each child is in it from its first
   * instruction; this process's own CPU meanwhile is counted as well.
   */
  startInside<T>(start: () => T): T {
    this.add(Deno.pid);
    try {
      return start();
    } finally {
      this.#moveHome(Deno.pid);
    }
  }

  /** Puts process `pid` back in the group this process came from. */
  #moveHome(pid: number): void {
    Deno.writeTextFileSync(`${this.#home}/cgroup.procs`, `${pid}\n`);
  }

  /** CPU-seconds used so far by the processes that were ever in the group, exited ones included. */
  seconds(): number {
    return this.#usage(this.#dir);
  }

  /** Moves what is still in the group back where this process lives, and removes the group. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      const left = Deno.readTextFileSync(`${this.#dir}/cgroup.procs`).split("\n").filter(Boolean);
      for (const pid of left) {
        try {
          this.#moveHome(Number(pid));
        } catch { /* exited meanwhile */ }
      }
      Deno.removeSync(this.#dir);
    } catch { /* already gone */ }
  }
}
