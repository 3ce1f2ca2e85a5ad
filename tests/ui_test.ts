/**
 * The web UI: served by the API handler with the right types and headers, and
 * its pure render functions (`lib/ui/view.js`) checked against STATUS lists,
 * building the DOM through a small recording document that refuses
 * `innerHTML`.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { createApiHandler } from "../lib/api/handler.ts";
import { UI_CSP } from "../lib/ui/serve.ts";
import {
  address,
  buildRows,
  createRequest,
  formatBytes,
  formatUptime,
  type InstanceJson,
  renderRows,
  statusClass,
  updateRequest,
  updateText,
} from "../lib/ui/view.js";

const handler = createApiHandler({
  create: () => Promise.resolve("created"),
  delete: () => Promise.resolve(true),
  status: () => undefined,
  list: () => [],
}, { log: () => {} });

async function get(path: string, method = "GET") {
  const res = await handler(new Request(`http://sched${path}`, { method }));
  return { status: res.status, headers: res.headers, text: await res.text() };
}

Deno.test("UI page is served at / and /ui as HTML with a strict CSP and no CORS", async (t) => {
  for (const path of ["/", "/ui", "/ui/"]) {
    await t.step(path, async () => {
      const res = await get(path);
      assertEquals(res.status, 200);
      assertEquals(res.headers.get("content-type"), "text/html; charset=utf-8");
      assertEquals(res.headers.get("cache-control"), "no-cache");
      assertEquals(res.headers.get("content-security-policy"), UI_CSP);
      assertMatch(UI_CSP, /^default-src 'self';/);
      assert(!UI_CSP.includes("unsafe"), "no unsafe-inline or unsafe-eval");
      assertEquals(res.headers.get("x-content-type-options"), "nosniff");
      assertEquals(res.headers.get("access-control-allow-origin"), null);
      assertMatch(res.text, /^<!doctype html>/i);
      assertMatch(res.text, /<script type="module" src="\/ui\/app.js"><\/script>/);
      assertMatch(res.text, /<link rel="stylesheet" href="\/ui\/style.css">/);
      // Nothing from another origin, nothing inline for the CSP to block.
      assert(!/(src|href)="(https?:)?\/\//.test(res.text), "no external resources");
      assert(!/<script>|<style>| style="| on[a-z]+="/.test(res.text), "no inline code");
    });
  }
  const head = await handler(new Request("http://sched/", { method: "HEAD" }));
  assertEquals(head.status, 200);
  assertEquals(await head.text(), "");
});

Deno.test("UI files are served with their types; unknown ones get 404", async () => {
  const cases: [string, string, RegExp][] = [
    ["/ui/app.js", "text/javascript; charset=utf-8", /from "\.\/view\.js"/],
    ["/ui/view.js", "text/javascript; charset=utf-8", /export function renderRows/],
    ["/ui/style.css", "text/css; charset=utf-8", /\.st-running/],
  ];
  for (const [path, type, body] of cases) {
    const res = await get(path);
    assertEquals(res.status, 200, path);
    assertEquals(res.headers.get("content-type"), type, path);
    assertEquals(res.headers.get("content-security-policy"), UI_CSP, path);
    assertEquals(res.headers.get("cache-control"), "no-cache", path);
    assertMatch(res.text, body);
  }
  for (
    const path of ["/ui/nope.js", "/ui/../lib/config.ts", "/ui/%2e%2e/deno.json", "/ui/app.js/"]
  ) {
    const res = await get(path);
    assertEquals(res.status, 404, path);
    assertMatch(res.text, /^No such (UI file|route)/);
  }
  const post = await get("/", "POST");
  assertEquals(post.status, 405);
  assertEquals(post.headers.get("allow"), "GET, HEAD");
  // The API keeps its own answers.
  assertEquals((await get("/v1/STATUS")).text, "[]");
  assertEquals((await get("/favicon.ico")).status, 404);
});

Deno.test("UI scripts never put data into the DOM as HTML", async () => {
  for (const file of ["app.js", "view.js"]) {
    const src = await Deno.readTextFile(new URL(`../lib/ui/${file}`, import.meta.url));
    assert(
      !/\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\(|new Function/.test(
        src,
      ),
      `${file} builds the DOM with textContent only`,
    );
    assert(!/https?:\/\//.test(src), `${file} reaches no other origin`);
  }
});

function proc(ip: string, port: string, extra: Record<string, unknown> = {}) {
  return {
    IP: ip,
    Port: port,
    MemoryCapacity: 100,
    MemoryUsed: 1_153_434,
    Uptime: 3725,
    ClientsConnected: 2,
    LastSyncedToMaster: 0,
    ...extra,
  };
}

const LIST: InstanceJson[] = [
  {
    Name: "cache1",
    Type: "MS",
    Status: "RUNNING",
    Capacity: 100,
    Master: proc("10.0.0.1", "31001", { Id: "p1", State: "RUNNING", InSync: true }),
    Slaves: [
      proc("10.0.0.2", "31002", {
        Id: "p2",
        State: "RUNNING",
        InSync: true,
        LastSyncedToMaster: 1,
      }),
      proc("10.0.0.3", "31003", { Id: "p3", State: "RUNNING", InSync: false }),
    ],
    Reason: null,
    SlavesWanted: 2,
    ProcessesRunning: 3,
    ProcessesTotal: 3,
    Epoch: 1,
    LastEvent: "Promoted p2",
    Proxies: [{ IP: "10.0.0.1", Port: "31005", Id: "x1" }, {
      IP: "10.0.0.2",
      Port: "31006",
      Id: "x2",
    }],
    ProxiesWanted: 2,
  },
  {
    Name: "a-new",
    Type: "MS",
    Status: "CREATING",
    Capacity: 64,
    Master: null,
    Slaves: [],
    Reason: "Waiting for offers",
    SlavesWanted: 1,
    ProcessesRunning: 0,
    ProcessesTotal: 2,
    Epoch: 0,
  },
  {
    Name: "lonely",
    Type: "S",
    Status: "DEGRADED",
    Capacity: 10,
    Master: null,
    Slaves: [],
    Reason: "The master was lost",
    ProcessesRunning: 0,
    ProcessesTotal: 1,
  },
  {
    Name: "going",
    Type: "S",
    Status: "DELETING",
    Capacity: 10,
    Master: proc("10.0.0.4", "", {}),
    Slaves: [],
  },
  { Name: "fo", Type: "MS", Status: "FAILING_OVER", Capacity: 1, Master: null, Slaves: [] },
];

Deno.test("UI view formats a STATUS list into rows", () => {
  assertEquals(statusClass("RUNNING"), "st-running");
  assertEquals(statusClass("CREATING"), "st-amber");
  assertEquals(statusClass("FAILING_OVER"), "st-amber");
  assertEquals(statusClass("DEGRADED"), "st-degraded");
  assertEquals(statusClass("DELETING"), "st-deleting");
  assertEquals(statusClass("SOMETHING_NEW"), "st-other");
  assertEquals(address(null), "-");
  assertEquals(address(proc("1.2.3.4", "")), "-");
  assertEquals(address(proc("1.2.3.4", "5")), "1.2.3.4:5");
  assertEquals(formatBytes(512), "512 B");
  assertEquals(formatBytes(1_153_434), "1.1 MB");
  assertEquals(formatUptime(45), "45 s");
  assertEquals(formatUptime(187), "3m 07s");
  assertEquals(formatUptime(3725), "1h 02m");
  assertEquals(formatUptime(2 * 86400 + 4 * 3600), "2d 4h");

  const rows = renderRows(LIST);
  assertEquals(rows.map((r) => r.name), ["a-new", "cache1", "fo", "going", "lonely"]);
  const [creating, running, failing, deleting, degraded] = rows as [
    (typeof rows)[0],
    (typeof rows)[0],
    (typeof rows)[0],
    (typeof rows)[0],
    (typeof rows)[0],
  ];
  assertEquals(
    { ...running, procs: running.procs.length },
    {
      name: "cache1",
      type: "MS",
      status: "RUNNING",
      statusClass: "st-running",
      capacity: "100 MB",
      master: "10.0.0.1:31001",
      slaves: "2 of 2",
      processes: "3/3",
      reason: "",
      lastEvent: "Promoted p2",
      epoch: "1",
      procs: 3,
      proxies: "10.0.0.1:31005, 10.0.0.2:31006",
      proxiesCount: "2 of 2",
      proxyCli: "redis-cli -h 10.0.0.1 -p 31005 --askpass",
    },
  );
  assertEquals(running.procs[0], {
    role: "master",
    id: "p1",
    state: "RUNNING",
    address: "10.0.0.1:31001",
    memory: "1.1 MB of 100 MB",
    uptime: "1h 02m",
    clients: "2",
    lastSync: "-",
    cli: "redis-cli -h 10.0.0.1 -p 31001 --askpass",
  });
  assertEquals(running.procs[1]?.lastSync, "1 s ago, in sync");
  assertEquals(running.procs[2]?.lastSync, "0 s ago, not in sync");
  assertEquals(running.procs[2]?.cli, "redis-cli -h 10.0.0.3 -p 31003 --askpass");
  // Master = - cases: CREATING with no master yet, a lost master, no port.
  assertEquals(creating.master, "-");
  assertEquals(creating.statusClass, "st-amber");
  assertEquals(creating.reason, "Waiting for offers");
  assertEquals(creating.slaves, "0 of 1");
  assertEquals(creating.processes, "0/2");
  assertEquals(creating.procs, []);
  assertEquals(degraded.master, "-");
  assertEquals(degraded.statusClass, "st-degraded");
  assertEquals(degraded.epoch, "0");
  assertEquals(deleting.master, "-");
  assertEquals(deleting.statusClass, "st-deleting");
  assertEquals(deleting.procs[0]?.cli, "");
  assertEquals(failing.statusClass, "st-amber");
  assertEquals(failing.processes, "0/0");
  assertEquals(renderRows([]), []);
});

Deno.test("UI create form is checked with the API's rules", () => {
  const ok = (name: string, capacity: string, slaves: string, distribution = "") =>
    createRequest({ name, capacity, slaves, distribution });
  assertEquals(ok("cache-1", "100", "2"), {
    ok: true,
    path: "/v1/CREATE/cache-1/100/1/2",
    body: undefined,
  });
  assertEquals(ok(" a_b ", "1", "", "3"), {
    ok: true,
    path: "/v1/CREATE/a_b/1/1/0",
    body: '{"Distribution":3}',
  });
  assertEquals(ok("x".repeat(64), "65536", "100").ok, true);
  const bad: [string, string, string, string, string][] = [
    ["", "100", "0", "", "name"],
    ["a/b", "100", "0", "", "name"],
    ["a b", "100", "0", "", "name"],
    ["<img>", "100", "0", "", "name"],
    ["x".repeat(65), "100", "0", "", "name"],
    ["ok", "0", "0", "", "capacity"],
    ["ok", "1.5", "0", "", "capacity"],
    ["ok", "-1", "0", "", "capacity"],
    ["ok", "65537", "0", "", "capacity"],
    ["ok", "1e3", "0", "", "capacity"],
    ["ok", "100", "101", "", "slaves"],
    ["ok", "100", "-1", "", "slaves"],
    ["ok", "100", "x", "", "slaves"],
    ["ok", "100", "0", "0", "distribution"],
    ["ok", "100", "0", "two", "distribution"],
  ];
  for (const [name, capacity, slaves, distribution, field] of bad) {
    const res = createRequest({ name, capacity, slaves, distribution });
    assertEquals(res.ok, false, `${name} ${capacity} ${slaves} ${distribution}`);
    if (!res.ok) assertEquals(res.field, field);
  }
});

Deno.test("UI update form is checked with the API's rules and sends only what is given", () => {
  const req = (name: string, capacity: string, slaves: string, distribution = "") =>
    updateRequest({ name, capacity, slaves, distribution });
  assertEquals(req("cache-1", "200", ""), {
    ok: true,
    path: "/v1/UPDATE/cache-1",
    body: '{"Capacity":200}',
  });
  assertEquals(req(" a ", "", "0", "2"), {
    ok: true,
    path: "/v1/UPDATE/a",
    body: '{"Slaves":0,"Distribution":2}',
  });
  assertEquals(
    updateRequest({ name: "a", capacity: "", slaves: "", distribution: "", proxies: "0" }),
    { ok: true, path: "/v1/UPDATE/a", body: '{"Proxies":0}' },
  );
  const tooMany = updateRequest({
    name: "a",
    capacity: "",
    slaves: "",
    distribution: "",
    proxies: "17",
  });
  assertEquals(tooMany.ok ? "" : tooMany.field, "proxies");
  const bad: [string, string, string, string, string][] = [
    ["a/b", "100", "", "", "name"],
    ["ok", "", "", "", "capacity"],
    ["ok", "0", "", "", "capacity"],
    ["ok", "1.5", "", "", "capacity"],
    ["ok", "", "101", "", "slaves"],
    ["ok", "", "-1", "", "slaves"],
    ["ok", "", "", "0", "distribution"],
  ];
  for (const [name, capacity, slaves, distribution, field] of bad) {
    const res = updateRequest({ name, capacity, slaves, distribution });
    assertEquals(res.ok, false, `${name} ${capacity} ${slaves} ${distribution}`);
    if (!res.ok) assertEquals(res.field, field);
  }
  const rows = renderRows([{
    Name: "u",
    Type: "MS",
    Status: "RUNNING",
    Capacity: 100,
    Master: null,
    Slaves: [],
    Reason: null,
    Update: {
      Target: { Capacity: 200, Slaves: 1, Distribution: 1 },
      Phase: "switching master",
      Waiting: null,
    },
  }]);
  assertEquals(rows[0]!.reason, "Updating to 200 MB, 1 slave, Distribution 1: switching master");
  assertEquals(
    updateText({
      Target: { Capacity: 50, Slaves: 3, Distribution: 2 },
      Phase: "adding slaves (1 of 3 in sync)",
      Waiting: "Waiting for resources",
    }),
    "Updating to 50 MB, 3 slaves, Distribution 2: adding slaves (1 of 3 in sync) (Waiting for resources)",
  );
});

/** A recording stand-in for the DOM: text and attributes only, no HTML parsing. */
class FakeNode {
  children: FakeNode[] = [];
  attributes = new Map<string, string>();
  className = "";
  #text = "";
  constructor(readonly tagName: string) {}
  get textContent(): string {
    return this.#text + this.children.map((c) => c.textContent).join("");
  }
  set textContent(value: string) {
    this.#text = value;
    this.children = [];
  }
  set innerHTML(_value: string) {
    throw new Error("innerHTML must not be used");
  }
  setAttribute(name: string, value: string) {
    this.attributes.set(name, value);
  }
  append(...nodes: FakeNode[]) {
    this.children.push(...nodes);
  }
  /** Every descendant with `tag`. */
  all(tag: string): FakeNode[] {
    return this.children.flatMap((c) => [...(c.tagName === tag ? [c] : []), ...c.all(tag)]);
  }
}

