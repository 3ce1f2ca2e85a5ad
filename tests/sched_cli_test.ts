/**
 * `sched` as a user runs it: flags, config errors and a store address that
 * cannot be right end with exit code 2 and one line naming the problem; a
 * well-formed store address that does not answer yet is waited for.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { deadPort } from "./_ports.ts";
import { freePort, tempDir, waitFor } from "./_util.ts";

const SCHED = new URL("../cmd/sched.ts", import.meta.url).pathname;

async function run(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCHED, ...args],
    stdout: "piped",
    stderr: "piped",
    // Each case ends on its own within seconds; a sched that runs on would
    // otherwise hang the suite.
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("sched -DumpEmptyConfig prints every config field as indented JSON", async () => {
  const r = await run("-DumpEmptyConfig");
  assertEquals(r.code, 0, r.stderr);
  const config = JSON.parse(r.stdout);
  for (const f of ["UserName", "FrameworkName", "Master", "DBType", "DBEndPoint", "HTTPPort"]) {
    assert(f in config, f);
  }
  assertMatch(r.stdout, /\n {3}"UserName"/);
});

Deno.test("sched -h prints the usage", async () => {
  for (const flag of ["-h", "--help"]) {
    const r = await run(flag);
    assertEquals(r.code, 0);
    assertMatch(r.stdout, /Usage: sched/);
  }
});

Deno.test("sched stops with one line and exit code 2 on a user's mistake", async () => {
  const dir = await tempDir("sched-cli");
  try {
    const write = async (name: string, value: unknown) => {
      const path = `${dir}/${name}`;
      await Deno.writeTextFile(path, typeof value === "string" ? value : JSON.stringify(value));
      return path;
    };
    const badField = await write("bad.json", { HTTPPort: "lots" });
    const unknown = await write("unknown.json", { Bogus: 1 });
    const broken = await write("broken.json", "{");
    const store = (DBType: string, DBEndPoint: string) => ({
      DBType,
      DBEndPoint,
      HTTPPort: freePort(),
      ArtifactPort: freePort(),
      LogFile: `${dir}/log`,
    });
    const exposed = await write("exposed.json", {
      HTTPAddress: "0.0.0.0",
      HTTPPort: freePort(),
      LogFile: `${dir}/log`,
    });
    const shortToken = await write("short.json", { APIToken: "short", LogFile: `${dir}/log` });
    const noTokenFile = await write("notokens.json", {
      APITokenFile: `${dir}/missing-tokens`,
      LogFile: `${dir}/log`,
    });
    const badTokenFile = await write("tokens", "alice:0123456789abcdef0123\nbob\n");
    const badTokens = await write("badtokens.json", {
      APITokenFile: badTokenFile,
      LogFile: `${dir}/log`,
    });
    const noKey = await write("nokey.json", { CertFile: `${dir}/cert.pem` });
    const missingCert = await write("nocert.json", {
      CertFile: `${dir}/cert.pem`,
      KeyFile: `${dir}/key.pem`,
      LogFile: `${dir}/log`,
    });
    const noPort = await write("etcd.json", store("etcd", "etcd1.example.com"));
    const badPort = await write("zk.json", store("zookeeper", "127.0.0.1:99999"));
    // Agents on other hosts: sched from source has only the development
    // launcher, which works on this host only.
    const remote = { Master: "192.0.2.1:5050", HTTPPort: freePort(), LogFile: `${dir}/log` };
    const launcherRemote = await write("launcher.json", { ...remote, ArtifactIP: "192.0.2.2" });
    const loopbackRemote = await write("loopback.json", { ...remote, ArtifactIP: "127.0.0.1" });
    const launcherHosts = await write("hosts.json", {
      Master: "local:3",
      LocalNetwork: "198.18.7.0/24",
      HTTPPort: freePort(),
      LogFile: `${dir}/log`,
    });
    const noExecutor = await write("noexec.json", {
      ...remote,
      ArtifactIP: "192.0.2.2",
      ExecutorPath: `${dir}/no-such-executor`,
    });
    const noRedis = await write("noredis.json", {
      Master: "local",
      HTTPPort: freePort(),
      LogFile: `${dir}/log`,
      RedisServerPath: `${dir}/no-such-redis`,
    });
    const noSecret = await write("nosecret.json", {
      HTTPPort: freePort(),
      LogFile: `${dir}/log`,
      Principal: "mrr",
      SecretFile: `${dir}/no-such-secret`,
    });
    const cases: [string[], RegExp][] = [
      [[`-config=${noSecret}`], /Cannot read SecretFile ".*no-such-secret": no such file/],
      [[`-config=${exposed}`], /without authentication: set "APIToken".*"InsecureAPI": true/],
      [[`-config=${shortToken}`], /"APIToken": a token must be at least 16 characters/],
      [[`-config=${noTokenFile}`], /Cannot read APITokenFile .*missing-tokens.*no such file/],
      [[`-config=${badTokens}`], /line 2: must be "name:token"/],
      [[`-config=${noKey}`], /"CertFile" and "KeyFile" go together/],
      [[`-config=${missingCert}`], /Cannot read CertFile .*cert\.pem.*no such file/],
      [
        [`-config=${launcherRemote}`],
        /development launcher works only on this host.*"192\.0\.2\.1:5050"/,
      ],
      [[`-config=${loopbackRemote}`], /"ArtifactIP" is the loopback address "127\.0\.0\.1"/],
      [
        [`-config=${launcherHosts}`],
        /launcher works only on this host, but the agents of Master "local:3" are hosts of their own/,
      ],
      [[`-config=${noExecutor}`], /"ExecutorPath" names ".*no-such-executor", which is neither/],
      [[`-config=${noRedis}`], /"RedisServerPath" names ".*no-such-redis", which is not a file/],
      [["-nope"], /Unknown flag "-nope"/],
      [["stray"], /Unexpected argument "stray"/],
      [["-config"], /"-config" needs a file name/],
      [[`-config=${dir}/missing.json`], /missing\.json.*no such file/],
      [[`--config`, badField], /"HTTPPort"/],
      [[`-config`, unknown], /"Bogus"/],
      [[`--config=${broken}`], /not valid JSON/],
      [[`-config=${noPort}`], /"DBEndPoint".*"etcd1\.example\.com" is not host:port/],
      [[`-config=${badPort}`], /"DBEndPoint".*"127\.0\.0\.1:99999" has a port outside/],
    ];
    for (const [args, pattern] of cases) {
      const r = await run(...args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, pattern);
      assertEquals(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sched waits for a store that does not answer yet, logging it, and stops on SIGTERM", async () => {
  const dir = await tempDir("sched-cli-wait");
  try {
    const log = `${dir}/log`;
    const httpPort = freePort();
    // Well formed; a held port nothing listens on (see _ports.ts).
    const dead = deadPort();
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        DBType: "etcd",
        DBEndPoint: `127.0.0.1:${dead}`,
        HTTPPort: httpPort,
        HTTPAddress: "127.0.0.1",
        ArtifactPort: freePort(),
        LogFile: log,
      }),
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SCHED, `-config=${dir}/config.json`],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const read = () => {
      try {
        return Deno.readTextFileSync(log);
      } catch {
        return "";
      }
    };
    try {
      await waitFor(
        "the waiting line",
        () => new RegExp(`Waiting for the store etcd at 127\\.0\\.0\\.1:${dead}`).test(read()),
        {
          timeoutMs: 30_000,
        },
      );
      const res = await fetch(`http://127.0.0.1:${httpPort}/v1/HEALTH`);
      assertEquals(res.status, 503);
      const body = await res.json();
      assertEquals(body.Role, "standby");
      assertMatch(body.Store, /^unreachable: /);
    } finally {
      child.kill("SIGTERM");
    }
    const { code, stderr } = await child.output();
    assertEquals(code, 0, new TextDecoder().decode(stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
