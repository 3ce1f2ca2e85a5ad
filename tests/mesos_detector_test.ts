import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { Buffer } from "node:buffer";
import zookeeper from "node-zookeeper-client";
import {
  type DetectedLeader,
  fetchFollowingRedirects,
  leaderNode,
  masterUrlFromInfo,
  parseMasterSpec,
  ZooKeeperDetector,
} from "../lib/mesos/detector.ts";
import { startZooKeeper } from "./_services.ts";
import { freePort, waitFor } from "./_util.ts";

Deno.test("master settings parse into URLs or a ZooKeeper group", () => {
  deepStrictEqual(parseMasterSpec("10.0.0.5:5050"), {
    kind: "urls",
    urls: ["http://10.0.0.5:5050"],
  });
  deepStrictEqual(parseMasterSpec("a:1, b:2"), {
    kind: "urls",
    urls: ["http://a:1", "http://b:2"],
  });
  deepStrictEqual(parseMasterSpec("http://h:5050/"), { kind: "urls", urls: ["http://h:5050"] });
  deepStrictEqual(parseMasterSpec("master@1.2.3.4:5"), {
    kind: "urls",
    urls: ["http://1.2.3.4:5"],
  });
  deepStrictEqual(parseMasterSpec("host"), { kind: "urls", urls: ["http://host:5050"] });
  deepStrictEqual(parseMasterSpec("zk://h1:2181,h2:2181/mesos"), {
    kind: "zk",
    servers: "h1:2181,h2:2181",
    path: "/mesos",
  });
  deepStrictEqual(parseMasterSpec("zk://u:p@h1:2181/a/b"), {
    kind: "zk",
    servers: "h1:2181",
    path: "/a/b",
    auth: "u:p",
  });
  throws(() => parseMasterSpec("zk://h1:2181/"), TypeError);
  throws(() => parseMasterSpec("zk://h1/mesos"), TypeError);
  throws(() => parseMasterSpec(" , "), TypeError);
  throws(() => parseMasterSpec("a b:1"), TypeError);
});

Deno.test("the leader is the json.info_ child with the smallest sequence", () => {
  equal(
    leaderNode(["log_replicas", "json.info_0000000012", "json.info_0000000003", "info_0000000001"]),
    "json.info_0000000003",
  );
  equal(leaderNode(["log_replicas"]), undefined);
});

Deno.test("a master URL comes from address, else pid, never the numeric ip", () => {
  equal(
    masterUrlFromInfo({ ip: 16777343, port: 1, address: { ip: "127.0.0.1", port: 5050 } }),
    "http://127.0.0.1:5050",
  );
  equal(masterUrlFromInfo({ pid: "master@10.1.2.3:5051", port: 9 }), "http://10.1.2.3:5051");
  equal(masterUrlFromInfo({ address: { hostname: "m1", port: 5 } }), "http://m1:5");
  throws(() => masterUrlFromInfo({ ip: 1 }), TypeError);
});

// deno-lint-ignore no-explicit-any
type Zk = any;

function zkCall<T>(fn: (cb: (error: Error | null, result?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    fn((error, result) => (error ? reject(error) : resolve(result as T)))
  );
}

function masterInfo(port: number) {
  return JSON.stringify({
    id: `m-${port}`,
    ip: 16777343,
    port,
    pid: `master@127.0.0.1:${port}`,
    hostname: "localhost",
    address: { hostname: "localhost", ip: "127.0.0.1", port },
  });
}

Deno.test({
  name: "the ZooKeeper detector follows the smallest json.info_ node",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const server = await startZooKeeper();
    const client: Zk = zookeeper.createClient(server.endpoint, { sessionTimeout: 5000 });
    const changes: (DetectedLeader | undefined)[] = [];
    const detector = new ZooKeeperDetector({
      servers: server.endpoint,
      path: "/mesos",
      onChange: (leader) => changes.push(leader),
    });
    try {
      await new Promise<void>((resolve) => {
        client.once("connected", () => resolve());
        client.connect();
      });
      detector.start();
      await zkCall((cb) => client.mkdirp("/mesos", cb));
      await zkCall((cb) => client.create("/mesos/log_replicas", cb));
      const create = (port: number) =>
        zkCall<string>((cb) =>
          client.create(
            "/mesos/json.info_",
            Buffer.from(masterInfo(port)), // node-zookeeper-client drops non-Buffer data
            zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
            cb,
          )
        );
      const first = await create(5001);
      const second = await create(5002);
      await create(5003);
      const leader = await waitFor("a leader", () => detector.leader, { timeoutMs: 15_000 });
      equal(leader.url, "http://127.0.0.1:5001");
      equal(`/mesos/${leader.node}`, first);
      equal(leader.info.id, "m-5001");

      await zkCall((cb) => client.remove(first, -1, cb));
      await waitFor("the next leader", () => detector.leader?.url === "http://127.0.0.1:5002");
      equal(`/mesos/${detector.leader!.node}`, second);

      await zkCall((cb) => client.remove(second, -1, cb));
      await waitFor("the third leader", () => detector.leader?.url === "http://127.0.0.1:5003");
      deepStrictEqual(
        changes.map((c) => c?.url),
        ["http://127.0.0.1:5001", "http://127.0.0.1:5002", "http://127.0.0.1:5003"],
      );
    } finally {
      detector.close();
      client.close();
      await server.stop();
    }
  },
});

Deno.test("307 redirects with a protocol-relative Location are followed", async () => {
  const leaderPort = freePort();
  const seen: string[] = [];
  const leader = Deno.serve(
    { hostname: "127.0.0.1", port: leaderPort, onListen: () => {} },
    async (req) => {
      seen.push(`leader ${req.method} ${new URL(req.url).pathname} ${await req.text()}`);
      return new Response(null, { status: 202 });
    },
  );
  const follower = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      seen.push(`follower ${req.method} ${await req.text()}`);
      return new Response(null, {
        status: 307,
        headers: { location: `//127.0.0.1:${leaderPort}/api/v1/scheduler` },
      });
    },
  );
  try {
    const { response, url } = await fetchFollowingRedirects(
      `http://127.0.0.1:${follower.addr.port}/api/v1/scheduler`,
      { method: "POST", body: "hello", headers: { "content-type": "application/json" } },
    );
    equal(response.status, 202);
    equal(url, `http://127.0.0.1:${leaderPort}/api/v1/scheduler`);
    deepStrictEqual(seen, ["follower POST hello", "leader POST /api/v1/scheduler hello"]);
  } finally {
    await leader.shutdown();
    await follower.shutdown();
  }
});