const fakeDocument = {
  createElement: (tag: string) => new FakeNode(tag),
  createDocumentFragment: () => new FakeNode("#fragment"),
} as unknown as Parameters<typeof buildRows>[0];

Deno.test("UI view builds rows and details through textContent", () => {
  const rows = renderRows(LIST);
  const collapsed = buildRows(fakeDocument, rows, new Set()) as unknown as FakeNode;
  assertEquals(collapsed.children.length, 5, "one row per instance");
  const first = collapsed.children[1]!;
  const cells = first.children.map((c) => c.textContent);
  assertEquals(cells.slice(1, 9), [
    "MS",
    "RUNNING",
    "100 MB",
    "10.0.0.1:31001",
    "2 of 2",
    "3/3",
    "1",
    "",
  ]);
  assertEquals(
    first.all("span").find((s) => s.className.startsWith("badge"))?.className,
    "badge st-running",
  );
  const del = first.all("button").find((b) => b.attributes.get("data-action") === "delete")!;
  assertEquals(del.attributes.get("data-name"), "cache1");
  const goingDel = collapsed.children[3]!.all("button").find((b) =>
    b.attributes.get("data-action") === "delete"
  )!;
  assert(goingDel.attributes.has("disabled"), "no delete while DELETING");

  const open = buildRows(fakeDocument, rows, new Set(["cache1", "a-new"])) as unknown as FakeNode;
  assertEquals(open.children.map((r) => r.className), [
    "inst open",
    "details",
    "inst open",
    "details",
    "inst",
    "inst",
    "inst",
  ]);
  const newDetails = open.children[1]!;
  assertEquals(newDetails.textContent, "No process has an address yet.");
  const details = open.children[3]!;
  assertEquals(details.all("code")[0]?.textContent, "redis-cli -h 10.0.0.1 -p 31001 --askpass");
  const procRows = details.all("tbody")[0]!.children;
  assertEquals(procRows.map((r) => r.children[3]?.textContent), [
    "10.0.0.1:31001",
    "10.0.0.2:31002",
    "10.0.0.3:31003",
  ]);
  assertEquals(procRows[0]!.children.map((c) => c.textContent).slice(0, 8), [
    "master",
    "p1",
    "RUNNING",
    "10.0.0.1:31001",
    "1.1 MB of 100 MB",
    "1h 02m",
    "2",
    "-",
  ]);
  assertMatch(details.textContent, /Last event: Promoted p2/);
  assertMatch(
    details.textContent,
    /Proxies \(2 of 2 running\): 10\.0\.0\.1:31005, 10\.0\.0\.2:31006/,
  );
  assertEquals(details.all("code")[1]?.textContent, "redis-cli -h 10.0.0.1 -p 31005 --askpass");

  const going = buildRows(fakeDocument, rows, new Set(["going"])) as unknown as FakeNode;
  assertMatch(going.children[4]!.textContent, /^No master address yet\./);

  // Odd text (the API forbids such names) stays text.
  const odd = renderRows([{ ...LIST[1]!, Name: "<b>x</b>", Reason: "<script>" }]);
  const built = buildRows(fakeDocument, odd, new Set(["<b>x</b>"])) as unknown as FakeNode;
  assertMatch(built.textContent, /<b>x<\/b>/);
  assertMatch(built.textContent, /<script>/);

  const empty = buildRows(fakeDocument, [], new Set()) as unknown as FakeNode;
  assertMatch(empty.textContent, /No instances yet/);
});

