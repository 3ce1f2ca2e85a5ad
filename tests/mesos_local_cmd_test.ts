/** `cmd/mesos_local.ts`: flags, the ready line, clean stop on SIGTERM. */

import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { readRecords } from "../lib/mesos/recordio.ts";

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
