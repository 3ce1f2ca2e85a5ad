/**
 * Mesos authentication: the local cluster started with credentials refuses
 * unauthenticated frameworks and executors (401) as Mesos does; the
 * scheduler client sends HTTP Basic, the executor its bearer token; sched
 * with Principal, SecretFile and Role runs instances on such a cluster.
 */
import { encode } from "../lib/mesos/codec.ts";
import { basicAuthorization, SchedulerClient } from "../lib/mesos/scheduler_client.ts";
import { parseCredentials } from "../lib/mesos/local/auth.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { frameworkInfo, postCall, startTestCluster } from "./_mesos_local.ts";
import { tempDir, waitFor } from "./_util.ts";
import { create, startSched, waitRunning, withRedis } from "./_sched.ts";

const JSON_CT = "application/json";
const CREDENTIAL = { principal: "mrr", secret: "s3cret-with:colon" };

Deno.test("a local master with credentials authenticates frameworks like Mesos", async (t) => {
  const env = await startTestCluster({ agents: 1, credentials: [CREDENTIAL] });
  const url = env.cluster.url;
  const subscribeBody = (info = frameworkInfo()) =>
    encode("mesos.v1.scheduler.Call", {
      type: "SUBSCRIBE",
      subscribe: { framework_info: info },
    }, JSON_CT);
  try {
    await t.step("no credential or a wrong one: 401 with a Basic challenge", async () => {
      const cases: Record<string, string>[] = [
        {},
        { Authorization: basicAuthorization({ principal: "mrr", secret: "wrong" }) },
        { Authorization: "Basic !!!" },
        { Authorization: "Bearer abc" },
      ];
      for (const headers of cases) {
        const res = await postCall(url, subscribeBody(), {
          "Content-Type": JSON_CT,
          Accept: JSON_CT,
          ...headers,
        });
        await res.body?.cancel();
        assertEquals(res.status, 401, JSON.stringify(headers));
        assertEquals(res.headers.get("WWW-Authenticate"), 'Basic realm="mesos"');
      }
    });

    await t.step("a FrameworkInfo.principal other than the authenticated one: 400", async () => {
      const res = await postCall(url, subscribeBody(frameworkInfo({ principal: "other" })), {
        "Content-Type": JSON_CT,
        Accept: JSON_CT,
        Authorization: basicAuthorization(CREDENTIAL),
      });
      assertEquals(res.status, 400);
      assertMatch(
        await res.text(),
        /Authenticated principal 'mrr' does not match principal 'other'/,
      );
    });

    await t.step("the scheduler client with the credential subscribes and calls", async () => {
      const client = new SchedulerClient({
        master: url,
        frameworkInfo: frameworkInfo({ principal: "mrr" }),
        credential: CREDENTIAL,
        contentType: JSON_CT,
        onEvent: () => {},
      });
      client.start();
      try {
        await waitFor("SUBSCRIBED", () => client.state === "subscribed", { timeoutMs: 20_000 });
        await client.reconcile([]);
      } finally {
        await client.stop();
      }
    });
  } finally {
    await env.close();
  }
});

Deno.test("credentials files parse as Mesos writes them, with one-line errors", () => {
  assertEquals(
    parseCredentials(`{"credentials": [{"principal": "a", "secret": "b"}]}`, "f"),
    [{ principal: "a", secret: "b" }],
  );
  assertEquals(parseCredentials("# comment\na b\n\nc d\n", "f"), [
    { principal: "a", secret: "b" },
    { principal: "c", secret: "d" },
  ]);
  for (
    const [text, message] of [["a\n", /line 1 must be "principal secret"/], ["", /no credential/], [
      `{"credentials": [{"principal": ""}]}`,
      /credential 1 needs a "principal" and a "secret"/,
    ]] as const
  ) {
    let error: Error | undefined;
    try {
      parseCredentials(text, "f");
    } catch (e) {
      error = e as Error;
    }
    assert(error instanceof TypeError);
    assertMatch(error.message, message);
  }
});

/** The environment of every process whose working directory is under `root`. */
async function environsUnder(root: string): Promise<Record<string, string>[]> {
  const out: Record<string, string>[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (!(await Deno.readLink(`/proc/${entry.name}/cwd`)).startsWith(root)) continue;
      const text = await Deno.readTextFile(`/proc/${entry.name}/environ`);
      out.push(Object.fromEntries(
        text.split("\0").filter(Boolean).map((kv) => {
          const i = kv.indexOf("=");
          return [kv.slice(0, i), kv.slice(i + 1)];
        }),
      ));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

Deno.test({
  name:
    "sched with Principal, SecretFile and Role runs instances on a cluster that authenticates frameworks and executors",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("mesos-auth");
    await Deno.writeTextFile(`${dir}/secret`, `${CREDENTIAL.secret}\n`);
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:1",
      config: { Principal: "mrr", SecretFile: `${dir}/secret`, Role: "mrr/dev" },
    });
    try {
      assertEquals((await create(sched, "authd", 20, 0)).status, 201);
      const view = await waitRunning(sched, "authd", 90_000);
      await withRedis(view.Master!, async (redis) => assertEquals(await redis.ping(), "PONG"));
      // The master refuses a caller without the credential.
      const masterUrl = /Started the local Mesos cluster .* at (http:\/\/\S+)/.exec(sched.log())
        ?.[1];
      assert(masterUrl, "the log names the local master");
      const res = await postCall(masterUrl, `{"type":"SUBSCRIBE"}`, { "Content-Type": JSON_CT });
      await res.body?.cancel();
      assertEquals(res.status, 401);
      // The executor got a token, and the agent wants it.
      const executor = (await environsUnder(`${dir}/local`)).find((e) =>
        e.MESOS_EXECUTOR_AUTHENTICATION_TOKEN
      );
      assert(executor, "the executor has MESOS_EXECUTOR_AUTHENTICATION_TOKEN");
      const agent = `http://${executor.MESOS_AGENT_ENDPOINT}`;
      const heartbeat = (executorId: string) =>
        JSON.stringify({
          type: "HEARTBEAT",
          executor_id: { value: executorId },
          framework_id: { value: executor.MESOS_FRAMEWORK_ID },
        });
      const noToken = await postCall(agent, heartbeat(executor.MESOS_EXECUTOR_ID!), {
        "Content-Type": JSON_CT,
      }, "/api/v1/executor");
      await noToken.body?.cancel();
      assertEquals(noToken.status, 401);
      const token = `Bearer ${executor.MESOS_EXECUTOR_AUTHENTICATION_TOKEN}`;
      const ok = await postCall(agent, heartbeat(executor.MESOS_EXECUTOR_ID!), {
        "Content-Type": JSON_CT,
        Authorization: token,
      }, "/api/v1/executor");
      await ok.body?.cancel();
      assertEquals(ok.status, 202);
      const other = await postCall(agent, heartbeat("someone-else"), {
        "Content-Type": JSON_CT,
        Authorization: token,
      }, "/api/v1/executor");
      await other.body?.cancel();
      assertEquals(other.status, 403);
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
