import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "./_assert.ts";
import {
  ConfigError,
  defaultConfig,
  loadConfigFile,
  localReserved,
  parseConfig,
} from "../lib/config.ts";
import { tempDir } from "./_util.ts";

const SCHED = new URL("../cmd/sched.ts", import.meta.url).pathname;

async function sched(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCHED, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("the original's config, with ports written as strings, parses", () => {
  const config = parseConfig(JSON.stringify({
    UserName: "ubuntu",
    FrameworkName: "MrRedis",
    Master: "127.0.0.1:5050",
    ExecutorPath: "./MrRedisExecutor",
    RedisImage: "redis:3.0-alpine",
    DBType: "etcd",
    DBEndPoint: "127.0.0.1:2379",
    LogFile: "stderr",
    ArtifactIP: "127.0.0.1",
    ArtifactPort: "5454",
    HTTPPort: "5656",
  }));
  assertEquals(config.HTTPPort, 5656);
  assertEquals(config.ArtifactPort, 5454);
  assertEquals(config.DBType, "etcd");
  assertEquals(config.Master, "127.0.0.1:5050");
});

Deno.test("fields left out take their defaults", () => {
  const config = parseConfig(`{"HTTPPort": 7000}`);
  assertEquals(config, { ...defaultConfig(), HTTPPort: 7000 });
  assertEquals(parseConfig("{}"), defaultConfig());
});

Deno.test("ExecutorPath and ArtifactIP default to empty: the executor of this sched, an address agents reach", () => {
  assertEquals(defaultConfig().ExecutorPath, "");
  assertEquals(defaultConfig().ArtifactIP, "");
  // A loopback ArtifactIP is fine when the agents share this host.
  assertEquals(
    parseConfig(`{"Master": "local:2", "ArtifactIP": "127.0.0.1"}`).ArtifactIP,
    "127.0.0.1",
  );
  assertEquals(
    parseConfig(`{"Master": "10.0.0.5:5050", "ArtifactIP": "10.0.0.9"}`).ArtifactIP,
    "10.0.0.9",
  );
});

Deno.test("LocalReserved spreads reservations over the local agents", () => {
  const config = parseConfig(
    `{"Master": "local:3", "LocalPortsBase": 31000, "LocalReserved": "cpus(redis):1  1=cpus(redis):2;ports(redis):[31500-31509]"}`,
  );
  assertEquals(localReserved(config, 3), [
    "cpus(redis):1",
    "cpus(redis):2;ports(redis):[31500-31509]",
    "cpus(redis):1",
  ]);
  assertEquals(localReserved(defaultConfig(), 3), ["", "", ""]);
});

Deno.test("the leader election fields parse and default to a derived URL and a 10 s ttl", () => {
  assertEquals(defaultConfig().AdvertiseURL, "");
  assertEquals(defaultConfig().LeaderTTLSeconds, 10);
  const config = parseConfig(`{"AdvertiseURL": "http://sched1:5656", "LeaderTTLSeconds": 5}`);
  assertEquals(config.AdvertiseURL, "http://sched1:5656");
  assertEquals(config.LeaderTTLSeconds, 5);
});

Deno.test("bad configs are refused with a line naming the field and value", async (t) => {
  const cases: [string, RegExp][] = [
    [`{"DBEndpoint": "x"}`, /unknown field "DBEndpoint" \(did you mean "DBEndPoint"\?\)/],
    [`{"DBEndPont": "x"}`, /unknown field "DBEndPont" \(did you mean "DBEndPoint"\?\)/],
    [`{"HTTPPrt": 1}`, /unknown field "HTTPPrt" \(did you mean "HTTPPort"\?\)/],
    [`{"Nonsense": 1}`, /unknown field "Nonsense"$/],
    [`{"HTTPPort": 70000}`, /"HTTPPort" must be a port number.*70000/],
    [`{"HTTPPort": "abc"}`, /"HTTPPort" must be a port number.*"abc"/],
    [`{"ArtifactPort": -1}`, /"ArtifactPort" must be a port number.*-1/],
    [`{"HTTPPort": 80.5}`, /"HTTPPort".*80.5/],
    [`{"DBType": "mysql"}`, /"DBType" must be one of.*"mysql"/],
    [`{"UserName": 5}`, /"UserName" must be a string, but got 5/],
    [`{"Master": "local:0"}`, /"Master" must be "local" or "local:N".*"local:0"/],
    [`{"DBType": "etcd", "DBEndPoint": ""}`, /"DBEndPoint" must name at least one endpoint/],
    [`{"DBType": "etcd", "DBEndPoint": "etcd1"}`, /"DBEndPoint".*"etcd1" is not host:port/],
    [
      `{"DBType": "zookeeper", "DBEndPoint": "zk1:2181,zk2:99999"}`,
      /"DBEndPoint".*"zk2:99999" has a port outside 1-65535/,
    ],
    [`{"HTTPPort": 1,}`, /not valid JSON/],
    [`[1, 2]`, /must be a JSON object/],
    [`{"LocalPortsPerAgent": 0}`, /"LocalPortsPerAgent" must be a whole number.*0/],
    [`{"LocalPortsBase": 65000}`, /"LocalPortsBase" \(65000\).*past 65535/],
    [`{"LocalGCDelaySeconds": -1}`, /"LocalGCDelaySeconds" must be a non-negative number.*-1/],
    [`{"LeaderTTLSeconds": 1}`, /"LeaderTTLSeconds" must be from 2 to 600 seconds, but got 1/],
    [`{"LeaderTTLSeconds": "10"}`, /"LeaderTTLSeconds" must be a non-negative number.*"10"/],
    [
      `{"AdvertiseURL": "sched1:5656"}`,
      /"AdvertiseURL" must be empty or an http\(s\) URL.*"sched1:5656"/,
    ],
    [
      `{"Master": "10.0.0.5:5050", "ArtifactIP": "127.0.0.1"}`,
      /"ArtifactIP" is the loopback address "127\.0\.0\.1", which agents of Master "10\.0\.0\.5:5050" on other hosts cannot reach/,
    ],
    [
      `{"Master": "zk://10.0.0.5:2181/mesos", "ArtifactIP": "localhost"}`,
      /"ArtifactIP" is the loopback address "localhost"/,
    ],
    [`{"Principal": "mrr"}`, /field "Principal" "mrr" needs "Secret" or "SecretFile"/],
    [`{"Secret": "x"}`, /field "Secret" is set but "Principal" is empty/],
    [`{"SecretFile": "/s"}`, /field "SecretFile" is set but "Principal" is empty/],
    [
      `{"Principal": "mrr", "Secret": "x", "SecretFile": "/s"}`,
      /fields "Secret" and "SecretFile" exclude each other/,
    ],
    [`{"Principal": "a:b", "Secret": "x"}`, /field "Principal" must hold no ":"/],
    [`{"Role": ""}`, /field "Role" must not be empty/],
    [`{"Role": "a//b"}`, /field "Role" must be "\/"-separated names.*"a\/\/b"/],
    [`{"Role": "dev/-x"}`, /field "Role" must have no part.*"dev\/-x"/],
    [
      `{"Master": "10.0.0.5:5050", "LocalReserved": "cpus(redis):1"}`,
      /field "LocalReserved" needs Master "local" or "local:N", but got "10\.0\.0\.5:5050"/,
    ],
    [
      `{"LocalReserved": "cpus:1"}`,
      /field "LocalReserved": agent 0: Resource entry "cpus:1" reserves for no role/,
    ],
    [
      `{"Master": "local:2", "LocalReserved": "2=cpus(redis):1"}`,
      /field "LocalReserved": Reserved resources "2=cpus\(redis\):1" name agent 2, but there are 2 agent\(s\)/,
    ],
    [
      `{"LocalPortsBase": 31000, "LocalReserved": "1=ports(redis):[31000-31009]"}`,
      /field "LocalReserved": agent 1: The agent reserves ports outside its range 31500-31999/,
    ],
    [
      `{"LocalReserved": "mem(redis):5000"}`,
      /agent 0: The agent reserves 5000 mem in total, but has only 4096/,
    ],
  ];
  for (const [text, message] of cases) {
    await t.step(text, () => {
      const error = assertThrows(() => parseConfig(text)) as Error;
      assert(error instanceof ConfigError);
      assertMatch(error.message, message);
    });
  }
});

Deno.test("a missing config file is a ConfigError naming the path", async () => {
  const error = await assertRejects(() => loadConfigFile("/nonexistent/mr-redis.json"));
  assert(error instanceof ConfigError);
  assertMatch(error.message, /"\/nonexistent\/mr-redis.json": no such file/);
});

Deno.test("sched -DumpEmptyConfig prints the defaults as indented JSON and exits 0", async () => {
  const { code, stdout } = await sched(["-DumpEmptyConfig"]);
  assertEquals(code, 0);
  assertMatch(stdout, /\n\s+"UserName": /);
  assertEquals(parseConfig(stdout), parseConfig(JSON.stringify(defaultConfig())));
});

Deno.test("sched stops with exit 2 and one line for each bad config", async (t) => {
  const dir = await tempDir("config");
  try {
    const cases: [string, string | null, RegExp][] = [
      ["missing file", null, /no such file/],
      ["broken JSON", `{"HTTPPort": `, /not valid JSON/],
      ["typo in a field", `{"DBEndpoint": "127.0.0.1:2379"}`, /unknown field "DBEndpoint"/],
      ["wrong type", `{"HTTPPort": true}`, /"HTTPPort" must be a port number.*true/],
      ["port out of range", `{"HTTPPort": "65536"}`, /"HTTPPort".*"65536"/],
      ["unknown DBType", `{"DBType": "redis"}`, /"DBType".*"redis"/],
      [
        "store address that cannot be right",
        `{"DBType": "etcd", "DBEndPoint": "127.0.0.1:2379:1"}`,
        /"DBEndPoint".*"127\.0\.0\.1:2379:1"/,
      ],
    ];
    for (const [name, text, message] of cases) {
      await t.step(name, async () => {
        const path = `${dir}/${name.replaceAll(" ", "_")}.json`;
        if (text !== null) await Deno.writeTextFile(path, text);
        for (const flag of [`-config=${path}`, `--config=${path}`]) {
          const { code, stderr } = await sched([flag]);
          assertEquals(code, 2, stderr);
          const lines = stderr.trim().split("\n");
          assertEquals(lines.length, 1, `expected one line, got: ${stderr}`);
          assertMatch(lines[0]!, message);
          assert(!/\bat .*\.ts:\d+/.test(stderr), `stack trace shown: ${stderr}`);
        }
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
