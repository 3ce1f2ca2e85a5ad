/**
 * `mrr` as a user runs it: the real program as a process. Where a scheduler
 * is needed, a tiny in-test HTTP server answers with canned STATUS JSON in
 * the contract shape of DESIGN.md: these tests cover the CLI's parsing,
 * formatting and error handling, not the scheduler (see mrr_e2e_test.ts).
 */

import { deadPort } from "./_ports.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { runMrr, show } from "./_mrr.ts";
import { tempDir } from "./_util.ts";
import { run } from "../lib/cli/main.ts";
import { fitWidth } from "../lib/cli/format.ts";
import denoJson from "../deno.json" with { type: "json" };

/** Nothing listens there, and no other test is handed the port (see _ports.ts). */
const DEAD_ENDPOINT = `http://127.0.0.1:${deadPort()}`;

// deno-lint-ignore no-explicit-any
type Json = any;

const RUNNING_MS: Json = {
  Name: "TestInstance",
  Type: "MS",
  Status: "RUNNING",
  Capacity: 200,
  Master: {
    IP: "10.11.12.123",
    Port: "6382",
    MemoryCapacity: 200,
    MemoryUsed: 1904432,
    Uptime: 1623,
    ClientsConnected: 1,
    LastSyncedToMaster: 0,
  },
  Slaves: [
    {
      IP: "10.11.12.121",
      Port: "6381",
      MemoryCapacity: 200,
      MemoryUsed: 834904,
      Uptime: 1619,
      ClientsConnected: 2,
      LastSyncedToMaster: 9,
    },
    {
      IP: "10.11.12.121",
      Port: "6382",
      MemoryCapacity: 200,
      MemoryUsed: 834904,
      Uptime: 1619,
      ClientsConnected: 2,
      LastSyncedToMaster: 9,
    },
  ],
  ProcessesRunning: 3,
  ProcessesTotal: 3,
};

const SINGLE: Json = {
  Name: "solo",
  Type: "S",
  Status: "RUNNING",
  Capacity: 50,
  Master: { IP: "127.0.0.1", Port: "7001", MemoryCapacity: 50, MemoryUsed: 1000 },
  Slaves: null,
};

const CREATING: Json = {
  Name: "fresh",
  Type: "MS",
  Status: "CREATING",
  Capacity: 100,
  Master: null,
  Slaves: [],
  Reason: "waiting for offers with 100 MB",
};

function proc(port: number): Json {
  return { IP: "127.0.0.1", Port: String(port), MemoryCapacity: 1, MemoryUsed: 1 };
}

/**
 * A stand-in scheduler. Canned instances answer as given. Created instances
 * gain one process per STATUS poll until RUNNING (names starting with
 * `stuck` never do; names starting with `counted` report
 * ProcessesRunning/ProcessesTotal and no process list). Deleted instances
 * answer DELETING twice, then 404.
 */
class FakeScheduler {
  readonly instances = new Map<string, Json>();
  readonly requests: {
    method: string;
    path: string;
    query: string;
    body: string;
    auth: string | null;
  }[] = [];
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  readonly #progress = new Map<string, { slaves: number; up: number }>();
  readonly #deleting = new Map<string, number>();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(canned: Json[] = []) {
    for (const instance of canned) this.instances.set(instance.Name, structuredClone(instance));
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  #advance(name: string): void {
    const instance = this.instances.get(name);
    const progress = this.#progress.get(name);
    if (!instance || !progress || name.startsWith("stuck")) return;
    const total = 1 + progress.slaves;
    const port = 7000 + progress.up;
    if (progress.up < total) {
      progress.up++;
      if (name.startsWith("counted")) {
        instance.ProcessesRunning = progress.up;
      } else if (!instance.Master) {
        instance.Master = proc(port);
      } else {
        instance.Slaves.push(proc(port));
      }
      return;
    }
    instance.Status = "RUNNING";
    delete instance.Reason;
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const body = await request.text();
    const auth = request.headers.get("authorization");
    this.requests.push({
      method: request.method,
      path: url.pathname,
      query: url.search,
      body,
      auth,
    });
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const text = (status: number, message: string) => new Response(message, { status });
    if (this.token && auth !== `Bearer ${this.token}`) {
      return text(401, 'Authentication required: send "Authorization: Bearer <token>"\n');
    }
    if (request.method === "GET" && url.pathname === "/v1/STATUS") {
      return Response.json([...this.instances.values()]);
    }
    if (request.method === "GET" && parts[1] === "STATUS" && parts.length === 3) {
      const name = parts[2]!;
      const deleting = this.#deleting.get(name);
      if (deleting !== undefined) {
        if (deleting <= 0) {
          this.instances.delete(name);
          this.#deleting.delete(name);
        } else {
          this.#deleting.set(name, deleting - 1);
        }
      }
      const instance = this.instances.get(name);
      if (!instance) return text(404, `Instance ${name} not found`);
      const reply = Response.json(instance);
      this.#advance(name);
      return reply;
    }
    if (request.method === "POST" && parts[1] === "CREATE" && parts.length === 6) {
      const [name, capacity, , slaves] = parts.slice(2) as [string, string, string, string];
      if (name === "refused") return text(400, "Invalid Capacity: 5 is less than the minimum");
      if (name === "broken") return text(500, "store write failed");
      if (this.instances.has(name)) return text(409, `Instance ${name} already exists`);
      const instance: Json = {
        Name: name,
        Type: slaves === "0" ? "S" : "MS",
        Status: "CREATING",
        Capacity: Number(capacity),
        Master: null,
        Slaves: [],
        Reason: "no offer with enough memory yet",
      };
      if (name.startsWith("counted")) {
        Object.assign(instance, { ProcessesRunning: 0, ProcessesTotal: 1 + Number(slaves) });
      }
      this.instances.set(name, instance);
      this.#progress.set(name, { slaves: Number(slaves), up: 0 });
      return text(201, "Request Accepted, Instance will be created.");
    }
    if (request.method === "DELETE" && parts[1] === "DELETE" && parts.length === 3) {
      const name = parts[2]!;
      const instance = this.instances.get(name);
      if (!instance) return text(404, `Instance ${name} not found`);
      instance.Status = "DELETING";
      this.#deleting.set(name, 2);
      return text(200, "Request Accepted, Instance will be deleted.");
    }
    return text(404, "no such route");
  }
}

