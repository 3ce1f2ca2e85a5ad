/**
 * Passwords and ACLs of the redis-servers, against real redis-server
 * processes: the tenant's `default` user and the executor's internal user.
 */
import { Redis } from "ioredis";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";
import {
  ADMIN_USER,
  AUTH_CONFIG_FILE,
  authConfig,
  passwordProblem,
  randomSecret,
  redactSecrets,
  RedisProcess,
  redisServerArgs,
  REPLICATION_USER,
  replicationSecret,
} from "../lib/redis/mod.ts";

Deno.test("passwordProblem accepts 16 to 128 printable characters and never repeats the password", () => {
  const cases: [string, RegExp | undefined][] = [
    ["a".repeat(16), undefined],
    ["Sh0rt-but-0k!#%&*+,./:;<=>?@[]^_`{|}~", undefined],
    ["a".repeat(128), undefined],
    ["a".repeat(15), /16 to 128 characters long, but has 15/],
    ["a".repeat(129), /but has 129/],
    ["with a space inside", /printable ASCII/],
    ['quote"quote"quote"', /quotes/],
    ["back\\slash-back\\slash", /backslash/],
    ["tab\there-and-there", /printable/],
    ["ünïcödé-pässwörd-x", /printable/],
  ];
  for (const [password, want] of cases) {
    const problem = passwordProblem(password);
    if (want === undefined) {
      assertEquals(problem, undefined, password);
    } else {
      assertMatch(problem ?? "", want);
      assert(!problem!.includes(password), "the reason does not repeat the password");
    }
  }
  const secret = randomSecret();
  assertEquals(passwordProblem(secret), undefined);
  assert(secret !== randomSecret(), "random");
  assertEquals(
    redactSecrets(`a ${secret} b`, { password: secret, adminPassword: "x".repeat(20) }),
    "a *** b",
  );
});

Deno.test("no secret is on the redis-server command line; the config file holds them", () => {
  const auth = { password: randomSecret(), adminPassword: randomSecret() };
  const args = redisServerArgs({ port: 1234, dataDir: "/d", maxMemoryMB: 1, auth });
  assertEquals(args[0], `/d/${AUTH_CONFIG_FILE}`);
  assert(!args.join(" ").includes(auth.password) && !args.join(" ").includes(auth.adminPassword));
  const text = authConfig(auth);
  assertMatch(text, new RegExp(`user default on >${auth.password} `));
  assertMatch(text, new RegExp(`user ${ADMIN_USER} on >${auth.adminPassword} ~\\* &\\* \\+@all`));
  const repl = replicationSecret(auth);
  assert(repl !== auth.adminPassword && repl !== auth.password);
  assertMatch(text, new RegExp(`masteruser ${REPLICATION_USER}\nmasterauth ${repl}\n`));
});

function tenant(port: number, password?: string): Redis {
  const r = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    // The ready check (INFO) would fail with NOAUTH before the test's own command.
    enableReadyCheck: false,
    ...(password !== undefined ? { password } : {}),
  });
  r.on("error", () => {});
  return r;
}

