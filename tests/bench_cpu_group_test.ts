/**
 * The benchmarks' CPU accounting (bench/_cpu.ts) against the kernel's own
 * figures: a shell's `times` for its children. Run in a process of its own,
 * because `startInside` moves the whole calling process into the group for a
 * moment, and the tests of other files run in this one.
 */
import { CpuGroup } from "../bench/_cpu.ts";
import { assert, assertEquals } from "./_assert.ts";

/** Whether this machine lets a test make a group and move a process into it. */
async function groupsUsable(): Promise<boolean> {
  const group = CpuGroup.open();
  if (!group) return false;
  const child = new Deno.Command("sleep", { args: ["5"], stdout: "null", stderr: "null" }).spawn();
  try {
    group.add(child.pid);
    return true;
  } catch {
    return false;
  } finally {
    child.kill("SIGKILL");
    await child.status;
    group.close();
  }
}
const usable = await groupsUsable();

const CHILD = `
import { CpuGroup } from ${JSON.stringify(new URL("../bench/_cpu.ts", import.meta.url).href)};
const group = CpuGroup.open();
if (!group) throw new Error(CpuGroup.unavailable);
// A busy loop in a subshell that has exited before the group is read, then
// the children's CPU time as the shell's \`times\` reports it.
const loop = "( i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done ) & wait; times";
const run = () => new Deno.Command("sh", { args: ["-c", loop], stdout: "piped" }).spawn();
const inside = group.startInside(run);
const outside = run();
const [a, b] = await Promise.all([inside.output(), outside.output()]);
const childSeconds = (out: Uint8Array) => {
  const line = new TextDecoder().decode(out).trim().split("\\n").at(-1) ?? "";
  const [user, sys] = [...line.matchAll(/(\\d+)m([\\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return (user ?? NaN) + (sys ?? NaN);
};
const counted = group.seconds();
const before = Deno.readTextFileSync("/proc/self/cgroup");
group.close();
console.log(JSON.stringify({
  counted,
  inside: childSeconds(a.stdout),
  outside: childSeconds(b.stdout),
  cgroupAfterStart: before,
  closedAgain: (() => {
    try {
      group.seconds();
      return "readable";
    } catch {
      return "gone";
    }
  })(),
}));
`;

Deno.test({
  name:
    "bench CPU group: counts the CPU of what it started, exited grandchildren included, and nothing else",
  ignore: !usable,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", CHILD],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert(out.success, `the child failed: ${stderr}`);
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      counted: number;
      inside: number;
      outside: number;
      cgroupAfterStart: string;
      closedAgain: string;
    };
    // The loop took real CPU time, the same amount in and out of the group.
    assert(r.inside >= 0.05 && r.outside >= 0.05, `the loops were too short: ${JSON.stringify(r)}`);
    // Counted: the loop (±10 ms ticks of `times`) plus the shell and a
    // moment of the calling process; not the loop that ran outside.
    assert(
      r.counted >= r.inside - 0.03,
      `counted ${r.counted} s, less than the ${r.inside} s the group's loop used`,
    );
    assert(
      r.counted < r.inside + Math.min(r.outside, r.inside) * 0.5 + 0.03,
      `counted ${r.counted} s: more than the group's loop (${r.inside} s); the outside one (${r.outside} s) leaked in?`,
    );
    // The calling process went back to its own group after the spawn.
    assert(
      !r.cgroupAfterStart.includes("mr-redis-bench-"),
      `still in the group after startInside: ${r.cgroupAfterStart}`,
    );
    // Closing removed the group.
    assertEquals(r.closedAgain, "gone");
  },
});
