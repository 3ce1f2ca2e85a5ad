/**
 * The web UI's operations views (`lib/ui/ops.js`): the health banner from
 * `GET /v1/HEALTH` and the event timeline from `GET /v1/EVENTS/{name}`,
 * built through a recording document that refuses `innerHTML`.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { buildTimeline, healthBanner, timelineEntries } from "../lib/ui/ops.js";
import { createApiHandler } from "../lib/api/handler.ts";

class FakeNode {
  children: FakeNode[] = [];
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
  setAttribute() {}
  append(...nodes: FakeNode[]) {
    this.children.push(...nodes);
  }
}

const fakeDocument = {
  createElement: (tag: string) => new FakeNode(tag),
  createDocumentFragment: () => new FakeNode("#fragment"),
} as unknown as Parameters<typeof buildTimeline>[0];

Deno.test("UI health banner: shown when Mesos or the store is unreachable, hidden when OK", () => {
  const ok = { Status: "OK", Role: "leader", Mesos: "subscribed", Store: "reachable" };
  assertEquals(healthBanner(ok), null);
  assertEquals(healthBanner(undefined), null);
  assertEquals(
    healthBanner({ ...ok, Status: "UNAVAILABLE", Mesos: "connecting" }),
    "The scheduler cannot create or heal instances now: the Mesos master is not connected (connecting). Instances keep running.",
  );
  const store = healthBanner({
    Status: "UNAVAILABLE",
    Role: "leader",
    Mesos: "subscribed",
    Store: "unreachable: Cannot reach etcd at 127.0.0.1:1",
  });
  assertMatch(store!, /the state store is unreachable: Cannot reach etcd at 127\.0\.0\.1:1\./);
  const standby = healthBanner({
    Status: "UNAVAILABLE",
    Role: "standby",
    Mesos: "disconnected (not leading)",
    Store: "reachable",
  });
  assertMatch(standby!, /this scheduler is not leading \(standby\)/);
});

Deno.test("UI timeline: newest first, one entry per event, through textContent", () => {
  const events = [
    { Seq: 1, Time: "2026-12-02T01:00:00.000Z", Kind: "created", Message: "Created: MS" },
    {
      Seq: 2,
      Time: "2026-12-02T01:00:01.250Z",
      Kind: "lost",
      Message: "p1 (master) lost: <b>x</b>",
    },
    { Seq: 3, Time: "2026-12-02T01:00:02.500Z", Kind: "promoted", Message: "p2 promoted" },
  ];
  assertEquals(timelineEntries(events).map((e) => `${e.time} ${e.kind} ${e.cls}`), [
    "2026-12-02 01:00:02Z promoted st-amber",
    "2026-12-02 01:00:01Z lost st-degraded",
    "2026-12-02 01:00:00Z created st-running",
  ]);
  const list = buildTimeline(fakeDocument, "c1", events) as unknown as FakeNode;
  assertEquals(list.children.length, 3);
  assertEquals(list.children[1]!.className, "event ev-lost");
  assertEquals(
    list.children[1]!.textContent,
    "2026-12-02 01:00:01Zlostp1 (master) lost: <b>x</b>",
    "markup stays text",
  );
  const empty = buildTimeline(fakeDocument, "c1", []) as unknown as FakeNode;
  assertEquals(empty.textContent, "No events for c1 yet.");
});

Deno.test("UI page loads ops.js and has the health banner and the timeline", async () => {
  const handler = createApiHandler({
    create: () => Promise.resolve("created"),
    delete: () => Promise.resolve(true),
    status: () => undefined,
    list: () => [],
  }, { log: () => {} });
  const js = await handler(new Request("http://sched/ui/ops.js"));
  assertEquals(js.status, 200);
  assertEquals(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  assertMatch(await js.text(), /export function healthBanner/);
  const page = await (await handler(new Request("http://sched/"))).text();
  assert(page.includes('<div id="health" class="banner" role="alert" hidden></div>'));
  assert(page.includes('<ol id="timeline" class="timeline"></ol>'));
  const app = await (await handler(new Request("http://sched/ui/app.js"))).text();
  assertMatch(app, /import \{ buildTimeline, healthBanner \} from "\.\/ops\.js";/);
});
