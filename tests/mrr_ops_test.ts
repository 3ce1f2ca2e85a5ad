/**
 * `mrr events`, `mrr logs` and the health line of `mrr init`, run in-process
 * against a small stand-in scheduler: output, flag mistakes (exit 2, one
 * line) and refusals (exit 1).
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { run } from "../lib/cli/main.ts";
import { healthLine } from "../lib/cli/init.ts";
import { formatEvent } from "../lib/cli/events.ts";
import type { Context } from "../lib/cli/context.ts";

function capture(env: Record<string, string>): Context & { out: () => string; err: () => string } {
  let out = "";
  let err = "";
  return {
    env: (name: string) => env[name],
    stdout: { write: (t: string) => void (out += t), isTerminal: false },
    stderr: { write: (t: string) => void (err += t), isTerminal: false },
    out: () => out,
    err: () => err,
  } as unknown as Context & { out: () => string; err: () => string };
}

const EVENTS = [
  { Seq: 1, Time: "2026-12-02T01:00:00.000Z", Kind: "created", Message: "Created: MS, 20 MB" },
  {
    Seq: 2,
    Time: "2026-12-02T01:00:03.000Z",
    Kind: "promoted",
    Message: "p2 promoted to master in place of p1 in 1.20 s (epoch 1)",
  },
];

async function withServer(
  fn: (env: Record<string, string>, paths: string[]) => Promise<void>,
): Promise<void> {
  const paths: string[] = [];
  const dir = await Deno.makeTempDir({ prefix: "mrr-ops-" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    paths.push(url.pathname + url.search);
    if (url.pathname === "/v1/EVENTS/c1") return Response.json(EVENTS);
    if (url.pathname === "/v1/LOGS/c1/p1") {
      return Response.json({
        Name: "c1",
        Process: "p1",
        TaskId: "c1.p1.1",
        AgentId: "A",
        Lines: ["1:M 02 Dec 2026 Ready to accept connections tcp"],
        Truncated: true,
      });
    }
    if (url.pathname === "/v1/LOGS/c1/p2") {
      return new Response(
        'Cannot read the log of p2 of instance "c1": No redis-server log in data dir "x" on this agent\n',
        { status: 502 },
      );
    }
    return new Response(`Instance "${url.pathname.split("/")[3]}" not found\n`, { status: 404 });
  });
  try {
    await fn(
      { MRR_ENDPOINT: `http://127.0.0.1:${server.addr.port}`, MRR_CONFIG: `${dir}/mrr.json` },
      paths,
    );
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mrr events prints one line per event; an unknown name exits 1", async () => {
  await withServer(async (env) => {
    const ctx = capture(env);
    assertEquals(await run(["events", "-n", "c1"], ctx), 0, ctx.err());
    assertEquals(ctx.out().split("\n").slice(0, 2), EVENTS.map((e) => formatEvent(e)));
    assertMatch(ctx.out(), /^2026-12-02T01:00:00\.000Z {2}created {3}Created: MS, 20 MB\n/);
    const missing = capture(env);
    assertEquals(await run(["events", "-n", "nope"], missing), 1);
    assertMatch(missing.err(), /^Error: instance "nope" does not exist \(404\)\n/);
  });
});

Deno.test("mrr logs prints the lines; bad flags exit 2 with one line; refusals exit 1", async () => {
  await withServer(async (env, paths) => {
    const ctx = capture(env);
    assertEquals(await run(["logs", "-n", "c1", "-p", "p1", "--lines", "7"], ctx), 0, ctx.err());
    assertEquals(ctx.out(), "1:M 02 Dec 2026 Ready to accept connections tcp\n");
    assertEquals(paths.at(-1), "/v1/LOGS/c1/p1?lines=7");
    const table: [string[], RegExp][] = [
      [["logs", "-n", "c1"], /^Option "-p" \(the process id, e\.g\. p1\) is required\n/],
      [
        ["logs", "-n", "c1", "-p", "x"],
        /^Option "-p" must be a process id such as p1, but got "x"/,
      ],
      [["logs", "-n", "c1", "-p", "p1", "--lines", "abc"], /^Option "--lines" must be a whole/],
      [["logs", "-n", "c1", "-p", "p1", "--lines", "1001"], /but got "1001"/],
      [["logs", "-p", "p1"], /-n/],
    ];
    for (const [args, want] of table) {
      const bad = capture(env);
      assertEquals(await run(args, bad), 2, args.join(" "));
      assertMatch(bad.err(), want);
    }
    const refused = capture(env);
    assertEquals(await run(["logs", "-n", "c1", "-p", "p2"], refused), 1);
    assertMatch(
      refused.err(),
      /^Error: the scheduler failed: Cannot read the log of p2 of instance "c1": No redis-server log/,
    );
  });
});

Deno.test("mrr init's health line says OK or what is unavailable", () => {
  assertEquals(
    healthLine({ Status: "OK", Role: "leader", Mesos: "subscribed", Store: "reachable" }),
    "Health: OK (role leader, Mesos subscribed, store reachable)",
  );
  assertEquals(
    healthLine({ Status: "UNAVAILABLE", Role: "leader", Mesos: "connecting", Store: "reachable" }),
    "Health: UNAVAILABLE (role leader, Mesos connecting, store reachable); it cannot create or heal instances until this clears",
  );
});
