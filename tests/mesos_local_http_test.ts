/**
 * Local Mesos master, scheduler endpoint HTTP rules (protocol reference
 * §6 items 1–5 and 8), checked with raw fetch + the codec.
 */

import { encode } from "../lib/mesos/codec.ts";
import "../lib/mesos/protobuf_codec.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  callStatus,
  frameworkInfo,
  postCall,
  startTestCluster,
  subscribe,
} from "./_mesos_local.ts";
import { raw, statusAndBody } from "./_raw_http.ts";

const JSON_CT = "application/json";
const PB = "application/x-protobuf";

Deno.test("local master enforces the HTTP rules of the scheduler endpoint", async (t) => {
  const env = await startTestCluster({ agents: 1, heartbeatIntervalSeconds: 0.2 });
  const url = env.cluster.url;
  const subscribeBody = (extra = {}) =>
    encode("mesos.v1.scheduler.Call", {
      type: "SUBSCRIBE",
      subscribe: { framework_info: frameworkInfo() },
      ...extra,
    }, JSON_CT);
  try {
    await t.step("item 1: non-POST is 405", async () => {
      const res = await fetch(`${url}/api/v1/scheduler`);
      await res.body?.cancel();
      assertEquals(res.status, 405);
    });

    await t.step("item 1: missing Content-Type is 400, another one 415", async () => {
      const a = await fetch(`${url}/api/v1/scheduler`, {
        method: "POST",
        body: new Blob([subscribeBody() as BlobPart]),
      });
      await a.body?.cancel();
      assertEquals(a.status, 400);
      const b = await postCall(url, "{}", { "Content-Type": "text/plain" });
      await b.body?.cancel();
      assertEquals(b.status, 415);
    });

    await t.step("item 1: SUBSCRIBE whose Accept allows neither encoding is 406", async () => {
      const res = await postCall(url, subscribeBody(), {
        "Content-Type": JSON_CT,
        Accept: "text/html",
      });
      await res.body?.cancel();
      assertEquals(res.status, 406);
    });

    await t.step("item 2: bad body, missing required field, missing type are 400", async () => {
      const bad = await postCall(url, "{not json", { "Content-Type": JSON_CT });
      await bad.body?.cancel();
      assertEquals(bad.status, 400);
      const noUser = await postCall(
        url,
        JSON.stringify({ type: "SUBSCRIBE", subscribe: { framework_info: { name: "x" } } }),
        { "Content-Type": JSON_CT },
      );
      await noUser.body?.cancel();
      assertEquals(noUser.status, 400);
      const noType = await postCall(url, JSON.stringify({ framework_id: { value: "f" } }), {
        "Content-Type": JSON_CT,
      });
      await noType.body?.cancel();
      assertEquals(noType.status, 400);
      const badPb = await postCall(url, new Uint8Array([0xff, 0xff, 0xff]), { "Content-Type": PB });
      await badPb.body?.cancel();
      assertEquals(badPb.status, 400);
    });

    const sub = await subscribe(url);
    const headers = { "Mesos-Stream-Id": sub.streamId };
    const fid = { value: sub.frameworkId };

    await t.step("item 2: nested message and framework_id are required", async () => {
      assertEquals(
        await callStatus(url, { framework_id: fid, type: "ACCEPT" }, JSON_CT, headers),
        400,
      );
      assertEquals(await callStatus(url, { type: "TEARDOWN" }, JSON_CT, headers), 400);
      assertEquals(
        await callStatus(url, { framework_id: fid, type: "KILL" }, JSON_CT, headers),
        400,
      );
    });

    await t.step("item 3: Mesos-Stream-Id rules", async () => {
      const withHeader = await postCall(url, subscribeBody(), {
        "Content-Type": JSON_CT,
        "Mesos-Stream-Id": sub.streamId,
      });
      await withHeader.body?.cancel();
      assertEquals(withHeader.status, 400);
      assertEquals(await callStatus(url, { framework_id: fid, type: "REVIVE" }, JSON_CT), 400);
      assertEquals(
        await callStatus(url, { framework_id: fid, type: "REVIVE" }, JSON_CT, {
          "Mesos-Stream-Id": crypto.randomUUID(),
        }),
        400,
      );
      assertEquals(await sub.call({ type: "REVIVE" }), 202);
    });

    await t.step("item 4: unknown framework is 400", async () => {
      assertEquals(
        await callStatus(
          url,
          { framework_id: { value: "nope" }, type: "REVIVE" },
          JSON_CT,
          headers,
        ),
        400,
      );
    });

    await t.step("item 8: ACKNOWLEDGE uuid must be 16 bytes; UNKNOWN is 501", async () => {
      assertEquals(
        await sub.call({
          type: "ACKNOWLEDGE",
          acknowledge: {
            agent_id: { value: "a" },
            task_id: { value: "t" },
            uuid: new Uint8Array(15),
          },
        }),
        400,
      );
      assertEquals(await sub.call({ type: "UNKNOWN" }), 501);
    });

    await t.step(
      "item 5: SUBSCRIBED, HEARTBEAT at once, then heartbeats every interval",
      async () => {
        assertEquals(sub.events.events[0].type, "SUBSCRIBED");
        assertEquals(sub.events.events[0].subscribed.heartbeat_interval_seconds, 0.2);
        assertEquals(sub.events.events[0].subscribed.master_info.address.port, env.cluster.port);
        const second = await sub.events.next();
        assertEquals(second.type, "HEARTBEAT");
        await sub.events.next((e) => e.type === "HEARTBEAT", 2000);
        await sub.events.next((e) => e.type === "HEARTBEAT", 2000);
        assertMatch(sub.streamId, /^[0-9a-f-]{36}$/);
        assertEquals(sub.response.headers.get("Content-Type"), JSON_CT);
      },
    );

    await t.step("item 5: framework_id must equal framework_info.id", async () => {
      const res = await postCall(
        url,
        subscribeBody({ framework_id: { value: sub.frameworkId } }),
        { "Content-Type": JSON_CT },
      );
      await res.body?.cancel();
      assertEquals(res.status, 400);
    });

    await t.step("item 5: invalid roles get an ERROR event and the stream closes", async () => {
      for (
        const info of [
          frameworkInfo({ roles: ["a", "a"], capabilities: [{ type: "MULTI_ROLE" }] }),
          frameworkInfo({ roles: ["a"] }),
          frameworkInfo({ role: "bad//role" }),
        ]
      ) {
        const res = await postCall(
          url,
          encode("mesos.v1.scheduler.Call", {
            type: "SUBSCRIBE",
            subscribe: { framework_info: info },
          }, JSON_CT),
          { "Content-Type": JSON_CT },
        );
        assertEquals(res.status, 200);
        const text = await res.text(); // the stream ends after the ERROR
        assertMatch(text, /"type":"ERROR"/);
      }
      const suppressed = await postCall(
        url,
        encode("mesos.v1.scheduler.Call", {
          type: "SUBSCRIBE",
          subscribe: { framework_info: frameworkInfo(), suppressed_roles: ["other"] },
        }, JSON_CT),
        { "Content-Type": JSON_CT },
      );
      assertMatch(await suppressed.text(), /not one of the framework's roles/);
    });

    await t.step(
      "protobuf stream when Accept asks only for protobuf; new stream id each time",
      async () => {
        const pb = await subscribe(url, { contentType: PB });
        assertEquals(pb.response.headers.get("Content-Type"), PB);
        assert(pb.streamId !== sub.streamId);
        assertEquals((await pb.events.next()).type, "HEARTBEAT");
        await pb.close();
      },
    );

    await t.step("the /master/api/v1/scheduler alias answers too", async () => {
      const res = await postCall(
        url,
        "{}",
        { "Content-Type": "text/plain" },
        "/master/api/v1/scheduler",
      );
      await res.body?.cancel();
      assertEquals(res.status, 415);
    });

    await t.step(
      "item 4 and 7: a broken stream makes calls 403, then removal after the failover timeout",
      async () => {
        const short = await subscribe(url, { info: frameworkInfo({ failover_timeout: 0.3 }) });
        await short.close();
        await new Promise((r) => setTimeout(r, 50));
        assertEquals(await short.call({ type: "REVIVE" }), 403);
        await new Promise((r) => setTimeout(r, 500));
        assert(env.cluster.isRemoved(short.frameworkId));
        const again = await postCall(
          url,
          encode("mesos.v1.scheduler.Call", {
            type: "SUBSCRIBE",
            framework_id: { value: short.frameworkId },
            subscribe: { framework_info: frameworkInfo({ id: { value: short.frameworkId } }) },
          }, JSON_CT),
          { "Content-Type": JSON_CT },
        );
        assertMatch(await again.text(), /Framework has been removed/);
        assertEquals(await short.call({ type: "REVIVE" }), 400);
      },
    );

    await t.step(
      'item 6: re-subscription sends ERROR "Framework failed over" to the old stream',
      async () => {
        const second = await subscribe(url, { frameworkId: sub.frameworkId });
        const error = await sub.events.next((e) => e.type === "ERROR", 5000);
        assertEquals(error.error.message, "Framework failed over");
        await sub.events.done;
        assertEquals(await sub.call({ type: "REVIVE" }), 400); // old stream id
        assertEquals(await second.call({ type: "REVIVE" }), 202);
        assertEquals(await second.call({ type: "TEARDOWN" }), 202);
        await second.events.done;
        assert(env.cluster.isRemoved(sub.frameworkId));
      },
    );
  } finally {
    await env.close();
  }
});

Deno.test("local master and agents answer oversize and half-sent requests with one line", async (t) => {
  const env = await startTestCluster({ agents: 1 });
  const ports = { master: env.cluster.port, agent: env.cluster.agent(0).port };
  try {
    for (const [who, port] of Object.entries(ports)) {
      await t.step(`${who}: 414 for a request line over 8 KiB`, async () => {
        const got = statusAndBody(
          await raw(port, `GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
        );
        assertEquals(got.status, 414, got.body);
        assertEquals(got.body.trim().split("\n").length, 1);
      });
      await t.step(`${who}: 431 for headers over 16 KiB`, async () => {
        const got = statusAndBody(
          await raw(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(17000)}\r\n\r\n`),
        );
        assertEquals(got.status, 431, got.body);
        assertEquals(got.body.trim().split("\n").length, 1);
      });
    }
    await t.step("408 for a request that does not finish arriving within 10 s", async () => {
      const answers = await Promise.all(
        Object.values(ports).map((port) =>
          raw(
            port,
            "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
            30_000,
          )
        ),
      );
      for (const text of answers) {
        const got = statusAndBody(text);
        assertEquals(got.status, 408, got.body);
        assertMatch(got.body, /within 10 s/);
      }
    });
    await t.step("the endpoints still answer whole requests", async () => {
      const health = await fetch(`${env.cluster.url}/health`);
      await health.body?.cancel();
      assertEquals(health.status, 200);
      const res = await fetch(`http://127.0.0.1:${ports.agent}/api/v1/executor`);
      await res.body?.cancel();
      assertEquals(res.status, 405);
    });
  } finally {
    await env.close();
  }
});