Deno.test("a Redis Cluster instance shows every shard's nodes with their slots; the form sends masters", () => {
  const proc = (port: string) => ({
    IP: "10.0.0.1",
    Port: port,
    MemoryCapacity: 100,
    MemoryUsed: 0,
    Uptime: 5,
    ClientsConnected: 0,
    LastSyncedToMaster: 0,
    InSync: true,
  });
  const [row] = renderRows([{
    Name: "shop",
    Type: "RC",
    Status: "RUNNING",
    Capacity: 100,
    Master: proc("7000"),
    Slaves: [proc("7002")],
    SlavesWanted: 1,
    ProcessesRunning: 4,
    ProcessesTotal: 4,
    Shards: [
      { Slots: "0-8191", Master: proc("7000"), Slaves: [proc("7002")] },
      { Slots: "8192-16383", Master: proc("7001"), Slaves: [proc("7003")] },
    ],
  }]);
  assertEquals(row!.master, "10.0.0.1:7000 (+1 shards)");
  assertEquals(row!.slaves, "2 of 2");
  assertEquals(
    row!.procs.map((p) => `${p.role} ${p.slots} ${p.address}`),
    [
      "master 0-8191 10.0.0.1:7000",
      "slave 0-8191 10.0.0.1:7002",
      "master 8192-16383 10.0.0.1:7001",
      "slave 8192-16383 10.0.0.1:7003",
    ],
  );
  assertEquals(row!.procs[0]!.cli, "redis-cli -c -h 10.0.0.1 -p 7000 --askpass");
  const req = createRequest({
    name: "shop",
    capacity: "100",
    slaves: "1",
    masters: "3",
    distribution: "2",
  });
  assertEquals(req.ok && req.path, "/v1/CREATE/shop/100/3/1");
  const bad = createRequest({
    name: "shop",
    capacity: "100",
    slaves: "1",
    masters: "0",
    distribution: "",
  });
  assertEquals(!bad.ok && bad.field, "masters");
});
