/**
 * Passwords on every instance, end to end with a real `sched`: clients need
 * the password, the default user cannot touch the topology, the password
 * shows up nowhere but CREDENTIALS (logs, STATUS, command lines, sandboxes),
 * `mrr credentials` prints it, and a restarted scheduler keeps it.
 */
import { Redis } from "ioredis";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  create,
  deleteAndWait,
  list,
  password,
  type ProcView,
  startSched,
  waitRunning,
  withRedis,
} from "./_sched.ts";
import { runMrr, show } from "./_mrr.ts";

const GIVEN = "e2e-chosen-password-0123";

function bare(p: ProcView, pass?: string): Redis {
  const r = new Redis({
    host: p.IP,
    port: Number(p.Port),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    ...(pass ? { password: pass } : {}),
  });
  r.on("error", () => {});
  return r;
}

/** Every file under `dir` whose text holds `needle` (the redis auth config files excepted). */
async function filesHolding(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (path: string) => {
    for await (const e of Deno.readDir(path)) {
      const full = `${path}/${e.name}`;
      if (e.isDirectory) await walk(full);
      else if (e.isFile && e.name !== "mrr-auth.conf") {
        const bytes = await Deno.readFile(full).catch(() => new Uint8Array());
        if (new TextDecoder().decode(bytes).includes(needle)) found.push(full);
      }
    }
  };
  await walk(dir);
  return found;
}

Deno.test({
  name:
    "every instance has a password: NOAUTH, NOPERM, FLUSHALL, nowhere in logs, STATUS or ps; kept across a restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await tempDir("e2e-security-redis");
    let sched = await startSched({
      dir,
      dbType: "embedded",
      master: "local:2",
    });
    try {
      let random = "";
      await t.step("create an MS with a random password and an S with a given one", async () => {
        assertEquals((await create(sched, "ms", 20, 1)).status, 201);
        assertEquals((await create(sched, "given", 20, 0, { Password: GIVEN })).status, 201);
        await waitRunning(sched, "ms");
        await waitRunning(sched, "given");
        random = (await password(sched, "ms"))!;
        assertMatch(random, /^[A-Za-z0-9_-]{43}$/);
        assertEquals(await password(sched, "given"), GIVEN);
      });

      await t.step("a client without the password gets NOAUTH; with it, it works", async () => {
        const ms = await waitRunning(sched, "ms");
        const anon = bare(ms.Master!);
        await anon.connect();
        try {
          await anon.set("k", "v").then(() => assert(false, "must fail"), (e: Error) => {
            assertMatch(e.message, /^NOAUTH/);
          });
        } finally {
          anon.disconnect();
        }
        await withRedis(ms.Master!, async (r) => {
          assertEquals(await r.set("k", "v"), "OK");
        });
        await withRedis(ms.Slaves[0]!, async (r) => {
          await waitFor("replicated with passwords", async () => (await r.get("k")) === "v", {
            timeoutMs: 20_000,
          });
        });
      });

      await t.step(
        "the default user gets NOPERM for REPLICAOF, CONFIG SET, SHUTDOWN; FLUSHALL works",
        async () => {
          const given = await waitRunning(sched, "given");
          const r = bare(given.Master!, GIVEN);
          await r.connect();
          try {
            for (
              const cmd of [["REPLICAOF", "NO", "ONE"], ["CONFIG", "SET", "maxmemory", "1"], [
                "SHUTDOWN",
                "NOSAVE",
              ]] as [string, ...string[]][]
            ) {
              await r.call(...cmd).then(
                () => assert(false, `${cmd[0]} must be refused`),
                (e: Error) => assertMatch(e.message, /^NOPERM/, cmd[0]),
              );
            }
            assertEquals(await r.set("x", "1"), "OK");
            assertEquals(await r.flushall(), "OK");
          } finally {
            r.disconnect();
          }
          // The health checks still pass: the instance stays RUNNING.
          assertEquals((await waitRunning(sched, "given")).Status, "RUNNING");
        },
      );

      await t.step("mrr credentials prints it", async () => {
        const config = `${dir}/mrr.json`;
        const r = await runMrr(config, ["credentials", "-n", "given"], { MRR_ENDPOINT: sched.url });
        assertEquals(r.code, 0, show(r));
        assertEquals(r.stdout, `${GIVEN}\n`);
        const missing = await runMrr(config, ["credentials", "-n", "nope"], {
          MRR_ENDPOINT: sched.url,
        });
        assertEquals(missing.code, 1, show(missing));
        assertMatch(missing.stderr, /instance "nope" does not exist \(404\)/);
      });

      await t.step(
        "the passwords are in no log, STATUS list, command line or sandbox file",
        async () => {
          const statusText = JSON.stringify(await (await sched.api("/v1/STATUS")).json());
          const ps = new TextDecoder().decode(
            (await new Deno.Command("ps", { args: ["-eo", "args"], stdout: "piped" }).output())
              .stdout,
          );
          for (const secret of [random, GIVEN]) {
            assert(!sched.log().includes(secret), "not in the sched log");
            assert(!statusText.includes(secret), "not in STATUS");
            assert(!ps.includes(secret), "not on any command line");
            // Sandboxes: executor logs, redis logs, the fetched launcher, AOF files...
            // The data files would hold it only if a client wrote it; none did.
            assertEquals(await filesHolding(`${dir}/local`, secret), [], "no sandbox file");
          }
          assert((await list(sched)).every((v) => !JSON.stringify(v).includes("Password")));
        },
      );

      await t.step(
        "a restarted scheduler keeps every password; relaunched processes use it",
        async () => {
          await sched.stop();
          sched = await startSched({
            ...sched.options,
            httpPort: sched.httpPort,
            artifactPort: sched.artifactPort,
            prefix: sched.prefix,
          });
          assertEquals(await password(sched, "ms"), random);
          assertEquals(await password(sched, "given"), GIVEN);
          // The local cluster restarted with sched: the processes are relaunched
          // (STATUS shows the stored addresses meanwhile) with the same password.
          await waitFor("the relaunched master to answer with the kept password", async () => {
            const given = await waitRunning(sched, "given", 120_000);
            const r = bare(given.Master!, GIVEN);
            try {
              await r.connect();
              return (await r.ping()) === "PONG";
            } catch {
              return false;
            } finally {
              r.disconnect();
            }
          }, { timeoutMs: 120_000, intervalMs: 500 });
          await deleteAndWait(sched, "ms");
          await deleteAndWait(sched, "given");
        },
      );
    } finally {
      await sched.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
