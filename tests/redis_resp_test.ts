import assert from "node:assert/strict";
import { RedisClient, RedisProcess } from "../lib/redis/mod.ts";
import { encodeCommand, parseReply, RedisReplyError } from "../lib/redis/resp.ts";
import { freePort, tempDir } from "./_util.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("RESP commands are arrays of bulk strings counted in bytes", () => {
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", "é", 5])),
    "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n$1\r\n5\r\n",
  );
});

Deno.test("RESP replies parse whole, and wait for more bytes when cut anywhere", () => {
  const wire =
    "+OK\r\n-ERR bad\r\n:42\r\n$-1\r\n$5\r\nab\r\nc\r\n*2\r\n$6\r\nmaster\r\n*1\r\n:7\r\n";
  const whole = bytes(wire);
  const values: unknown[] = [];
  for (let at = 0; at < whole.length;) {
    const reply = parseReply(whole, at)!;
    values.push(reply.value);
    at = reply.next;
  }
  assert.equal(values.length, 6);
  assert.equal(values[0], "OK");
  assert.ok(values[1] instanceof RedisReplyError && values[1].message === "ERR bad");
  assert.equal((values[1] as Error).name, "ReplyError");
  assert.equal(values[2], 42);
  assert.equal(values[3], null);
  assert.equal(values[4], "ab\r\nc");
  assert.deepEqual(values[5], ["master", [7]]);
  // Every proper prefix of the last reply is incomplete, never an error.
  const start = wire.lastIndexOf("*2");
  for (let cut = start + 1; cut < whole.length; cut++) {
    assert.equal(parseReply(whole.subarray(0, cut), start), undefined, `cut at ${cut}`);
  }
});

Deno.test("RedisClient authenticates with a password, and with an ACL user and password", async () => {
  const dir = await tempDir("resp-auth");
  const proc = await RedisProcess.start({
    port: freePort(),
    dataDir: dir,
    maxMemoryMB: 16,
    extraArgs: ["--requirepass", "s3cret"],
    // The start-up PING is answered with NOAUTH: an answer, so the start succeeds.
  });
  try {
    const plain = new RedisClient({ port: proc.port });
    await assert.rejects(() => plain.call("SET", ["k", "v"]), /NOAUTH/);
    plain.close();

    const withPassword = new RedisClient({ port: proc.port, password: "s3cret" });
    assert.equal(await withPassword.call("SET", ["k", "v"]), "OK");
    assert.equal(await withPassword.call("GET", ["k"]), "v");
    assert.equal(await withPassword.role(), "master");
    withPassword.close();

    assert.equal(
      await new RedisClient({ port: proc.port, password: "s3cret" }).call("ACL", [
        "SETUSER",
        "ops",
        "on",
        ">opspass",
        "~*",
        "+@all",
      ]),
      "OK",
    );
    const user = new RedisClient({ port: proc.port, username: "ops", password: "opspass" });
    assert.equal(await user.call("GET", ["k"]), "v");
    assert.equal(await user.call("ACL", ["WHOAMI"]), "ops");
    user.close();

    const wrong = new RedisClient({ port: proc.port, username: "ops", password: "nope" });
    await assert.rejects(() => wrong.call("GET", ["k"]), /Cannot authenticate to .* as "ops"/);
    wrong.close();
  } finally {
    await proc.stop({ graceful: false });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RedisClient opens a new connection after the server closed the old one", async () => {
  const dir = await tempDir("resp-reconnect");
  const proc = await RedisProcess.start({ port: freePort(), dataDir: dir, maxMemoryMB: 16 });
  const client = new RedisClient({ port: proc.port });
  try {
    const id = await client.call("CLIENT", ["ID"]);
    await proc.client.call("CLIENT", ["KILL", "ID", String(id)]);
    // The first call after the kill may see the dead connection; one later call gets through.
    let answer: unknown;
    for (let i = 0; i < 3 && answer === undefined; i++) {
      answer = await client.call("PING").catch(() => undefined);
    }
    assert.equal(answer, "PONG");
  } finally {
    client.close();
    await proc.stop({ graceful: false });
    await Deno.remove(dir, { recursive: true });
  }
});
