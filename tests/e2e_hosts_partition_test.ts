/**
 * Partitions on a multi-host local cluster, links really cut (`ip link set
 * ... down` on the bridge side of a host's veth). The host holding the
 * master of a 1+2 instance is cut off from the Mesos master, the scheduler
 * and the other hosts while a client writes with `WAIT 1 1000`: the cut-off
 * master refuses writes, a slave is promoted, no 50 ms sample ever sees two
 * masters taking writes, no acknowledged write is lost, and after the heal
 * the old master is a slave again or gone. The figures go to the test's
 * output. Root only: elsewhere the suite says why and is ignored.
 */
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import { create, type Sched, status, stopLocalProcesses, waitRunning } from "./_sched.ts";
import { hostsUnavailable, reserveTestNetwork, startHostsSched } from "./_hosts.ts";
import { assertKeys, logTail } from "./_failover.ts";
import { doubleMasters, ip, WaitingWriter, WriteSampler } from "./_partition.ts";
import { RespClient, RespError } from "./_resp.ts";
import { agentLink, agentNamespace } from "../lib/mesos/local/host_network.ts";

/** Every executor's stderr under `root` (the sandboxes), concatenated. */
async function executorLogs(root: string): Promise<string> {
  let text = "";
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name === "stderr") text += await Deno.readTextFile(path).catch(() => "");
    }
  };
  await walk(root).catch(() => {});
  return text;
}

if (hostsUnavailable) {
  console.log(`e2e_hosts_partition_test.ts skipped: ${hostsUnavailable}`);
}

/** ROLE of `host:port` (`gone` when it does not answer). */
async function roleOf(host: string, port: number, password?: string): Promise<string> {
  const client = new RespClient(host, port, password);
  try {
    await client.command(["PING"], 2000);
    const info = await client.command(["INFO", "replication"], 2000);
    return /role:(\w+)/.exec(info)?.[1] ?? "unknown";
  } catch (error) {
    return error instanceof RespError ? `error ${error.message}` : "gone";
  } finally {
    client.close();
  }
}

Deno.test({
  name:
    "the host of a master cut off: it refuses writes, a slave is promoted, never two writable masters, no acknowledged write lost, it rejoins as a slave or is replaced",
  ignore: hostsUnavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = reserveTestNetwork();
    const dir = await tempDir("e2e-hosts-partition");
    let sched: Sched | undefined;
    let cut: string | undefined;
    let writer: WaitingWriter | undefined;
    const samplers: WriteSampler[] = [];
    try {
      sched = await startHostsSched(dir, net);
      assertEquals((await create(sched, "hp", 20, 2, { Distribution: 1 })).status, 201);
      const before = await waitRunning(sched, "hp", 180_000);
      const oldMaster = before.Master!;
      const old = `${oldMaster.IP}:${oldMaster.Port}`;
      const host = Number(oldMaster.IP.split(".")[3]) - 10;
      const password = oldMaster.password;
      const everyone = [oldMaster, ...before.Slaves].map((p) => `${p.IP}:${p.Port}`);
      // One sampler here (every process while the links are up), one on the
      // master's host (which reaches its master when cut off).
      samplers.push(new WriteSampler(everyone, password));
      samplers.push(new WriteSampler([old], password, agentNamespace(net, host)));
      writer = new WaitingWriter(sched, "hp", password);
      await waitFor("50 writes acknowledged before the cut", () => writer!.acked.size >= 50, {
        timeoutMs: 60_000,
      });

      const cutAt = Date.now();
      cut = agentLink(net, host);
      await ip(["link", "set", cut, "down"]);
      const promoted = await waitFor("a slave promoted", async () => {
        const v = await status(sched!, "hp");
        return v?.Master && v.Master.IP !== oldMaster.IP ? v : undefined;
      }, { timeoutMs: 120_000, intervalMs: 200 }).catch((error) => {
        throw new Error(`${(error as Error).message}${logTail(sched!)}`);
      });
      const promotedAt = Date.now();
      const back = await waitFor(
        "a write acknowledged by the new master",
        () => writer!.firstAckElsewhere(cutAt, old),
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      // The cut-off master refuses writes: its own host sees it say so.
      await waitFor(
        "the cut-off master to refuse a write on its host",
        () => samplers[1]!.samples.some((s) => s.t > cutAt && !s.ok),
        {
          timeoutMs: 30_000,
        },
      );
      await waitFor(
        "20 more writes acknowledged",
        () => writer!.acks.filter((a) => a.t > back.t).length >= 20,
        { timeoutMs: 60_000 },
      );

      // The heal: the old master comes back as a slave of the new one, or is gone.
      const healAt = Date.now();
      await ip(["link", "set", cut, "up"]);
      cut = undefined;
      let oldRole = "";
      await waitFor("the old master to be a slave or gone after the heal", async () => {
        oldRole = await roleOf(oldMaster.IP, Number(oldMaster.Port), password);
        return oldRole === "slave" || oldRole === "gone";
      }, { timeoutMs: 120_000, intervalMs: 250 }).catch((error) => {
        throw new Error(`${(error as Error).message} (role: ${oldRole})${logTail(sched!)}`);
      });
      const healed = await waitFor("1+2 RUNNING again", async () => {
        const v = await status(sched!, "hp");
        return v?.Status === "RUNNING" && v.Slaves.length === 2 ? v : undefined;
      }, { timeoutMs: 120_000, intervalMs: 250 });
      // Sample on a while with everything healed.
      await new Promise((r) => setTimeout(r, 5_000));
      await writer.stop();
      for (const s of samplers) await s.stop();

      const samples = samplers.flatMap((s) => s.samples);
      const doubles = doubleMasters(samples);
      const lastOldOk = Math.max(
        0,
        ...samples.filter((s) => s.ok && s.target === old).map((s) => s.t),
      );
      // When the cut-off master's executor saw its agent lease run out (its log).
      let leaseRanOutMsAfterCut: number | undefined;
      for (const line of (await executorLogs(`${dir}/local/agents`)).split("\n")) {
        const m = /^(\S+) MrRedisExecutor: No contact with the agent for \d+ ms/.exec(line);
        const t = m ? Date.parse(m[1]!) : NaN;
        if (
          t > cutAt && (leaseRanOutMsAfterCut === undefined || t - cutAt < leaseRanOutMsAfterCut)
        ) {
          leaseRanOutMsAfterCut = t - cutAt;
        }
      }
      const figures = {
        leaseRanOutMsAfterCut,
        promotedAfterMs: promotedAt - cutAt,
        writableAgainAfterMs: back.t - cutAt,
        oldMasterLastTookAWriteMsAfterCut: lastOldOk - cutAt,
        writesTried: writer.tried,
        writesAcknowledged: writer.acked.size,
        samples: samples.length,
        doubleMasterSamples: doubles.length,
        oldMasterAfterHeal: oldRole,
        healedAfterMs: Date.now() - healAt,
      };
      console.log(`partition of the master's host: ${JSON.stringify(figures)}`);
      assertEquals(doubles, [], "two masters took writes in one 50 ms sample");
      assert(samples.length > 100, `only ${samples.length} samples`);
      assert(lastOldOk < back.t, "the old master took no write once the new one did");
      await assertKeys(healed.Master!, writer.acked);
      assert(promoted.Epoch! >= 1, "the epoch moved");
    } finally {
      if (cut) await ip(["link", "set", cut, "up"]).catch(() => {});
      await writer?.stop().catch(() => {});
      for (const s of samplers) await s.stop().catch(() => {});
      await sched?.stop().catch(() => {});
      await stopLocalProcesses(dir).catch(() => {});
      await net.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
