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
import { ApiTokens, guardApi } from "../lib/api/auth.ts";

const ALICE = "alice-token-0123456789";
const BOB = "bob-token-abcdefghijkl";

async function setup(options: { tokens?: ApiTokens } = {}) {
  const dir = await tempDir("api");
  const store = await openStore({ type: "embedded", endpoints: `${dir}/state.db` });
  const logs: string[] = [];
  const core = new Scheduler({
    store,
    prefix: "/mr-redis",
    executorInfo: buildExecutorInfo({
      uris: [],
      command: "./MrRedisExecutor",
      resources: DEFAULT_RESOURCES,
    }),
    tickMs: 0,
    log: (l) => logs.push(l),
  });
  await core.load();
  const handler = guardApi(
    createApiHandler(core, { log: (l) => logs.push(l) }),
    options.tokens ? { tokens: options.tokens } : {},
  );
  const remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: "192.0.2.7", port: 40000 };
  const call = async (method: string, path: string, body?: string, headers?: HeadersInit) => {
    const res = await handler(
      new Request(`http://api${path}`, {
        method,
        ...(body !== undefined ? { body } : {}),
        ...(headers ? { headers } : {}),
      }),
      { remoteAddr },
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
      ["POST", "/v1/CREATE/ok/100/101/0", 400, /Field "masters" must be .* from 1 to 100.*"101"/],
      ["POST", "/v1/CREATE/ok/100/0/0", 400, /Field "masters" .*"0"/],
      ["POST", "/v1/CREATE/ok/100/x/0", 400, /Field "masters" .*"x"/],
      [
        "POST",
        "/v1/CREATE/ok/100/3/6",
        400,
        /Field "slaves" .* replicas per shard from 0 to 5.*"6"/,
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/100/5",
        400,
        /Field "masters": a cluster of 100 masters .* 600 processes/,
      ],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /Body must be a JSON object/, "{broken"],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /Body must be a JSON object/, "[1]"],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution".*0/, '{"Distribution":0}'],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution"/, '{"Distribution":"two"}'],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution"/, '{"Distribution":1.5}'],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /"Distribution" must be a whole JSON number .*\(not a string\), but got "2"/,
        '{"Distribution":"2"}',
      ],
      ["POST", "/v1/CREATE/ok/100/1/0", 400, /"Distribution".*true/, '{"Distribution":true}'],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /Body field "distribution" is unknown \(did you mean "Distribution"\?\)/,
        '{"distribution":2}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /Body field "Distrubution" is unknown \(did you mean "Distribution"\?\)/,
        '{"Distrubution":2}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /Body field "Memory" is unknown; known fields: Distribution, Password, Proxies\n/,
        '{"Distribution":1,"Memory":5}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /Body field "__proto__" is unknown/,
        '{"__proto__":1}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /^Field "Proxies" must be a whole JSON number from 0 to 16 \(not a string\), but got -1\n$/,
        '{"Proxies":-1}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /^Field "Proxies" must be a whole JSON number from 0 to 16 \(not a string\), but got 17\n$/,
        '{"Proxies":17}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /^Field "Proxies" must be a whole JSON number from 0 to 16 \(not a string\), but got "2"\n$/,
        '{"Proxies":"2"}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /^Field "Proxies" must be a whole JSON number from 0 to 16 \(not a string\), but got 1.5\n$/,
        '{"Proxies":1.5}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /Body field "proxies" is unknown \(did you mean "Proxies"\?\)/,
        '{"proxies":2}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/3/0",
        400,
        /^Field "Proxies" must be 0 for a Redis Cluster instance \(masters 3\): proxies are for one master, but got 2\n$/,
        '{"Proxies":2}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /"Password" must be 16 to 128 characters long, but has 5\n/,
        '{"Password":"short"}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /"Password" must be a string/,
        '{"Password":12345678901234567}',
      ],
      [
        "POST",
        "/v1/CREATE/ok/100/1/0",
        400,
        /"Password" may only hold printable ASCII/,
        '{"Password":"has spaces in it, see?"}',
      ],
      ["GET", "/v1/CREDENTIALS/unknown", 404, /"unknown" not found/],
      ["GET", "/v1/CREDENTIALS", 400, /CREDENTIALS needs/],
      ["POST", "/v1/CREDENTIALS/x", 405, /use GET/],
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
    res = await api.call("POST", "/v1/CREATE/no-proxy/64/1/1", '{"Proxies": 0}');
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
    // Proxies: 2 by default for MS (none running yet), 1 for S, as asked otherwise.
    assertEquals([one.Proxies, one.ProxiesWanted], [[], 2]);

    const list = JSON.parse((await api.call("GET", "/v1/STATUS")).text);
    assertEquals(list.map((i: { Name: string }) => i.Name), ["cache-1", "single_1", "no-proxy"]);
    assertEquals(list[1].Type, "S");
    assertEquals(list[1].ProxiesWanted, 1);
    assertEquals(list[2].ProxiesWanted, 0);
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
    assertEquals(after.map((i: { Name: string }) => i.Name), ["single_1", "no-proxy"]);
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

