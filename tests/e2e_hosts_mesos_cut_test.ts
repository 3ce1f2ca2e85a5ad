/**
 * The scheduler cut from the Mesos master for 15 s. The scheduler runs on a
 * host of its own (the release's sched in a network namespace on the
 * cluster's bridge, reusing the multi-host cluster the test started), and a
 * blackhole route to the master's address on that host drops everything
 * between them (and between the scheduler and this namespace's clients of
 * its API), while the scheduler still reaches the agent hosts. A client
 * writes with `WAIT 1 1000` all along: no promotion, no process killed or
 * moved, no acknowledged write lost, never two writable masters; after the
 * cut it is subscribed again. The figures go to the test's output. Root
 * only: elsewhere the suite says why and is ignored.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { tempDir, waitFor } from "./_util.ts";
import {
  create,
  LOCAL_PORTS_PER_AGENT,
  type Sched,
  startSched,
  stopLocalProcesses,
  waitRunning,
} from "./_sched.ts";
import { hostsUnavailable, reserveTestNetwork } from "./_hosts.ts";
import { testRelease } from "./_release.ts";
import { reservePortRange } from "./_ports.ts";
import { assertKeys, logTail } from "./_failover.ts";
import { doubleMasters, ip, WaitingWriter, WriteSampler } from "./_partition.ts";
import { addHost, agentAddress, agentNamespace } from "../lib/mesos/local/host_network.ts";
import { ensureLocalCluster } from "../lib/mesos/local/daemon.ts";

if (hostsUnavailable) {
  console.log(`e2e_hosts_mesos_cut_test.ts skipped: ${hostsUnavailable}`);
}

/** Where `ip` is (the sched's PATH may lack the sbin folders). */
function ipPath(): string {
  for (const p of ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not there
    }
  }
  return "ip";
}

Deno.test({
  name:
    "the scheduler cut from the Mesos master for 15 s: no promotion, no kill, no write lost; subscribed again after",
  ignore: hostsUnavailable !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = reserveTestNetwork();
    const ports = reservePortRange(3 * LOCAL_PORTS_PER_AGENT);
    const dir = await tempDir("e2e-hosts-mesos-cut");
    let sched: Sched | undefined;
    let writer: WaitingWriter | undefined;
    let sampler: WriteSampler | undefined;
    const schedHost = agentNamespace(net, 200);
    const schedIp = agentAddress(net, 200);
    const blackhole = ["-n", schedHost, "route", "add", "blackhole", `${net.bridgeAddress}/32`];
    let cut = false;
    try {
      const release = await testRelease();
      // The cluster first (its bridge is where the scheduler's host plugs in).
      const { state } = await ensureLocalCluster({
        workDir: join(dir, "local"),
        agents: 3,
        portsBase: ports.base,
        portsPerAgent: LOCAL_PORTS_PER_AGENT,
        network: net.subnet,
        command: (flags) => ({
          command: join(release, "mesos_local"),
          args: [...flags, "--verbose"],
        }),
      });
      await addHost(net, 200);
      const program = join(dir, "sched-on-its-host");
      await Deno.writeTextFile(
        program,
        `#!/bin/sh\nexec ${ipPath()} netns exec ${schedHost} ${join(release, "sched")} "$@"\n`,
        { mode: 0o755 },
      );
      sched = await startSched({
        dir,
        dbType: "embedded",
        master: "local:3",
        program,
        localPortsBase: ports.base,
        apiHost: schedIp,
        config: {
          LocalNetwork: net.subnet,
          ArtifactIP: schedIp,
          HTTPAddress: schedIp,
          InsecureAPI: true,
        },
      });
      assertEquals((await create(sched, "mc", 20, 2, { Distribution: 1 })).status, 201);
      const before = await waitRunning(sched, "mc", 180_000);
      const processes = (v: typeof before) =>
        [v.Master!, ...v.Slaves].map((p) => `${p.IP}:${p.Port}`).sort();
      const password = before.Master!.password;
      sampler = new WriteSampler(processes(before), password);
      writer = new WaitingWriter(sched, "mc", password);
      await waitFor("30 writes acknowledged before the cut", () => writer!.acked.size >= 30, {
        timeoutMs: 60_000,
      });

      // Whether the scheduler's host reaches the Mesos master (a fetch from there).
      const reachesMaster = async () =>
        (await new Deno.Command("ip", {
          args: [
            "netns",
            "exec",
            schedHost,
            Deno.execPath(),
            "eval",
            `await (await fetch("${state.url}/health", { signal: AbortSignal.timeout(3000) })).body?.cancel();`,
          ],
          stdout: "null",
          stderr: "null",
        }).output()).success;
      assert(await reachesMaster(), "the scheduler's host reaches the master before the cut");
      const cutAt = Date.now();
      await ip(blackhole);
      cut = true;
      assert(
        !await reachesMaster(),
        "the scheduler's host does not reach the master during the cut",
      );
      await new Promise((r) => setTimeout(r, 15_000 - (Date.now() - cutAt)));
      const ackedDuringCut = writer.acks.filter((a) => a.t > cutAt).length;
      const healAt = Date.now();
      blackhole[3] = "del";
      await ip(blackhole);
      cut = false;
      assert(await reachesMaster(), "the scheduler's host reaches the master after the cut");
      await waitFor("the scheduler to be subscribed again (HEALTH 200)", async () => {
        const res = await sched!.api("/v1/HEALTH");
        await res.body?.cancel();
        return res.ok;
      }, { timeoutMs: 120_000, intervalMs: 200 }).catch((error) => {
        throw new Error(`${(error as Error).message}${logTail(sched!)}`);
      });
      const healthyAgainMs = Date.now() - healAt;
      // A while with the scheduler back: it must not act on what it missed.
      await new Promise((r) => setTimeout(r, 10_000));
      const after = await waitRunning(sched, "mc", 60_000);
      await writer.stop();
      await sampler.stop();
      const doubles = doubleMasters(sampler.samples);
      const figures = {
        ackedDuringCut,
        healthyAgainMsAfterHeal: healthyAgainMs,
        epochAfter: after.Epoch ?? 0,
        writesAcknowledged: writer.acked.size,
        doubleMasterSamples: doubles.length,
      };
      console.log(`scheduler cut from the Mesos master for 15 s: ${JSON.stringify(figures)}`);
      assert(ackedDuringCut > 0, "the instance took writes while the scheduler was cut off");
      assertEquals(after.Epoch ?? 0, 0, `no promotion${logTail(sched)}`);
      assertEquals(processes(after), processes(before), "the same processes");
      assertEquals(doubles, [], "two masters took writes in one 50 ms sample");
      await assertKeys(after.Master!, writer.acked);
    } finally {
      if (cut) {
        blackhole[3] = "del";
        await ip(blackhole).catch(() => {});
      }
      await writer?.stop().catch(() => {});
      await sampler?.stop().catch(() => {});
      await sched?.stop().catch(() => {});
      await stopLocalProcesses(dir).catch(() => {});
      await net.release();
      ports.release();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
