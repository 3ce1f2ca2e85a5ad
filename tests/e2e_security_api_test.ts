/**
 * The REST API of a real `sched` process as an attacker meets it: tokens,
 * cross-site requests, oversize and slow requests; then HTTPS with `mrr`.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir } from "./_util.ts";
import { startSched } from "./_sched.ts";
import { runMrr, show } from "./_mrr.ts";
import { makeTestCert } from "./_tls.ts";

const TOKEN = "e2e-token-0123456789abcdef";

/** Sends raw bytes to `port`; returns the status and body of the answer (the server closes). */
async function rawAnswer(port: number, data: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let out = "";
  try {
    await conn.write(new TextEncoder().encode(data));
    const buf = new Uint8Array(16 * 1024);
    // The server answers and closes; 30 s bounds a broken server.
    const timer = setTimeout(() => conn.close(), 30_000);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        out += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      // closed
    } finally {
      clearTimeout(timer);
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return {
    status: Number(/^HTTP\/1\.1 (\d+)/.exec(out)?.[1] ?? 0),
    body: out.slice(out.indexOf("\r\n\r\n") + 4),
  };
}

Deno.test({
  name: "sched with a token refuses bad requests with one line: 401, 403, 414, 431, 408",
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-security-api");
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:1",
      config: { APIToken: TOKEN },
      token: TOKEN,
    });
    try {
      const cases: [string, () => Promise<{ status: number; body: string }>, number, RegExp][] = [
        ["no token", () => answer(fetch(`${sched.url}/v1/STATUS`)), 401, /Authentication required/],
        [
          "a wrong token",
          () =>
            answer(fetch(`${sched.url}/v1/STATUS`, { headers: { authorization: "Bearer nope" } })),
          401,
          /not valid/,
        ],
        [
          "a cross-site form POST with the token",
          () =>
            answer(sched.api("/v1/CREATE/evil/100/1/0", {
              method: "POST",
              headers: { origin: "http://evil.example" },
            })),
          403,
          /Cross-site request refused/,
        ],
        [
          "a cross-site form POST without it",
          () =>
            answer(fetch(`${sched.url}/v1/CREATE/evil/100/1/0`, {
              method: "POST",
              headers: { origin: "http://evil.example", "sec-fetch-site": "cross-site" },
            })),
          403,
          /Cross-site/,
        ],
        [
          "a 9 KiB URL",
          () => rawAnswer(sched.httpPort, `GET /v1/STATUS/${"a".repeat(9000)} HTTP/1.1\r\n\r\n`),
          414,
          /request line is longer than 8192 bytes/,
        ],
        [
          "17 KiB of headers",
          () =>
            rawAnswer(
              sched.httpPort,
              `GET /v1/STATUS HTTP/1.1\r\nHost: x\r\nX-Pad: ${"a".repeat(17000)}\r\n\r\n`,
            ),
          431,
          /headers are longer than 16384 bytes/,
        ],
        [
          "a request that stops half-way",
          () => rawAnswer(sched.httpPort, "POST /v1/CREATE/x/1/1/0 HTTP/1.1\r\nHost: x\r\n"),
          408,
          /did not arrive in full within 10 s/,
        ],
      ];
      for (const [label, send, status, pattern] of cases) {
        await t.step(label, async () => {
          const got = await send();
          assertEquals(got.status, status, got.body);
          assertMatch(got.body, pattern);
          assertEquals(got.body.trim().split("\n").length, 1, `one line: ${got.body}`);
        });
      }
      await t.step("the UI is open; the API answers with the token", async () => {
        assertEquals((await answer(fetch(`${sched.url}/`))).status, 200);
        assertEquals((await answer(sched.api("/v1/STATUS"))).body, "[]");
        assert(!sched.log().includes(TOKEN), "the token is not logged");
        assert(!(await sched.api("/v1/STATUS/evil")).ok, "nothing was created");
      });
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

async function answer(res: Promise<Response>): Promise<{ status: number; body: string }> {
  const r = await res;
  return { status: r.status, body: await r.text() };
}

Deno.test({
  name: "sched serves HTTPS with CertFile/KeyFile; mrr init https://... --token and status work",
  sanitizeResources: false,
  async fn() {
    const dir = await tempDir("e2e-security-tls");
    const cert = await makeTestCert(dir);
    const sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:1",
      config: { APIToken: TOKEN, CertFile: cert.certFile, KeyFile: cert.keyFile },
      token: TOKEN,
      caCert: cert.cert,
    });
    try {
      assertMatch(sched.url, /^https:\/\/localhost:\d+$/);
      assertMatch(sched.log(), /REST API: HTTPS on 127\.0\.0\.1, 1 API token\(s\) required/);
      const config = `${dir}/mrr/config.json`;
      const env = { DENO_CERT: cert.certFile };
      const init = await runMrr(config, ["init", sched.url, "--token", TOKEN], env);
      assertEquals(init.code, 0, show(init));
      const create = await runMrr(config, ["create", "-n", "tls1", "-m", "20"], env);
      assertEquals(create.code, 0, show(create));
      const status = await runMrr(config, ["status"], env);
      assertEquals(status.code, 0, show(status));
      assertMatch(status.stdout, /tls1/);
      const del = await runMrr(config, ["delete", "-n", "tls1", "-w"], env);
      assertEquals(del.code, 0, show(del));
      assertMatch(sched.log(), /CREATE tls1 .* by token "default" from 127\.0\.0\.1:\d+/);
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
