/**
 * The REST API handler, called in-process with `new Request(...)`, over the
 * real scheduler core and the embedded store (no Mesos attached).
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { createApiHandler } from "../lib/api/handler.ts";
import { Scheduler } from "../lib/scheduler/core.ts";
import { buildExecutorInfo } from "../lib/scheduler/tasks.ts";
import { DEFAULT_RESOURCES } from "../lib/scheduler/match.ts";
import { openStore } from "../lib/store/mod.ts";

async function setup() {
  const dir = await tempDir("api");
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  const logs: string[] = [];
  const core = new Scheduler({
    store,
    prefix: "/mr-redis",
    executorInfo: buildExecutorInfo({
      artifactUrl: "http://127.0.0.1:1",
      shipsRedisServer: false,
      resources: DEFAULT_RESOURCES,
    }),
    tickMs: 0,
    log: (l) => logs.push(l),
  });
  await core.load();
  const handler = createApiHandler(core, { log: (l) => logs.push(l) });
  const call = async (method: string, path: string, body?: string, headers?: HeadersInit) => {
    const res = await handler(
      new Request(`http://api${path}`, {
        method,
        ...(body !== undefined ? { body } : {}),
        ...(headers ? { headers } : {}),
      }),
    );
    return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
  };
  return {
    call,
    store,
    logs,
    async close() {
      await core.stop();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("API answers every bad request with a 4xx naming what was wrong", async (t) => {
  const api = await setup();
  try {
    const cases: [string, string, number, RegExp, string?][] = [
      ["POST", "/v1/CREATE/a%2Fb/100/1/0", 400, /"name"/],
      ["POST", "/v1/CREATE/a/b/100/1/0", 400, /"name".*"a\/b"/],
      ["POST", "/v1/CREATE/a::b/100/1/0", 400, /"name"/],
      ["POST", "/v1/CREATE/a%20b/100/1/0", 400, /"name"/],
      ["POST", `/v1/CREATE/${"x".repeat(65)}/100/1/0`, 400, /"name"/],
      ["POST", "/v1/CREATE/ok/0/1/0", 400, /"capacity".*"0"/],
      ["POST", "/v1/CREATE/ok/-1/1/0", 400, /"capacity".*"-1"/],
      ["POST", "/v1/CREATE/ok/abc/1/0", 400, /"capacity".*"abc"/],
      ["POST", "/v1/CREATE/ok/1.5/1/0", 400, /"capacity"/],
      ["POST", "/v1/CREATE/ok/99999999999999999999/1/0", 400, /"capacity"/],
      ["POST", "/v1/CREATE/ok/100/1/-1", 400, /"slaves".*"-1"/],
      ["POST", "/v1/CREATE/ok/100/1/abc", 400, /"slaves".*"abc"/],
      ["POST", "/v1/CREATE/ok/100/1/101", 400, /"slaves"/],
      [
        "POST",
        "/v1/CREATE/ok/100/2/0",
        400,
        /masters must be 1; Redis Cluster is not supported yet/,
      ],
      ["POST", "/v1/CREATE/ok/100/0/0", 400, /masters must be 1/],
      ["POST", "/v1/CREATE/ok/100/x/0", 400, /masters must be 1/],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /Body must be a JSON object/, "{broken"],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /Body must be a JSON object/, "[1]"],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution".*0/, '{"Distribution":0}'],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution"/, '{"Distribution":"two"}'],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution"/, '{"Distribution":1.5}'],
      ["POST", "/v1/CREATE/ok/100/1", 400, /CREATE needs/],
      ["GET", "/v1/CREATE/ok/100/1/0", 405, /use POST/],
      ["POST", "/v1/STATUS/ok", 405, /use GET/],
      ["GET", "/v1/DELETE/ok", 405, /use DELETE/],
      ["GET", "/v2/STATUS", 404, /No such route/],
      ["GET", "/nope", 404, /No such route/],
      ["GET", "/v1/NOPE/x", 404, /No such route/],
      ["GET", "/v1/STATUS/unknown", 404, /"unknown" not found/],
      ["DELETE", "/v1/DELETE/unknown", 404, /"unknown" not found/],
      ["GET", "/v1/STATUS/bad%20name", 400, /"name"/],
    ];
    for (const [method, path, status, pattern, body] of cases) {
      await t.step(`${method} ${path.slice(0, 60)} ${body ?? ""}`, async () => {
        const res = await api.call(method, path, body);
        assertEquals(res.status, status, `${method} ${path}: ${res.text}`);
        assertMatch(res.text, pattern);
        assertEquals(res.text.trim().split("\n").length, 1, "one line");
      });
    }
    assertEquals((await api.call("GET", "/v1/STATUS")).text, "[]", "nothing was created");
  } finally {
    await api.close();
  }
});

Deno.test("API creates, lists, refuses duplicates and deletes", async () => {
  const api = await setup();
  try {
    let res = await api.call("POST", "/v1/CREATE/cache-1/100/1/2", "", {
      "content-type": "application/json",
    });
    assertEquals(res.status, 201, res.text);
    assertEquals(res.text.trim(), "Request Accepted, Instance will be created.");
    res = await api.call("POST", "/v1/CREATE/single_1/64/1/0", '{"Distribution": 2}');
    assertEquals(res.status, 201, res.text);
    res = await api.call("POST", "/v1/CREATE/cache-1/100/1/0");
    assertEquals(res.status, 409);
    assertMatch(res.text, /"cache-1" already exists/);

    res = await api.call("GET", "/v1/STATUS/cache-1");
    assertEquals(res.status, 200);
    assertEquals(res.type, "application/json");
    const one = JSON.parse(res.text);
    assertEquals(one.Name, "cache-1");
    assertEquals(one.Type, "MS");
    assertEquals(one.Status, "CREATING");
    assertEquals(one.Capacity, 100);
    assertEquals(one.Master, null);
    assertEquals(one.Slaves, []);
    assertEquals(one.ProcessesTotal, 3);
    assert(typeof one.Reason === "string" && one.Reason.length > 0);

    const list = JSON.parse((await api.call("GET", "/v1/STATUS")).text);
    assertEquals(list.map((i: { Name: string }) => i.Name), ["cache-1", "single_1"]);
    assertEquals(list[1].Type, "S");
    assertEquals(list[1].Distribution, 2);

    // Deleting a CREATING instance works; with nothing launched it goes at once.
    res = await api.call("DELETE", "/v1/DELETE/cache-1");
    assertEquals(res.status, 200, res.text);
    // The core finishes the deletion in its queue; poll briefly.
    for (let i = 0; i < 50 && (await api.call("GET", "/v1/STATUS/cache-1")).status !== 404; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals((await api.call("GET", "/v1/STATUS/cache-1")).status, 404);
    // The list (served from a cache while the core's state stays the same)
    // follows the deletion.
    const after = JSON.parse((await api.call("GET", "/v1/STATUS")).text);
    assertEquals(after.map((i: { Name: string }) => i.Name), ["single_1"]);
    assertEquals(
      (await api.store.list("/mr-redis/instances/cache-1")).filter((e) =>
        e.key === "/mr-redis/instances/cache-1" || e.key.startsWith("/mr-redis/instances/cache-1/")
      ),
      [],
    );
    res = await api.call("POST", "/v1/CREATE/cache-1/100/1/2");
    assertEquals(res.status, 201, "re-create after delete");
  } finally {
    await api.close();
  }
});

Deno.test("API turns unexpected errors into a plain 500", async () => {
  const logs: string[] = [];
  const handler = createApiHandler({
    create: () => Promise.reject(new Error("secret internals")),
    delete: () => Promise.resolve(false),
    status: () => undefined,
    list: () => [],
  }, { log: (l) => logs.push(l) });
  const res = await handler(new Request("http://x/v1/CREATE/a/1/1/0", { method: "POST" }));
  assertEquals(res.status, 500);
  const body = await res.text();
  assert(!body.includes("secret"));
  assert(logs.some((l) => l.includes("secret internals")));
  assertEquals(res.headers.get("access-control-allow-origin"), null);
});