Deno.test("STATUS long poll answers when the master version differs, the Status is reached or the wait ends", async () => {
  const api = await setup();
  try {
    assertEquals((await api.call("POST", "/v1/CREATE/lp/10/1/1")).status, 201);
    // A version that differs from the current one ("0-none"): answered at once.
    let started = Date.now();
    let res = await api.call("GET", "/v1/STATUS/lp?wait=30s&version=7-10.0.0.1:1");
    assertEquals(res.status, 200, res.text);
    assert(Date.now() - started < 20_000, "answered before the wait ended");
    assertEquals(JSON.parse(res.text).Name, "lp");
    // The current version: answered after the wait, unchanged.
    started = Date.now();
    res = await api.call("GET", "/v1/STATUS/lp?wait=300ms&version=0-none");
    assertEquals(res.status, 200, res.text);
    assert(Date.now() - started >= 250, "waited");
    assertEquals(JSON.parse(res.text).Master, null);
    res = await api.call("GET", "/v1/STATUS/lp?wait=soon&version=0-none");
    assertEquals(res.status, 400);
    assertMatch(res.text, /Query "wait" must be a duration of at most 60s.*"soon"/);
    res = await api.call("GET", "/v1/STATUS/lp?wait=61s&version=0-none");
    assertEquals(res.status, 400);
    res = await api.call("GET", "/v1/STATUS/nope?wait=1s&version=0-none");
    assertEquals(res.status, 404);
    // Waiting for a Status: answered at once when it already is one of them...
    started = Date.now();
    res = await api.call("GET", "/v1/STATUS/lp?wait=30s&status=RUNNING,CREATING");
    assertEquals(res.status, 200, res.text);
    assert(Date.now() - started < 20_000, "answered before the wait ended");
    // ...else after the wait, as it is (no Mesos here: it stays CREATING).
    started = Date.now();
    res = await api.call("GET", "/v1/STATUS/lp?wait=300ms&status=RUNNING");
    assertEquals(res.status, 200, res.text);
    assert(Date.now() - started >= 250, "waited");
    assertEquals(JSON.parse(res.text).Status, "CREATING");
    // Answered on the change itself: a DELETE while a poll waits for DELETING.
    started = Date.now();
    const poll = api.call("GET", "/v1/STATUS/lp?wait=30s&status=DELETING");
    await new Promise((r) => setTimeout(r, 50));
    assertEquals((await api.call("DELETE", "/v1/DELETE/lp")).status, 200);
    res = await poll;
    assert(Date.now() - started < 20_000, "answered before the wait ended");
    assertEquals(res.status, 200, res.text);
    assertEquals(JSON.parse(res.text).Status, "DELETING");
    res = await api.call("GET", "/v1/STATUS/lp?wait=1s&status=RUNING");
    assertEquals(res.status, 400);
    assertMatch(res.text, /Query "status" must be statuses among CREATING, RUNNING.*"RUNING"/);
  } finally {
    await api.close();
  }
});