Deno.test("a redis-server with passwords: NOAUTH, NOPERM for admin commands, FLUSHALL allowed, replication and promotion as the internal user", async (t) => {
  const dir = await tempDir("redis-auth");
  const auth = { password: randomSecret(), adminPassword: randomSecret() };
  const procs: RedisProcess[] = [];
  try {
    const master = await RedisProcess.start({
      port: freePort(),
      dataDir: `${dir}/m`,
      maxMemoryMB: 16,
      auth,
    });
    procs.push(master);
    const slave = await RedisProcess.start({
      port: freePort(),
      dataDir: `${dir}/s`,
      maxMemoryMB: 16,
      auth,
      replicaOf: { host: "127.0.0.1", port: master.port },
    });
    procs.push(slave);

    await t.step("the config file is owner-only and holds the secrets", async () => {
      const path = `${master.dataDir}/${AUTH_CONFIG_FILE}`;
      assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
      assert((await Deno.readTextFile(path)).includes(auth.password));
    });

    await t.step("a client without the password gets NOAUTH; a wrong one fails AUTH", async () => {
      const anon = tenant(master.port);
      await anon.connect();
      try {
        await anon.get("k").then(() => assert(false, "must fail"), (e: Error) => {
          assertMatch(e.message, /^NOAUTH/);
        });
      } finally {
        anon.disconnect();
      }
      const wrong = tenant(master.port);
      await wrong.connect();
      try {
        await wrong.call("AUTH", "not-the-password-0123").then(
          () => assert(false, "must fail"),
          (e: Error) => assertMatch(e.message, /^WRONGPASS/),
        );
      } finally {
        wrong.disconnect();
      }
    });

    await t.step(
      "the default user writes, FLUSHALLs, and gets NOPERM for admin commands",
      async () => {
        const r = tenant(master.port, auth.password);
        await r.connect();
        try {
          assertEquals(await r.set("k", "v"), "OK");
          const denied: [string, ...string[]][] = [
            ["REPLICAOF", "NO", "ONE"],
            ["SLAVEOF", "127.0.0.1", "1"],
            ["CONFIG", "SET", "maxmemory", "1"],
            ["CONFIG", "REWRITE"],
            ["SHUTDOWN", "NOSAVE"],
            ["DEBUG", "SLEEP", "0"],
            ["FAILOVER"],
            ["MODULE", "LIST"],
            ["ACL", "LIST"],
            ["CLIENT", "KILL", "USER", ADMIN_USER],
            ["CLIENT", "PAUSE", "1000"],
          ];
          for (const [cmd, ...args] of denied) {
            await r.call(cmd, ...args).then(
              () => assert(false, `${cmd} must be refused`),
              // DEBUG and MODULE are also off in redis 7's own defaults.
              (e: Error) =>
                assertMatch(
                  e.message,
                  cmd === "DEBUG" || cmd === "MODULE" ? /^(NOPERM|ERR .*not allowed)/ : /^NOPERM/,
                  `${cmd} ${args.join(" ")}`,
                ),
            );
          }
          assertEquals(await r.flushall(), "OK");
          assertEquals(await r.set("after", "flush"), "OK");
        } finally {
          r.disconnect();
        }
      },
    );

    await t.step(
      "the slave replicates with the internal user; the executor's client promotes it",
      async () => {
        await waitFor("the slave in sync", async () => {
          const info = await slave.client.info(1000);
          return info.role === "slave" && info.masterLinkUp;
        }, { timeoutMs: 20_000 });
        const r = tenant(slave.port, auth.password);
        await r.connect();
        try {
          await waitFor("data on the slave", async () => (await r.get("after")) === "flush", {
            timeoutMs: 10_000,
          });
        } finally {
          r.disconnect();
        }
        await slave.client.promote(2000);
        assertEquals(await slave.client.role(), "master");
        await slave.client.replicaOf("127.0.0.1", master.port, 2000);
        await master.client.setMinReplicas(0, 10, 2000);
      },
    );

    await t.step("a graceful stop goes through the internal user", async () => {
      const exit = await master.stop({ graceful: true, timeoutMs: 5000 });
      assertEquals(exit.signal, null);
    });
  } finally {
    await Promise.all(procs.map((p) => p.stop({ graceful: false })));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a restart in place rewrites an older auth config file owner-only with the new secrets", async () => {
  const dir = await tempDir("redis-auth-rewrite");
  const dataDir = `${dir}/d`;
  await Deno.mkdir(dataDir);
  const path = `${dataDir}/${AUTH_CONFIG_FILE}`;
  await Deno.writeTextFile(path, "# an older file, readable by all\n".repeat(50), { mode: 0o644 });
  await Deno.chmod(path, 0o644);
  const auth = { password: randomSecret(), adminPassword: randomSecret() };
  const proc = await RedisProcess.start({ port: freePort(), dataDir, maxMemoryMB: 16, auth });
  try {
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals(await Deno.readTextFile(path), authConfig(auth));
    assertEquals(await proc.client.role(), "master");
  } finally {
    await proc.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
