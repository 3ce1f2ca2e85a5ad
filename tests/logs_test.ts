/**
 * `GET /v1/LOGS/{name}/{processId}`: the executor's bounded tail of a
 * redis-server log, the request checks with their answers, and the pairing
 * of executor answers with waiting requests.
 */
import { assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { MAX_LOG_LINES, readTaskLog, tailLog } from "../lib/executor/log_tail.ts";
import { parseLogsRequest } from "../lib/api/logs.ts";
import { HttpError } from "../lib/api/http_error.ts";
import { LogRequestError, LogRequests } from "../lib/scheduler/log_requests.ts";
import { createApiHandler, type InstanceService } from "../lib/api/handler.ts";

Deno.test("logs: the tail keeps the last lines within the byte bound, never a partial line", async () => {
  const dir = await tempDir("logs-tail");
  try {
    const path = `${dir}/redis-server.log`;
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i + 1} ${"x".repeat(i)}`);
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    assertEquals(await tailLog(path, 3), { lines: lines.slice(-3), truncated: true });
    assertEquals(await tailLog(path, 1000), { lines, truncated: false });
    // 200 bytes hold the last 3 lines (61 to 63 bytes each with the newline) but not 4.
    const bounded = await tailLog(path, 1000, 200);
    assertEquals(bounded, { lines: lines.slice(-3), truncated: true });
    // A file without a final newline keeps its last line.
    await Deno.writeTextFile(path, "a\nb");
    assertEquals(await tailLog(path, 5), { lines: ["a", "b"], truncated: false });
    await Deno.writeTextFile(path, "");
    assertEquals(await tailLog(path, 5), { lines: [], truncated: false });
    // One line longer than the bound: its end.
    await Deno.writeTextFile(path, "y".repeat(500));
    assertEquals(await tailLog(path, 5, 100), { lines: ["y".repeat(100)], truncated: true });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logs: the executor names a missing log and refuses bad names and counts", async () => {
  const dir = await tempDir("logs-read");
  try {
    await Deno.mkdir(`${dir}/d1`);
    await Deno.writeTextFile(`${dir}/d1/redis-server.log`, "ready\n");
    assertEquals(await readTaskLog(dir, "d1", 10), { lines: ["ready"], truncated: false });
    const missing = await assertRejects(() => readTaskLog(dir, "d2", 10));
    assertEquals((missing as Error).message, 'No redis-server log in data dir "d2" on this agent');
    for (const bad of ["..", "a/b", "", 3]) {
      const e = await assertRejects(() => readTaskLog(dir, bad, 10));
      assertMatch((e as Error).message, /^Cannot read a log: bad data dir name /);
    }
    for (const bad of [0, MAX_LOG_LINES + 1, 1.5, "10"]) {
      const e = await assertRejects(() => readTaskLog(dir, "d1", bad));
      assertMatch((e as Error).message, /^Cannot read a log: lines must be a whole number/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logs: bad requests get a 400 naming the part", () => {
  const q = (s = "") => new URLSearchParams(s);
  assertEquals(parseLogsRequest(["c1", "p2"], q()), { name: "c1", procId: "p2", lines: 100 });
  assertEquals(parseLogsRequest(["c1", "p2"], q("lines=1000")).lines, 1000);
  const table: [string[], string, RegExp][] = [
    [["c1"], "", /^LOGS needs \/v1\/LOGS\/\{name\}\/\{processId\}/],
    [["c1", ""], "", /^LOGS needs/],
    [["c1", "1"], "", /^Process id "1" is not valid: expected p1, p2/],
    [["c1", "p0"], "", /^Process id "p0" is not valid/],
    [["c1", "master"], "", /^Process id "master" is not valid/],
    [
      ["c1", "p1"],
      "lines=abc",
      /^Query "lines" must be a whole number from 1 to 1000, but got "abc"$/,
    ],
    [["c1", "p1"], "lines=0", /but got "0"$/],
    [["c1", "p1"], "lines=1001", /but got "1001"$/],
    [["c1", "p1"], "lines=-5", /but got "-5"$/],
    [["c1", "p1"], "lines=2.5", /but got "2.5"$/],
    [["c1", "p1"], "lines=", /but got ""$/],
    [["a b", "p1"], "", /name/],
  ];
  for (const [args, query, want] of table) {
    try {
      parseLogsRequest(args, q(query));
      throw new Error(`accepted ${args.join("/")}?${query}`);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      assertEquals(error.status, 400);
      assertMatch(error.message, want);
    }
  }
});

Deno.test("logs: answers are paired with their request; others pass; silence times out", async () => {
  const requests = new LogRequests();
  const ok = requests.wait("c1", "The executor of p1 on agent A");
  assertEquals(requests.answer({ commandId: "other", ok: true }), false);
  assertEquals(requests.answer({ commandId: "c1", ok: true, lines: ["a", "b"] }), true);
  assertEquals(await ok, { lines: ["a", "b"], truncated: false });
  const refused = requests.wait("c2", "x");
  requests.answer({ commandId: "c2", ok: false, error: "No redis-server log in data dir" });
  const e1 = await assertRejects(() => refused);
  assertEquals((e1 as LogRequestError).kind, "refused");
  const silent = requests.wait("c3", "The executor of p1 on agent A", 50);
  const e2 = await assertRejects(() => silent);
  assertEquals((e2 as Error).message, "The executor of p1 on agent A did not answer within 0.05 s");
  assertEquals((e2 as LogRequestError).kind, "timeout");
  // An answer after the time-out is not one of ours any more.
  assertEquals(requests.answer({ commandId: "c3", ok: true, lines: [] }), false);
});

Deno.test("logs: the API maps every outcome to its status", async () => {
  let next: () => Promise<unknown> = () => Promise.resolve({ missing: "instance" });
  const service = {
    create: () => Promise.resolve("created"),
    delete: () => Promise.resolve(true),
    status: () => undefined,
    list: () => [],
    logs: () => next(),
  } as unknown as InstanceService;
  const api = createApiHandler(service, { log: () => {} });
  const get = async (path: string) => {
    const res = await api(new Request(`http://x${path}`));
    return `${res.status} ${(await res.text()).trim()}`;
  };
  assertEquals(await get("/v1/LOGS/c1/p1"), '404 Instance "c1" not found');
  next = () => Promise.resolve({ missing: "process", known: ["p1", "p2"] });
  assertEquals(
    await get("/v1/LOGS/c1/p9"),
    '404 Process "p9" of instance "c1" not found (it has p1, p2)',
  );
  next = () => Promise.resolve({ unavailable: "never placed", retry: false });
  assertEquals(await get("/v1/LOGS/c1/p1"), "409 never placed");
  next = () => Promise.resolve({ unavailable: "not subscribed", retry: true });
  assertEquals(await get("/v1/LOGS/c1/p1"), "503 not subscribed");
  next = () =>
    Promise.reject(new LogRequestError("The executor did not answer within 5 s", "timeout"));
  assertEquals(
    await get("/v1/LOGS/c1/p1"),
    '504 Cannot read the log of p1 of instance "c1": The executor did not answer within 5 s',
  );
  next = () => Promise.reject(new LogRequestError("No redis-server log", "refused"));
  assertMatch(await get("/v1/LOGS/c1/p1"), /^502 Cannot read the log of p1 of instance "c1": No/);
  next = () => Promise.resolve({ lines: ["l1"], truncated: true, taskId: "c1.p1.1", agentId: "A" });
  assertEquals(
    await get("/v1/LOGS/c1/p1?lines=5"),
    '200 {"Name":"c1","Process":"p1","TaskId":"c1.p1.1","AgentId":"A","Lines":["l1"],"Truncated":true}',
  );
  assertEquals(
    await get("/v1/LOGS/c1/p1?lines=x"),
    '400 Query "lines" must be a whole number from 1 to 1000, but got "x"',
  );
  const post = await api(new Request("http://x/v1/LOGS/c1/p1", { method: "POST" }));
  assertEquals(post.status, 405);
});