Deno.test("API gives every instance a password: the one in the body or a random one, only through CREDENTIALS", async () => {
  const api = await setup();
  const given = "tenant-chosen-pw-0123456789";
  try {
    let res = await api.call("POST", "/v1/CREATE/mine/64/1/1", JSON.stringify({ Password: given }));
    assertEquals(res.status, 201, res.text);
    res = await api.call("POST", "/v1/CREATE/rand/64/1/0");
    assertEquals(res.status, 201, res.text);
    const mine = await api.call("GET", "/v1/CREDENTIALS/mine");
    assertEquals(mine.status, 200);
    assertEquals(JSON.parse(mine.text), { Name: "mine", User: "default", Password: given });
    const rand = JSON.parse((await api.call("GET", "/v1/CREDENTIALS/rand")).text);
    assertMatch(rand.Password, /^[A-Za-z0-9_-]{43}$/);
    // Nowhere else: not in STATUS, not in the log, not in the answers.
    const everything = [
      (await api.call("GET", "/v1/STATUS")).text,
      (await api.call("GET", "/v1/STATUS/mine")).text,
      ...api.logs,
    ].join("\n");
    for (const secret of [given, rand.Password]) {
      assert(!everything.includes(secret), "the password appears only in CREDENTIALS");
    }
    // It is in the store, with the internal secret, for a restarted scheduler.
    const stored = JSON.parse((await api.store.get("/mr-redis/instances/mine"))!.value);
    assertEquals(stored.password, given);
    assertMatch(stored.adminPassword, /^[A-Za-z0-9_-]{43}$/);
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

Deno.test("API with tokens refuses unauthenticated and cross-site requests with one line", async (t) => {
  const dir = await tempDir("api-tokens");
  await Deno.writeTextFile(`${dir}/tokens`, `# clients\nalice:${ALICE}\n\nbob : ${BOB}\n`);
  const tokens = ApiTokens.load({ file: `${dir}/tokens` });
  const api = await setup({ tokens });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  try {
    const cases: [string, string, HeadersInit, number, RegExp][] = [
      ["GET", "/v1/STATUS", {}, 401, /^Authentication required: send "Authorization: Bearer/],
      ["GET", "/v1/STATUS/x", bearer("wrong-token-0123456789"), 401, /token is not valid/],
      ["POST", "/v1/CREATE/a/100/1/0", {}, 401, /Authentication required/],
      ["DELETE", "/v1/DELETE/a", { authorization: "Basic YTpi" }, 401, /not valid/],
      ["GET", "/v1/STATUS", { authorization: `Bearer ${ALICE}x` }, 401, /not valid/],
      [
        "POST",
        "/v1/CREATE/a/100/1/0",
        { ...bearer(ALICE), origin: "http://evil.example" },
        403,
        /Origin "http:\/\/evil.example"/,
      ],
      ["POST", "/v1/CREATE/a/100/1/0", { origin: "http://evil.example" }, 403, /Cross-site/],
      ["POST", "/v1/CREATE/a/100/1/0", { ...bearer(ALICE), origin: "null" }, 403, /Origin "null"/],
      [
        "DELETE",
        "/v1/DELETE/a",
        { ...bearer(BOB), "sec-fetch-site": "cross-site" },
        403,
        /Sec-Fetch-Site is "cross-site"/,
      ],
      [
        "POST",
        "/v1/CREATE/a/100/1/0",
        { ...bearer(BOB), "sec-fetch-site": "same-site" },
        403,
        /"same-site"/,
      ],
      ["GET", "/v1/STATUS/nope", bearer(ALICE), 404, /"nope" not found/],
      [
        "GET",
        "/v1/STATUS/nope",
        { ...bearer(BOB), origin: "http://evil.example" },
        404,
        /not found/,
      ],
    ];
    for (const [method, path, headers, status, pattern] of cases) {
      await t.step(`${method} ${path} ${JSON.stringify(headers)}`, async () => {
        const res = await api.call(method, path, undefined, headers);
        assertEquals(res.status, status, res.text);
        assertMatch(res.text, pattern);
        assertEquals(res.text.trim().split("\n").length, 1, "one line");
        assert(!res.text.includes(ALICE) && !res.text.includes(BOB), "no token in the answer");
      });
    }
    await t.step("the UI and its files stay open", async () => {
      for (const path of ["/", "/ui", "/ui/app.js"]) {
        assertEquals((await api.call("GET", path)).status, 200, path);
      }
    });
    await t.step(
      "a valid token creates and deletes; each change is logged with its name and the client",
      async () => {
        const same = { ...bearer(BOB), origin: "http://api", "sec-fetch-site": "same-origin" };
        let res = await api.call("POST", "/v1/CREATE/c1/100/1/0", "", same);
        assertEquals(res.status, 201, res.text);
        res = await api.call("DELETE", "/v1/DELETE/c1", undefined, bearer(ALICE));
        assertEquals(res.status, 200, res.text);
        const created = api.logs.find((l) => l.startsWith("CREATE c1"));
        assertMatch(created ?? "", /CREATE c1 .* by token "bob" from 192\.0\.2\.7:40000/);
        const deleted = api.logs.find((l) => l.startsWith("DELETE c1"));
        assertMatch(deleted ?? "", /DELETE c1 by token "alice" from 192\.0\.2\.7:40000/);
        assert(
          api.logs.every((l) => !l.includes(ALICE) && !l.includes(BOB)),
          "no token in the log",
        );
      },
    );
    await t.step("a token removed from the file is refused (the file is read again)", async () => {
      await new Promise((r) => setTimeout(r, 1100));
      await Deno.writeTextFile(`${dir}/tokens`, `alice:${ALICE}\n`);
      // The file's mtime must change: some file systems keep whole seconds.
      await Deno.utime(`${dir}/tokens`, new Date(), new Date(Date.now() + 5000));
      assertEquals((await api.call("GET", "/v1/STATUS", undefined, bearer(BOB))).status, 401);
      assertEquals((await api.call("GET", "/v1/STATUS", undefined, bearer(ALICE))).status, 200);
    });
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("APIToken alone is accepted under the name default", () => {
  const tokens = ApiTokens.load({ token: ALICE });
  assert(tokens.enabled);
  assertEquals(tokens.nameOf(ALICE), "default");
  assertEquals(tokens.nameOf(BOB), undefined);
  assert(!ApiTokens.load({}).enabled);
});

Deno.test("API without tokens stays open but still refuses cross-site changes", async () => {
  const api = await setup();
  try {
    // A cross-site form POST (no Content-Type, a foreign Origin).
    let res = await api.call("POST", "/v1/CREATE/x/100/1/0", "", { origin: "http://evil.example" });
    assertEquals(res.status, 403, res.text);
    res = await api.call("POST", "/v1/CREATE/x/100/1/0");
    assertEquals(res.status, 201, res.text);
    assertMatch(
      api.logs.find((l) => l.startsWith("CREATE x")) ?? "",
      /by a client with no token from 192\.0\.2\.7:40000/,
    );
  } finally {
    await api.close();
  }
});

Deno.test("API answers 409 with the scheduler's reason when a CREATE can never be placed", async () => {
  const reason =
    'Cannot create instance "big": one process needs an agent with 9096 MB and 0.2 cpus, but of the 3 agents registered the largest has 4096 MB';
  const handler = createApiHandler({
    create: () => Promise.resolve({ refused: reason }),
    delete: () => Promise.resolve(false),
    status: () => undefined,
    list: () => [],
  });
  const res = await handler(new Request("http://x/v1/CREATE/big/9000/1/0", { method: "POST" }));
  assertEquals(res.status, 409);
  assertEquals(await res.text(), `${reason}\n`);
});
