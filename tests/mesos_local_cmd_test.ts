/** `cmd/mesos_local.ts`: flags, the ready line, clean stop on SIGTERM. */

import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { readRecords } from "../lib/mesos/recordio.ts";
import {
  type ClusterState,
  findLocalCluster,
  stopLocalCluster,
} from "../lib/mesos/local/daemon.ts";
import { collectSandboxes } from "../lib/mesos/local/sandbox_gc.ts";
import { waitFor } from "./_util.ts";
import { reservePortRange } from "./_ports.ts";

const CMD = new URL("../cmd/mesos_local.ts", import.meta.url).pathname;

Deno.test("mesos_local rejects a bad flag with exit code 2 and one line naming it", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CMD, "--agents", "x"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  const err = new TextDecoder().decode(out.stderr).trim();
  assertEquals(err.split("\n").length, 1);
  assertMatch(err, /"--agents".*"x"/);
});

Deno.test("mesos_local rejects bad --reserved values with exit code 2 and one line", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--reserved", "cpus:1"],
      /"--reserved" of agent 0: Resource entry "cpus:1" reserves for no role/,
    ],
    [
      ["--reserved", "5=cpus(redis):1"],
      /"5=cpus\(redis\):1" name agent 5, but there are 3 agent\(s\)/,
    ],
    [
      [
        "--ports-base",
        "31000",
        "--ports-per-agent",
        "100",
        "--reserved",
        "1=ports(redis):[31000-31001]",
      ],
      /"--reserved" of agent 1: The agent reserves ports outside its range 31100-31199/,
    ],
    [["--reserved", "0=mem(a):1", "--reserved", "0=mem(b):1"], /for agent 0 are given twice/],
  ];
  for (const [flags, want] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CMD, ...flags],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 2, flags.join(" "));
    const err = new TextDecoder().decode(out.stderr).trim();
    assertEquals(err.split("\n").length, 1, err);
    assertMatch(err, want);
  }
});

Deno.test("mesos_local --help and -h print the usage and exit 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CMD, flag],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, flag);
    const text = new TextDecoder().decode(out.stdout);
    assertMatch(text, /^Usage: mesos_local /);
    assertMatch(text, /--ports-base P/);
    assertEquals(new TextDecoder().decode(out.stderr), "");
  }
});

Deno.test("mesos_local prints the master URL when ready and stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CMD, "--agents", "1", "--port", "0"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const url = text.trim();
  assertMatch(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const res = await fetch(`${url}/api/v1/scheduler`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      type: "SUBSCRIBE",
      subscribe: { framework_info: { user: "u", name: "n" } },
    }),
  });
  assertEquals(res.status, 200);
  for await (const record of readRecords(res.body!)) {
    assertEquals(JSON.parse(new TextDecoder().decode(record)).type, "SUBSCRIBED");
    break;
  }
  child.kill("SIGTERM");
  const status = await child.status;
  assert(status.success, `exit ${status.code}`);
  await reader.cancel();
});

Deno.test("mesos_local with --work-dir: state file, one cluster per dir, stop, same agents again", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "mesos-local-cmd-" });
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CMD, ...args],
      stdout: "piped",
      stderr: "piped",
    });
  const range = reservePortRange(2000);
  const base = String(range.base);
  const start = () =>
    run(["--agents", "2", "--port", "0", "--work-dir", dir, "--ports-base", base]).spawn();
  const text = (out: Deno.CommandOutput) =>
    new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  let child = start();
  try {
    let first!: ClusterState;
    await t.step("the running cluster is found through cluster.json", async () => {
      first = await waitFor("cluster.json", () => findLocalCluster(dir), { timeoutMs: 30_000 });
      assertEquals(first.pid, child.pid);
      assertEquals(first.agents.map((a) => a.ports), [
        { begin: range.base, end: range.base + 999 },
        { begin: range.base + 1000, end: range.base + 1999 },
      ]);
    });
    await t.step("a second cluster on the same dir is refused", async () => {
      const out = await run(["--agents", "2", "--work-dir", dir, "--ports-base", base])
        .output();
      assertEquals(out.code, 1);
      assertMatch(text(out), /already runs in .*pid \d+.*mesos_local stop --work-dir/);
    });
    await t.step("stop ends it and removes cluster.json; a second stop finds none", async () => {
      const out = await run(["stop", "--work-dir", dir]).output();
      assertEquals(out.code, 0, text(out));
      assertMatch(text(out), new RegExp(`Stopped the local cluster in .* \\(pid ${first.pid}\\)`));
      assert((await child.status).success);
      assertEquals(await findLocalCluster(dir), undefined);
      await assertRejects(() => Deno.stat(`${dir}/cluster.json`), "cluster.json removed");
      const again = await run(["stop", "--work-dir", dir]).output();
      assertEquals(again.code, 0);
      assertMatch(text(again), /No local cluster runs/);
    });
    await t.step("started again, the agents keep their ids", async () => {
      child = start();
      const second = await waitFor("cluster.json", () => findLocalCluster(dir), {
        timeoutMs: 30_000,
      });
      assert(second.pid !== first.pid);
      assertEquals(second.agents, first.agents);
    });
    await t.step("stop without --work-dir is a usage error", async () => {
      const out = await run(["stop"]).output();
      assertEquals(out.code, 2);
      assertMatch(text(out), /"--work-dir" is needed/);
    });
  } finally {
    await stopLocalCluster(dir).catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    range.release();
  }
});

Deno.test("collectSandboxes removes only executor runs older than the delay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sandbox-gc-" });
  try {
    const runs = `${dir}/agents/A/frameworks/F/executors/E/runs`;
    await Deno.mkdir(`${runs}/old/data`, { recursive: true });
    await Deno.mkdir(`${runs}/new`, { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    await Deno.utime(`${runs}/old`, twoDaysAgo, twoDaysAgo);
    assertEquals(await collectSandboxes(dir, 86_400_000), 1);
    assertEquals([...Deno.readDirSync(runs)].map((e) => e.name), ["new"]);
    assertEquals(await collectSandboxes(`${dir}/missing`, 0), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
