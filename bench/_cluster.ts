/**
 * Redis Cluster benchmarks: an RC instance created by mr-redis until
 * RUNNING (every node `cluster_state:ok`, every slot served, every replica
 * in sync) against the same nodes started directly and joined with
 * `redis-cli --cluster create`; a shard failover driven by the scheduler
 * against the cluster's own failover with `cluster-node-timeout 1000`.
 *
 * @module
 */
import {
  command,
  credentials,
  destroy,
  type DirectRedis,
  type MrRedis,
  portBlock,
  redisPidsOnPort,
  sleep,
  startRedis,
  until,
} from "./_harness.ts";

/** One shard in STATUS. */
interface ShardStatus {
  Slots: string;
  Master: { IP: string; Port: string } | null;
  Slaves: { IP: string; Port: string }[];
}

async function rcStatus(
  api: string,
  name: string,
): Promise<{ Status: string; Shards: ShardStatus[] } | undefined> {
  const response = await fetch(`${api}/v1/STATUS/${name}`);
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  return await response.json();
}

async function createRc(
  api: string,
  name: string,
  masters: number,
  replicas: number,
  distribution: number,
): Promise<void> {
  const response = await fetch(`${api}/v1/CREATE/${name}/20/${masters}/${replicas}`, {
    method: "POST",
    body: JSON.stringify({ Distribution: distribution }),
    headers: { "Content-Type": "application/json" },
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`CREATE ${name}: ${response.status} ${text}`);
}

/** Seconds from the CREATE of an M×R cluster instance to RUNNING; deletes it after. */
export async function mrClusterCreate(
  mr: MrRedis,
  name: string,
  masters: number,
  replicas: number,
): Promise<number> {
  const processes = masters * (1 + replicas);
  const began = performance.now();
  await createRc(mr.api, name, masters, replicas, Math.ceil(processes / 3));
  try {
    await until(
      `${name} RUNNING`,
      async () => (await rcStatus(mr.api, name))?.Status === "RUNNING",
      180_000,
    );
    return (performance.now() - began) / 1000;
  } finally {
    await destroy(mr.api, name).catch(() => {});
  }
}

/** Cluster nodes started directly (no password), with their bus ports. */
interface DirectCluster {
  nodes: DirectRedis[];
  stop(): Promise<void>;
}

function startNodes(dir: string, n: number, nodeTimeoutMs: number): DirectCluster {
  const nodes: DirectRedis[] = [];
  // Ports and bus ports from a held range (see portBlock).
  const block = portBlock(2 * n);
  for (let i = 0; i < n; i++) {
    const port = block.ports[2 * i]!;
    nodes.push(startRedis(dir, port, [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      `nodes-${port}.conf`,
      "--cluster-port",
      String(block.ports[2 * i + 1]!),
      "--cluster-node-timeout",
      String(nodeTimeoutMs),
    ]));
  }
  return {
    nodes,
    async stop() {
      for (const node of nodes) node.kill("SIGKILL");
      await Promise.allSettled(nodes.map((node) => node.process.status));
      block.release();
    },
  };
}

async function clusterInfo(port: number, password?: string): Promise<Map<string, string>> {
  const text = String(await command(port, ["CLUSTER", "INFO"], "127.0.0.1", password));
  return new Map(
    text.split(/\r?\n/).filter((l) => l.includes(":")).map((l) => {
      const i = l.indexOf(":");
      return [l.slice(0, i), l.slice(i + 1).trim()] as const;
    }),
  );
}

async function allOk(ports: number[], password?: string): Promise<boolean> {
  for (const port of ports) {
    const info = await clusterInfo(port, password);
    if (info.get("cluster_state") !== "ok" || info.get("cluster_slots_assigned") !== "16384") {
      return false;
    }
    if (Number(info.get("cluster_known_nodes")) !== ports.length) return false;
  }
  return true;
}

/**
 * Seconds from spawning M×(1+R) redis-servers to `cluster_state:ok` on every
 * node after `redis-cli --cluster create --cluster-replicas R`; the nodes are
 * stopped after (or kept, with `keep`).
 */
export async function directClusterCreate(
  dir: string,
  masters: number,
  replicas: number,
  nodeTimeoutMs = 5000,
): Promise<{ seconds: number; cluster: DirectCluster }> {
  const began = performance.now();
  const cluster = startNodes(dir, masters * (1 + replicas), nodeTimeoutMs);
  try {
    const ports = cluster.nodes.map((n) => n.port);
    for (const port of ports) {
      await until(
        `redis-server on ${port}`,
        async () => (await command(port, ["PING"])) === "PONG",
      );
    }
    const out = await new Deno.Command("redis-cli", {
      args: [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        String(replicas),
        "--cluster-yes",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `redis-cli --cluster create failed: ${new TextDecoder().decode(out.stderr).slice(-500)}`,
      );
    }
    await until("the direct cluster ok on every node", () => allOk(ports), 120_000);
    return { seconds: (performance.now() - began) / 1000, cluster };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}

async function isMaster(port: number, host = "127.0.0.1", password?: string): Promise<boolean> {
  const role = await command(port, ["ROLE"], host, password);
  return Array.isArray(role) && role[0] === "master";
}

/**
 * The cluster's own failover: a 3×1 cluster started directly with
 * `cluster-node-timeout 1000`, its first master SIGKILLed; seconds until its
 * replica answers ROLE master.
 */
export async function directClusterFailover(dir: string): Promise<number> {
  const { cluster } = await directClusterCreate(dir, 3, 1, 1000);
  try {
    const ports = cluster.nodes.map((n) => n.port);
    // Who replicates whom, from the first node's view.
    const nodes = String(await command(ports[0]!, ["CLUSTER", "NODES"])).trim().split("\n")
      .map((l) => l.split(" "));
    const master = nodes.find((f) => f[2]!.includes("master") && f[8] !== undefined)!;
    const replica = nodes.find((f) => f[3] === master[0])!;
    const masterPort = Number(master[1]!.split("@")[0]!.split(":")[1]);
    const replicaPort = Number(replica[1]!.split("@")[0]!.split(":")[1]);
    await until("the replica in sync", async () => {
      const info = String(await command(replicaPort, ["INFO", "replication"]));
      return info.includes("master_link_status:up");
    });
    const began = performance.now();
    cluster.nodes.find((n) => n.port === masterPort)!.kill("SIGKILL");
    await until("the replica takes over", () => isMaster(replicaPort), 60_000, 10);
    return (performance.now() - began) / 1000;
  } finally {
    await cluster.stop();
  }
}

/**
 * The scheduler's failover: a 3×1 RC instance, its first shard master's
 * redis-server SIGKILLed; seconds until the shard's replica answers ROLE
 * master. Deletes the instance after.
 */
export async function mrClusterFailover(mr: MrRedis, name: string): Promise<number> {
  await createRc(mr.api, name, 3, 1, 2);
  try {
    const view = await until(
      `${name} RUNNING`,
      async () => {
        const v = await rcStatus(mr.api, name);
        return v?.Status === "RUNNING" ? v : undefined;
      },
      180_000,
    );
    const password = await credentials(mr.api, name);
    const shard = view.Shards[0]!;
    const masterPort = Number(shard.Master!.Port);
    const replica = shard.Slaves[0]!;
    const pids = await redisPidsOnPort(masterPort);
    if (pids.length !== 1) throw new Error(`expected one redis-server on ${masterPort}`);
    // Let the stats settle (the replica's offset is reported every second).
    await sleep(1500);
    const began = performance.now();
    Deno.kill(pids[0]!, "SIGKILL");
    await until(
      "the replica takes over",
      () => isMaster(Number(replica.Port), replica.IP, password),
      60_000,
      10,
    );
    return (performance.now() - began) / 1000;
  } finally {
    await destroy(mr.api, name).catch(() => {});
  }
}
