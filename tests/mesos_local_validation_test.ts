/**
 * ExecutorInfo equality on executor reuse (protocol reference §6 item 11):
 * what Mesos ignores (labels, shutdown grace period, resource order and
 * allocation_info) and what makes two ExecutorInfos differ.
 */
import { assertEquals } from "./_assert.ts";
import { executorsEqual } from "../lib/mesos/local/validation.ts";
import type { ExecutorInfo } from "../lib/mesos/local/messages.ts";

function executor(): ExecutorInfo {
  return {
    type: "CUSTOM",
    executor_id: { value: "e1" },
    framework_id: { value: "f1" },
    name: "mr-redis executor",
    command: {
      value: "./launcher",
      shell: true,
      uris: [{ value: "http://127.0.0.1:1/launcher", executable: true, cache: true }],
      environment: { variables: [{ name: "A", type: "VALUE", value: "1" }] },
    },
    resources: [
      { name: "cpus", type: "SCALAR", scalar: { value: 0.1 } },
      { name: "mem", type: "SCALAR", scalar: { value: 32 } },
    ],
    data: new Uint8Array([1, 2, 3]),
    labels: { labels: [{ key: "k", value: "v" }] },
    shutdown_grace_period: { nanoseconds: 5e9 },
  };
}

Deno.test("executorsEqual ignores what Mesos ignores and finds every other difference", () => {
  const cases: [string, (e: ExecutorInfo) => void, boolean][] = [
    ["identical", () => {}, true],
    ["other labels", (e) => (e.labels = { labels: [] }), true],
    ["no shutdown grace period", (e) => delete e.shutdown_grace_period, true],
    ["resources in another order", (e) => e.resources!.reverse(), true],
    ["allocation_info on resources", (e) => {
      for (const r of e.resources!) r.allocation_info = { role: "*" };
    }, true],
    ["a key set to undefined", (e) => (e.container = undefined), true],
    ["another command", (e) => (e.command!.value = "./other"), false],
    ["another env value", (e) => (e.command!.environment!.variables![0]!.value = "2"), false],
    ["another URI flag", (e) => (e.command!.uris![0]!.cache = false), false],
    ["other data bytes", (e) => (e.data = new Uint8Array([1, 2, 4])), false],
    ["shorter data", (e) => (e.data = new Uint8Array([1, 2])), false],
    ["data missing", (e) => delete e.data, false],
    ["an extra field", (e) => (e.container = { type: "MESOS" }), false],
    ["a number as a string", (e) => (e.resources![0]!.scalar = { value: "0.1" as never }), false],
    ["more cpus", (e) => (e.resources![0]!.scalar = { value: 0.2 }), false],
    ["a resource less", (e) => e.resources!.pop(), false],
  ];
  for (const [what, change, equal] of cases) {
    const changed = executor();
    change(changed);
    assertEquals(executorsEqual(executor(), changed), equal, what);
    assertEquals(executorsEqual(changed, executor()), equal, `${what} (swapped)`);
  }
});