/** A temp dir with a config path inside; removed afterwards. */
async function withConfig(fn: (config: string) => Promise<void>): Promise<void> {
  const dir = await tempDir("mrr");
  try {
    await fn(`${dir}/mrr/config.json`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withScheduler(
  canned: Json[],
  fn: (sched: FakeScheduler, config: string, env: Record<string, string>) => Promise<void>,
): Promise<void> {
  const sched = new FakeScheduler(canned);
  try {
    await withConfig((config) => fn(sched, config, { MRR_ENDPOINT: sched.endpoint }));
  } finally {
    await sched.close();
  }
}

function assertNoStack(text: string): void {
  assert(!/^\s+at /m.test(text), `a stack trace was printed:\n${text}`);
}

Deno.test("usage mistakes exit 2 with one line naming the flag and value, then a hint", async (t) => {
  await withConfig(async (config) => {
    const dir = config.replace(/\/mrr\/config\.json$/, "");
    await Deno.writeTextFile(`${dir}/bad.json`, "{Distribution: 2");
    await Deno.writeTextFile(`${dir}/list.json`, "[1, 2]");
    const cases: [string[], string, string][] = [
      [["create", "-m", "100"], 'Option "-n" is required', 'Run "mrr help create" for usage'],
      [["proxy"], 'Option "-n" is required', 'Run "mrr help proxy" for usage'],
      [
        ["proxy", "-n", "x", "-l", "6380"],
        'Option "-l" must be HOST:PORT such as 127.0.0.1:6380, but got "6380"',
        'Run "mrr help proxy" for usage',
      ],
      [
        ["proxy", "-n", "x", "--wait", "soon"],
        'Option "--wait" must be a duration such as 90, 90s or 2m, but got "soon"',
        'Run "mrr help proxy" for usage',
      ],
      [
        ["proxy", "-n", "x", "--master", "127.0.0.1:1"],
        'Options "-n" and "--master" cannot be used together',
        'Run "mrr help proxy" for usage',
      ],
      [["create", "-n", "x"], 'Option "-m" is required', 'Run "mrr help create" for usage'],
      [["update", "-s", "2"], 'Option "-n" is required', 'Run "mrr help update" for usage'],
      [
        ["update", "-n", "x"],
        'Nothing to change: give at least one of "-m MB", "-s SLAVES", "-d N" or "-p N"',
        'Run "mrr help update" for usage',
      ],
      [
        ["update", "-n", "x", "-s", "two"],
        'Option "-s" must be a whole number of slaves, 0 or more, but got "two"',
        'Run "mrr help update" for usage',
      ],
      [
        ["update", "-n", "x", "-m", "0"],
        'Option "-m" must be a whole number of MB greater than 0, but got "0"',
        'Run "mrr help update" for usage',
      ],
      [
        ["update", "-n", "x", "-p", "many"],
        'Option "-p" must be a whole number of proxies, 0 or more, but got "many"',
        'Run "mrr help update" for usage',
      ],
      [
        ["update", "-n", "x", "-d", "0"],
        'Option "-d" must be a whole number of processes per agent, 1 or more, but got "0"',
        'Run "mrr help update" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "abc"],
        'Option "-m" must be a whole number of MB greater than 0, but got "abc"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "0"],
        'Option "-m" must be a whole number of MB greater than 0, but got "0"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "--memory=1.5"],
        'Option "--memory" must be a whole number of MB greater than 0, but got "1.5"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-s", "-1"],
        'Option "-s" must be a whole number of slaves, 0 or more, but got "-1"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-slaves=two"],
        'Option "-slaves" must be a whole number of slaves, 0 or more, but got "two"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "a/b", "-m", "10"],
        'Option "-n" must be a name of up to 64 letters, digits, "-" and "_", but got "a/b"',
        'Run "mrr help create" for usage',
      ],
      [["create", "-n"], 'Option "-n" needs a value', 'Run "mrr help create" for usage'],
      [
        ["create", "-n", "x", "-m", "10", "--colour"],
        'Unknown option "--colour"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "x", "-m", "10"],
        'Unexpected argument "x" (did you mean "-n x"?)',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-w=maybe"],
        'Option "-w" must be true or false, but got "maybe"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-w", "--timeout", "soon"],
        'Option "--timeout" must be a duration such as 90, 90s or 2m, but got "soon"',
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-f", `${dir}/missing.json`],
        `Cannot read the file "${dir}/missing.json" given with "-f": no such file`,
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "-f", `${dir}/bad.json`],
        `The file "${dir}/bad.json" given with "-f" is not valid JSON`,
        'Run "mrr help create" for usage',
      ],
      [
        ["create", "-n", "x", "-m", "10", "--file", `${dir}/list.json`],
        `The file "${dir}/list.json" given with "--file" must hold a JSON object`,
        'Run "mrr help create" for usage',
      ],
      [["status", "-n", "x y"], 'Option "-n" must be a name', 'Run "mrr help status" for usage'],
      [["status", "--yaml"], 'Unknown option "--yaml"', 'Run "mrr help status" for usage'],
      [["delete"], 'Option "-n" is required', 'Run "mrr help delete" for usage'],
      [
        ["delete", "-n", "x", "-timeout", "0"],
        'Option "-timeout" must be a duration such as 90, 90s or 2m, but got "0"',
        'Run "mrr help delete" for usage',
      ],
      [["frobnicate"], 'Unknown command "frobnicate"', 'Run "mrr help" for the list of commands'],
      [["help", "frobnicate"], 'Unknown command "frobnicate"', 'Run "mrr help" for the list'],
      [["--verbose"], 'Unknown global option "--verbose"', 'Run "mrr help" for the list'],
      [["init"], '"mrr init" needs the URL of the scheduler', 'Run "mrr help init" for usage'],
      [
        ["init", "localhost:port"],
        'The scheduler URL must be an http:// or https:// URL such as http://10.0.0.1:5656, but got "localhost:port"',
        'Run "mrr help init" for usage',
      ],
      [
        ["init", "ftp://10.0.0.1:5656"],
        'The scheduler URL must be an http:// or https:// URL such as http://10.0.0.1:5656, but got "ftp://10.0.0.1:5656"',
        'Run "mrr help init" for usage',
      ],
      [
        ["i", "not a url"],
        "The scheduler URL must be an http:// or https:// URL",
        'Run "mrr help init" for usage',
      ],
      [
        ["init", "http://a:1", "http://b:2"],
        'Unexpected argument "http://b:2"',
        'Run "mrr help init" for usage',
      ],
    ];
    for (const [args, message, hint] of cases) {
      await t.step(`mrr ${args.join(" ")}`, async () => {
        const r = await runMrr(config, args);
        assertEquals(r.code, 2, show(r));
        const lines = r.stderr.trimEnd().split("\n");
        assertEquals(lines.length, 2, show(r));
        assert(lines[0]!.startsWith(message), `expected "${message}"\n${show(r)}`);
        assert(lines[1]!.startsWith(hint), `expected hint "${hint}"\n${show(r)}`);
        assertEquals(r.stdout, "", show(r));
        assertNoStack(r.stderr);
      });
    }
  });
});

Deno.test("without an endpoint, commands say to run mrr init", async () => {
  await withConfig(async (config) => {
    const r = await runMrr(config, ["status", "-n", "x"]);
    assertEquals(r.code, 2, show(r));
    assertEquals(r.stderr.split("\n")[0], "No scheduler endpoint is configured");
    assertMatch(r.stderr, /mrr init http:\/\/HOST:5656/);
    assertMatch(r.stderr, /MRR_ENDPOINT/);
  });
});

Deno.test("a bad MRR_ENDPOINT is a usage mistake naming the variable", async () => {
  await withConfig(async (config) => {
    const r = await runMrr(config, ["status"], { MRR_ENDPOINT: "tcp://x:1" });
    assertEquals(r.code, 2, show(r));
    assertMatch(r.stderr, /^MRR_ENDPOINT must be an http:\/\/ or https:\/\/ URL.*"tcp:\/\/x:1"/);
  });
});

Deno.test("an unreachable scheduler gives one line naming the endpoint and how to fix it", async (t) => {
  await withConfig(async (config) => {
    const endpoint = DEAD_ENDPOINT;
    for (
      const args of [["status"], ["status", "-n", "x"], ["create", "-n", "x", "-m", "5"], [
        "delete",
        "-n",
        "x",
      ]]
    ) {
      await t.step(`mrr ${args.join(" ")}`, async () => {
        const r = await runMrr(config, args, { MRR_ENDPOINT: endpoint });
        assertEquals(r.code, 1, show(r));
        const lines = r.stderr.trimEnd().split("\n");
        assertEquals(
          lines.at(-2),
          `Error: cannot reach the scheduler at ${endpoint}: connection refused`,
          show(r),
        );
        assertMatch(lines.at(-1)!, /mrr init http:\/\/HOST:5656/);
        assertNoStack(r.stderr);
      });
    }
  });
});

Deno.test("init checks the scheduler, saves the endpoint, and later commands use it", async () => {
  await withScheduler([RUNNING_MS], async (sched, config) => {
    const r = await runMrr(config, ["init", `${sched.endpoint}/`]);
    assertEquals(r.code, 0, show(r));
    assertMatch(r.stdout, /answers \(1 instance\); saved in /);
    assertEquals(JSON.parse(await Deno.readTextFile(config)), { endpoint: sched.endpoint });
    assert(sched.requests.some((q) => q.method === "GET" && q.path === "/v1/STATUS"));

    const status = await runMrr(config, ["s", "-n", "TestInstance"]);
    assertEquals(status.code, 0, show(status));
    assertMatch(status.stdout, /^Status = RUNNING\n/);

    // MRR_ENDPOINT overrides the saved one.
    const other = DEAD_ENDPOINT;
    const overridden = await runMrr(config, ["status"], { MRR_ENDPOINT: other });
    assertEquals(overridden.code, 1, show(overridden));
    assertMatch(overridden.stderr, new RegExp(`cannot reach the scheduler at ${other}`));
  });
});

Deno.test("init --token (or MRR_TOKEN) saves the token owner-only and every command sends it", async () => {
  const token = "mrr-test-token-0123456789";
  await withScheduler([RUNNING_MS], async (sched, config) => {
    sched.token = token;
    const refused = await runMrr(config, ["init", sched.endpoint]);
    assertEquals(refused.code, 1, show(refused));
    assertMatch(
      refused.stderr,
      /^Error: the scheduler refused the request: Authentication required.*\(401\)\n/,
    );
    assertMatch(refused.stderr, /mrr init http:\/\/HOST:5656 --token TOKEN.*MRR_TOKEN/);
    assertNoStack(refused.stderr);

    const r = await runMrr(config, ["init", sched.endpoint, "--token", token]);
    assertEquals(r.code, 0, show(r));
    assertEquals(JSON.parse(await Deno.readTextFile(config)), { endpoint: sched.endpoint, token });
    assertEquals((await Deno.stat(config)).mode! & 0o777, 0o600);

    const status = await runMrr(config, ["status", "-n", "TestInstance"]);
    assertEquals(status.code, 0, show(status));
    assertMatch(status.stdout, /^Status = RUNNING\n/);
    const created = await runMrr(config, ["create", "-n", "tok", "-m", "10"]);
    assertEquals(created.code, 0, show(created));
    for (const q of sched.requests.slice(1)) assertEquals(q.auth, `Bearer ${token}`, q.path);

    // MRR_TOKEN overrides the saved token, for init too.
    const wrong = await runMrr(config, ["status"], { MRR_TOKEN: "another-token-0123456789" });
    assertEquals(wrong.code, 1, show(wrong));
    assertMatch(wrong.stderr, /\(401\)/);
    await Deno.remove(config);
    const viaEnv = await runMrr(config, ["init", sched.endpoint], { MRR_TOKEN: token });
    assertEquals(viaEnv.code, 0, show(viaEnv));
    assertEquals(JSON.parse(await Deno.readTextFile(config)).token, token);
  });
});

Deno.test("init HOST:PORT without a scheme assumes http://", async () => {
  await withScheduler([RUNNING_MS], async (sched, config) => {
    const hostPort = sched.endpoint.replace("http://", "");
    const r = await runMrr(config, ["init", hostPort]);
    assertEquals(r.code, 0, show(r));
    assertMatch(r.stdout, new RegExp(`Scheduler at ${sched.endpoint} answers`));
    assertEquals(JSON.parse(await Deno.readTextFile(config)), { endpoint: sched.endpoint });
  });
});

Deno.test("init does not save an endpoint that does not answer", async () => {
  await withConfig(async (config) => {
    const endpoint = DEAD_ENDPOINT;
    const r = await runMrr(config, ["init", endpoint]);
    assertEquals(r.code, 1, show(r));
    assertMatch(r.stderr, /^Error: cannot reach the scheduler at http:\/\/127\.0\.0\.1:\d+: /);
    assertMatch(r.stderr, /mrr init http:\/\/HOST:5656/);
    let exists = true;
    await Deno.stat(config).catch(() => exists = false);
    assertEquals(exists, false);
  });
});

Deno.test("init gives up on a scheduler that does not answer within --timeout", async () => {
  const hang = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
    await hang.promise;
    return new Response("late");
  });
  try {
    await withConfig(async (config) => {
      const endpoint = `http://127.0.0.1:${server.addr.port}`;
      const r = await runMrr(config, ["init", "-timeout=1s", endpoint]);
      assertEquals(r.code, 1, show(r));
      assertEquals(
        r.stderr.split("\n")[0],
        `Error: the scheduler at ${endpoint} did not answer within 1s`,
      );
    });
  } finally {
    hang.resolve();
    await server.shutdown();
  }
});

