/**
 * Test harness for the real servers the store tests need: etcd and
 * ZooKeeper, each started on a free loopback port with a temp data dir.
 *
 * ```ts
 * const etcd = await startEtcd();
 * try {
 *   // use etcd.endpoint ("127.0.0.1:port")
 * } finally {
 *   await etcd.stop();
 * }
 * ```
 *
 * @module
 */
import { freePort, tempDir, waitFor } from "./_util.ts";

/** A running server started by the harness. */
export interface Service {
  /** Client endpoint, `127.0.0.1:port`. */
  readonly endpoint: string;
  /** Kills the server (if running) and removes its temp dir. */
  stop(): Promise<void>;
  /** Stops the server (if running) and starts it again with the same data dir and port. */
  restart(): Promise<void>;
  /** Kills the server with SIGKILL and keeps its data; `restart` brings it back. */
  kill(): Promise<void>;
}

const ETCD_BIN = "/usr/bin/etcd";
const ZK_JARS = "/usr/share/java";

/** The jars ZooKeeper 3.8's server needs (slf4j-nop keeps it quiet). */
const ZK_CLASSPATH = [
  "zookeeper.jar",
  "zookeeper-jute.jar",
  "slf4j-api.jar",
  "slf4j-nop.jar",
  "netty-handler.jar",
  "netty-common.jar",
  "netty-buffer.jar",
  "netty-transport.jar",
  "netty-codec.jar",
  "netty-resolver.jar",
  "netty-transport-native-epoll.jar",
  "netty-transport-native-unix-common.jar",
  "metrics-core.jar",
  "commons-io.jar",
  "commons-cli.jar",
  "snappy-java.jar",
];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A child process the harness owns; restarted with the same command. */
class Managed implements Service {
  #child: Deno.ChildProcess | undefined;
  #stopped = false;

  constructor(
    readonly endpoint: string,
    readonly dir: string,
    readonly command: string,
    readonly args: string[],
    readonly ready: () => Promise<boolean>,
    readonly what: string,
  ) {}

  async start(): Promise<void> {
    this.#child = new Deno.Command(this.command, {
      args: this.args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      cwd: this.dir,
    }).spawn();
    // Drain output into the log file so the pipes never fill up.
    const child = this.#child;
    const sink = async (stream: ReadableStream<Uint8Array>) => {
      const file = await Deno.open(`${this.dir}/server.log`, { append: true, create: true });
      try {
        for await (const chunk of stream) await file.write(chunk);
      } catch {
        // The dir may be gone after stop(); output is not needed then.
      } finally {
        file.close();
      }
    };
    sink(child.stdout).catch(() => {});
    sink(child.stderr).catch(() => {});
    let exited = false;
    child.status.then(() => exited = true);
    try {
      await waitFor(`${this.what} at ${this.endpoint} to become ready`, async () => {
        if (exited) throw new Error(`${this.what} exited; see ${this.dir}/server.log`);
        return await this.ready();
        // Generous: a JVM (ZooKeeper) starting on a loaded 2-core machine
        // has been seen to need more than 30 s.
      }, { timeoutMs: 90_000, intervalMs: 50 });
    } catch (error) {
      await this.#terminate("SIGKILL");
      throw error;
    }
  }

  async #terminate(signal: Deno.Signal): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }, 5_000);
    await child.status;
    clearTimeout(timer);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#terminate("SIGKILL");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async restart(): Promise<void> {
    await this.#terminate("SIGTERM");
    await this.start();
  }

  async kill(): Promise<void> {
    await this.#terminate("SIGKILL");
  }
}

/** Starts etcd on free loopback ports with a temp data dir; resolves once `/health` answers. */
export async function startEtcd(): Promise<Service> {
  if (!await exists(ETCD_BIN)) {
    throw new Error(
      `Cannot start etcd: ${ETCD_BIN} is missing; install the Debian package "etcd-server"`,
    );
  }
  const dir = await tempDir("etcd");
  const port = freePort();
  const peerPort = freePort();
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const service = new Managed(
    `127.0.0.1:${port}`,
    dir,
    ETCD_BIN,
    [
      "--name=test",
      `--data-dir=${dir}/data`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=test=${peer}`,
      "--log-level=error",
    ],
    async () => {
      const response = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
      const body = await response.json() as { health?: string };
      return body.health === "true";
    },
    "etcd",
  );
  try {
    await service.start();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return service;
}

/** Sends a ZooKeeper four-letter word and returns the answer. */
async function fourLetterWord(port: number, word: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(word));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(1024);
    const deadline = setTimeout(() => conn.close(), 1000);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        chunks.push(buf.slice(0, n));
      }
    } finally {
      clearTimeout(deadline);
    }
    return new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((c) => [...c])),
    );
  } finally {
    try {
      conn.close();
    } catch {
      // Closed by the deadline or the server.
    }
  }
}

/**
 * Starts a standalone ZooKeeper 3.8 (from the Debian package's jars) on a
 * free loopback port with a temp data dir and a small heap; resolves once it
 * answers `ruok` and serves requests (`srvr`).
 */
export async function startZooKeeper(): Promise<Service> {
  if (!await exists(`${ZK_JARS}/zookeeper.jar`) || !await exists("/usr/bin/java")) {
    throw new Error(
      `Cannot start ZooKeeper: ${ZK_JARS}/zookeeper.jar or java is missing; install the Debian package "zookeeper"`,
    );
  }
  const dir = await tempDir("zk");
  const port = freePort();
  await Deno.mkdir(`${dir}/data`);
  await Deno.writeTextFile(
    `${dir}/zoo.cfg`,
    [
      "tickTime=500",
      `dataDir=${dir}/data`,
      `clientPort=${port}`,
      "clientPortAddress=127.0.0.1",
      "admin.enableServer=false",
      "minSessionTimeout=1000",
      "maxSessionTimeout=30000",
      "4lw.commands.whitelist=ruok,srvr",
      "",
    ].join("\n"),
  );
  const service = new Managed(
    `127.0.0.1:${port}`,
    dir,
    "/usr/bin/java",
    [
      "-Xmx256m",
      "-XX:+UseSerialGC",
      "-XX:TieredStopAtLevel=1",
      "-Dzookeeper.admin.enableServer=false",
      "-cp",
      ZK_CLASSPATH.map((jar) => `${ZK_JARS}/${jar}`).join(":"),
      "org.apache.zookeeper.server.ZooKeeperServerMain",
      `${dir}/zoo.cfg`,
    ],
    async () =>
      (await fourLetterWord(port, "ruok")) === "imok" &&
      (await fourLetterWord(port, "srvr")).includes("Mode: standalone"),
    "ZooKeeper",
  );
  try {
    await service.start();
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
  return service;
}