Deno.test("init refuses a server that is not a mr-redis scheduler", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("<html>hello</html>", { status: 200 }),
  );
  try {
    await withConfig(async (config) => {
      const r = await runMrr(config, ["init", `http://127.0.0.1:${server.addr.port}`]);
      assertEquals(r.code, 1, show(r));
      assertMatch(
        r.stderr,
        /not JSON: <html>hello<\/html>\nIs this endpoint a mr-redis scheduler\?/,
      );
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("status -n prints the original text format, line for line", async (t) => {
  const proxied: Json = {
    ...RUNNING_MS,
    Name: "proxied",
    Proxies: [{ IP: "10.11.12.124", Port: "31005", Id: "x1" }, {
      IP: "10.11.12.125",
      Port: "31502",
      Id: "x2",
    }],
    ProxiesWanted: 2,
  };
  await withScheduler([RUNNING_MS, SINGLE, CREATING, proxied], async (_sched, config, env) => {
    await t.step("master and two slaves", async () => {
      const r = await runMrr(config, ["status", "-n", "TestInstance"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout.split("\n"), [
        "Status = RUNNING",
        "Type = MS",
        "Capacity = 200",
        "Master = 10.11.12.123:6382",
        "\tSlave0 = 10.11.12.121:6381",
        "\tSlave1 = 10.11.12.121:6382",
        "",
      ]);
      assertEquals(r.stderr, "");
    });
    await t.step("running proxies follow, one line each", async () => {
      const r = await runMrr(config, ["status", "-n", "proxied"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout.split("\n"), [
        "Status = RUNNING",
        "Type = MS",
        "Capacity = 200",
        "Master = 10.11.12.123:6382",
        "\tSlave0 = 10.11.12.121:6381",
        "\tSlave1 = 10.11.12.121:6382",
        "Proxy0 = 10.11.12.124:31005",
        "Proxy1 = 10.11.12.125:31502",
        "",
      ]);
    });
    await t.step("a single server with Slaves null", async () => {
      const r = await runMrr(config, ["status", "-name", "solo"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(
        r.stdout,
        "Status = RUNNING\nType = S\nCapacity = 50\nMaster = 127.0.0.1:7001\n",
      );
    });
    await t.step("no master yet prints '-', and the reason comes last", async () => {
      const r = await runMrr(config, ["status", "--name=fresh"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout.split("\n"), [
        "Status = CREATING",
        "Type = MS",
        "Capacity = 100",
        "Master = -",
        "Reason = waiting for offers with 100 MB",
        "",
      ]);
    });
    await t.step("every flag spelling works", async () => {
      for (const args of [["-n=solo"], ["-name=solo"], ["--name", "solo"], ["--n", "solo"]]) {
        const r = await runMrr(config, ["status", ...args], env);
        assertEquals(r.code, 0, show(r));
        assertMatch(r.stdout, /^Status = RUNNING\nType = S\n/);
      }
    });
    await t.step("an unknown instance exits 1 with the 404", async () => {
      const r = await runMrr(config, ["status", "-n", "nope"], env);
      assertEquals(r.code, 1, show(r));
      assertEquals(r.stderr.split("\n")[0], 'Error: instance "nope" does not exist (404)');
      assertEquals(r.stdout, "");
    });
  });
});

Deno.test("status without a name prints an aligned table of every instance", async () => {
  await withScheduler([RUNNING_MS, SINGLE, CREATING], async (_sched, config, env) => {
    const r = await runMrr(config, ["status"], env);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout.split("\n"), [
      "NAME          TYPE  STATUS    CAPACITY  MASTER             SLAVES",
      "TestInstance  MS    RUNNING   200       10.11.12.123:6382  2",
      "fresh         MS    CREATING  100       -                  0",
      "solo          S     RUNNING   50        127.0.0.1:7001     0",
      "",
    ]);
  });
});

Deno.test("status of an empty scheduler says so on stderr and exits 0", async () => {
  await withScheduler([], async (_sched, config, env) => {
    const r = await runMrr(config, ["status"], env);
    assertEquals(r.code, 0, show(r));
    assertEquals(r.stdout, "");
    assertMatch(r.stderr, /^No instances/);
    const json = await runMrr(config, ["status", "--json"], env);
    assertEquals(JSON.parse(json.stdout), []);
  });
});

Deno.test("status --json prints the scheduler's JSON, extra fields included", async () => {
  await withScheduler([RUNNING_MS, SINGLE], async (_sched, config, env) => {
    const one = await runMrr(config, ["status", "-n", "TestInstance", "--json"], env);
    assertEquals(one.code, 0, show(one));
    assertEquals(JSON.parse(one.stdout), RUNNING_MS);
    assertMatch(one.stdout, /^{\n {2}"Name": "TestInstance",\n/);
    const all = await runMrr(config, ["status", "-json"], env);
    assertEquals(all.code, 0, show(all));
    assertEquals(JSON.parse(all.stdout), [RUNNING_MS, SINGLE]);
  });
});

Deno.test("create sends the request and the -f file, and reports refusals", async (t) => {
  await withScheduler([RUNNING_MS], async (sched, config, env) => {
    await t.step("accepted", async () => {
      const dir = config.replace(/\/mrr\/config\.json$/, "");
      await Deno.writeTextFile(`${dir}/d.json`, '{\n  "Distribution": 2\n}\n');
      const r = await runMrr(
        config,
        ["c", "-n", "new1", "-m", "100", "-s", "2", "-f", `${dir}/d.json`],
        env,
      );
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout.split("\n"), [
        'Creating instance "new1": 1 master and 2 slaves of 100 MB each',
        "Request accepted by the scheduler",
        'Run "mrr status -n new1" to follow it',
        "",
      ]);
      const request = sched.requests.find((q) => q.method === "POST")!;
      assertEquals(request.path, "/v1/CREATE/new1/100/1/2");
      assertEquals(JSON.parse(request.body), { Distribution: 2 });
    });
    await t.step("a single server is 1 master and 0 slaves", async () => {
      const r = await runMrr(config, ["create", "-name=one", "-memory=64"], env);
      assertEquals(r.code, 0, show(r));
      assertMatch(r.stdout, /a single server of 64 MB/);
      assert(sched.requests.some((q) => q.path === "/v1/CREATE/one/64/1/0" && q.body === ""));
    });
    await t.step("409: already exists", async () => {
      const r = await runMrr(config, ["create", "-n", "TestInstance", "-m", "10"], env);
      assertEquals(r.code, 1, show(r));
      assertEquals(r.stderr.split("\n")[0], 'Error: instance "TestInstance" already exists (409)');
    });
    await t.step("400: the scheduler's line is shown", async () => {
      const r = await runMrr(config, ["create", "-n", "refused", "-m", "5"], env);
      assertEquals(r.code, 1, show(r));
      assertEquals(
        r.stderr.split("\n")[0],
        "Error: the scheduler refused the request: Invalid Capacity: 5 is less than the minimum (400)",
      );
    });
    await t.step("500: the scheduler failed", async () => {
      const r = await runMrr(config, ["create", "-n", "broken", "-m", "5"], env);
      assertEquals(r.code, 1, show(r));
      assertEquals(
        r.stderr.split("\n")[0],
        "Error: the scheduler failed: store write failed (500)",
      );
      assertNoStack(r.stderr);
    });
  });
});

Deno.test("create -w shows one line per change until RUNNING", async (t) => {
  await withScheduler([], async (sched, config, env) => {
    await t.step("counting master and slave entries", async () => {
      const r = await runMrr(config, ["create", "-n", "ms", "-m", "50", "-s", "2", "-w"], env);
      assertEquals(r.code, 0, show(r));
      // Each poll is a long poll the scheduler answers once the instance is RUNNING.
      const polls = sched.requests.filter((q) => q.method === "GET" && q.path === "/v1/STATUS/ms");
      assert(polls.length > 0);
      for (const q of polls) assertEquals(q.query, "?wait=500ms&status=RUNNING");
      assertEquals(r.stdout.split("\n"), [
        'Creating instance "ms": 1 master and 2 slaves of 50 MB each',
        "Request accepted by the scheduler",
        "CREATING: 0 of 3 processes running; no offer with enough memory yet",
        "CREATING: 1 of 3 processes running; no offer with enough memory yet",
        "CREATING: 2 of 3 processes running; no offer with enough memory yet",
        "CREATING: 3 of 3 processes running; no offer with enough memory yet",
        "RUNNING: 3 of 3 processes running",
        'Instance "ms" is RUNNING (3 of 3 processes), master at 127.0.0.1:7000',
        "",
      ]);
    });
    await t.step(
      "using ProcessesRunning/ProcessesTotal, with -w true as the original",
      async () => {
        const r = await runMrr(
          config,
          ["create", "-n", "counted", "-m", "50", "-s", "1", "-w", "true"],
          env,
        );
        assertEquals(r.code, 0, show(r));
        const progress = r.stdout.split("\n").filter((l) => l.includes("processes running"));
        assertEquals(progress, [
          "CREATING: 0 of 2 processes running; no offer with enough memory yet",
          "CREATING: 1 of 2 processes running; no offer with enough memory yet",
          "CREATING: 2 of 2 processes running; no offer with enough memory yet",
          "RUNNING: 2 of 2 processes running",
        ]);
      },
    );
  });
});

Deno.test("create -w on a terminal rewrites one line, cut to the terminal width, with the reason", async () => {
  await withScheduler([], async (_sched, config, env) => {
    const written: string[] = [];
    const columns = 40;
    const terminal = {
      write: (text: string) => void written.push(text),
      isTerminal: true,
      columns: () => columns,
    };
    const quiet = { write: () => {}, isTerminal: false };
    const vars: Record<string, string> = { ...env, MRR_CONFIG: config };
    const code = await run(["create", "-n", "tty", "-m", "50", "-s", "2", "-w"], {
      env: (name) => vars[name],
      stdout: terminal,
      stderr: quiet,
    });
    assertEquals(code, 0, written.join(""));
    const out = written.join("");
    const drawn = out.split("\r\x1b[2K").slice(1).map((d) => d.replace(/\n[^]*$/, ""));
    assert(drawn.length >= 4, `progress redrawn in place: ${JSON.stringify(out)}`);
    for (const line of drawn) {
      assert(!line.includes("\n"), `one line: ${JSON.stringify(line)}`);
      assert(line.length < columns, `fits in ${columns} columns: ${JSON.stringify(line)}`);
    }
    assertEquals(drawn[0], "[--------------------] 0/3 processes...");
    assertEquals(drawn.at(-1), "[####################] 3/3 processes...");
    // Wide enough, the reason shows after the bar.
    assertEquals(
      fitWidth("[---] 0/3 processes running (CREATING)  no offer yet", 200),
      "[---] 0/3 processes running (CREATING)  no offer yet",
    );
  });
});

Deno.test("create -w gives up after --timeout, saying what is pending", async () => {
  await withScheduler([], async (_sched, config, env) => {
    const started = Date.now();
    const r = await runMrr(
      config,
      ["create", "-n", "stuck1", "-m", "50", "-s", "2", "-w", "--timeout", "1500ms"],
      env,
    );
    assertEquals(r.code, 1, show(r));
    assert(Date.now() - started < 10_000, "took far longer than the timeout");
    assertEquals(
      r.stderr.split("\n")[0],
      'Error: instance "stuck1" is not RUNNING after 1.5s: status CREATING, ' +
        "0 of 3 processes running, reason: no offer with enough memory yet",
    );
    assertMatch(r.stderr, /mrr status -n stuck1/);
  });
});

Deno.test("delete: accepted, unknown, and -w until STATUS answers 404", async (t) => {
  await withScheduler([RUNNING_MS, SINGLE], async (sched, config, env) => {
    await t.step("accepted", async () => {
      const r = await runMrr(config, ["d", "-n", "solo"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout, 'Deletion of instance "solo" accepted\n');
      assert(sched.requests.some((q) => q.method === "DELETE" && q.path === "/v1/DELETE/solo"));
    });
    await t.step("unknown", async () => {
      const r = await runMrr(config, ["delete", "-n", "ghost"], env);
      assertEquals(r.code, 1, show(r));
      assertEquals(r.stderr.split("\n")[0], 'Error: instance "ghost" does not exist (404)');
    });
    await t.step("-w", async () => {
      const r = await runMrr(config, ["delete", "-n", "TestInstance", "-w"], env);
      assertEquals(r.code, 0, show(r));
      const lines = r.stdout.trimEnd().split("\n");
      assertEquals(lines[0], 'Deleting instance "TestInstance"');
      assertEquals(lines.at(-1), 'Instance "TestInstance" deleted');
      assert(lines.some((l) => l.startsWith("DELETING: ")), show(r));
      assertEquals(sched.instances.has("TestInstance"), false);
    });
  });
});

Deno.test("help screens and the version", async (t) => {
  await withConfig(async (config) => {
    await t.step("mrr help lists the commands and aliases", async () => {
      for (const args of [[], ["help"], ["h"], ["--help"], ["-h"]]) {
        const r = await runMrr(config, args);
        assertEquals(r.code, 0, show(r));
        for (const re of [/init, i /, /create, c /, /status, s /, /delete, d /, /help, h /]) {
          assertMatch(r.stdout, re);
        }
        assertMatch(r.stdout, new RegExp(`VERSION:\n {3}${denoJson.version}\n`));
      }
    });
    await t.step("help of one command, three ways", async () => {
      const screens = await Promise.all([
        runMrr(config, ["help", "create"]),
        runMrr(config, ["create", "--help"]),
        runMrr(config, ["c", "-h"]),
      ]);
      for (const r of screens) {
        assertEquals(r.code, 0, show(r));
        assertEquals(r.stdout, screens[0]!.stdout);
      }
      const text = screens[0]!.stdout;
      for (
        const flag of ["--name, -n", "--memory, -m", "--slaves, -s", "--wait, -w", "--file, -f"]
      ) {
        assert(text.includes(flag), `help lacks ${flag}\n${text}`);
      }
      assertMatch(text, /--timeout DUR/);
    });
    await t.step("--version", async () => {
      for (const flag of ["--version", "-v"]) {
        const r = await runMrr(config, [flag]);
        assertEquals(r.code, 0, show(r));
        assertEquals(r.stdout, `mrr version ${denoJson.version}\n`);
      }
    });
  });
});

const CLUSTER: Json = {
  Name: "shop",
  Type: "RC",
  Status: "DEGRADED",
  Capacity: 100,
  Master: { IP: "10.0.0.1", Port: "7000" },
  Slaves: [{ IP: "10.0.0.2", Port: "7003" }],
  Reason: "Shard 1 (slots 8192-16383) unavailable: master p2 lost with no replica",
  Shards: [
    {
      Slots: "0-8191",
      Master: { IP: "10.0.0.1", Port: "7000" },
      Slaves: [{ IP: "10.0.0.2", Port: "7003" }],
    },
    { Slots: "8192-16383", Master: null, Slaves: [] },
  ],
};

Deno.test("status -n of a Redis Cluster prints each shard in the original style; create -M sends the masters", async (t) => {
  await withScheduler([CLUSTER], async (sched, config, env) => {
    await t.step("status", async () => {
      const r = await runMrr(config, ["status", "-n", "shop"], env);
      assertEquals(r.code, 0, show(r));
      assertEquals(r.stdout.split("\n"), [
        "Status = DEGRADED",
        "Type = RC",
        "Capacity = 100",
        "Shard0 = 0-8191",
        "\tMaster = 10.0.0.1:7000",
        "\tSlave0 = 10.0.0.2:7003",
        "Shard1 = 8192-16383",
        "\tMaster = -",
        "Reason = Shard 1 (slots 8192-16383) unavailable: master p2 lost with no replica",
        "",
      ]);
    });
    await t.step("create -M 3 -s 1", async () => {
      const r = await runMrr(
        config,
        ["create", "-n", "rc1", "-m", "50", "-M", "3", "-s", "1"],
        env,
      );
      assertEquals(r.code, 0, show(r));
      assertMatch(r.stdout, /a Redis Cluster of 3 masters with 1 replica each, 50 MB per process/);
      assert(sched.requests.some((q) => q.method === "POST" && q.path === "/v1/CREATE/rc1/50/3/1"));
    });
    await t.step("--masters 0 is a usage mistake naming the flag", async () => {
      const r = await runMrr(config, ["create", "-n", "rc2", "-m", "50", "--masters", "0"], env);
      assertEquals(r.code, 2, show(r));
      assertMatch(r.stderr, /"--masters".*"0"/);
    });
  });
});
