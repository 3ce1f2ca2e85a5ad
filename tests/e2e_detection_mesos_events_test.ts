/**
 * End to end: routine Mesos events around the master of a 1+2 instance, with
 * a client writing (`WAIT 1 1000`) all along, cause no promotion, no kill
 * and no lost acknowledged write:
 *
 * - the agent restarts with checkpoint recovery and stays down 12 s (its
 *   executor's messages are lost meanwhile: 12 s of stats silence, past the
 *   10 s after which a silent process that does not answer is lost — this
 *   one answers the scheduler's own check, so it stays);
 * - the agent stays down past the master's ping timeout, so Mesos reports
 *   the tasks `TASK_UNREACHABLE`, then re-registers (`TASK_RUNNING`,
 *   `REASON_AGENT_REREGISTERED`);
 * - the Mesos master restarts and is away 12 s: the scheduler's stream ends,
 *   its calls are refused, every executor message meanwhile is lost (stats
 *   silence while the scheduler is not subscribed is no sign against a
 *   process); then it subscribes again to the new master.
 *
 * While its agent is away the master's executor cannot renew its lease, so
 * the master refuses writes after 5 s (its self-fence); those writes are not
 * acknowledged, and the client's writes are acknowledged again once the
 * agent is back.
 */
import { assertMatch } from "./_assert.ts";
import { startFailoverEnv } from "./_failover.ts";
import { waitFor } from "./_util.ts";
import { quietEventScenario } from "./_detection.ts";

Deno.test({
  name: "an agent restart (12 s down, checkpoint recovery) under writes: no promotion, no kill",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-detect-restart", 3, {
      agentPingTimeoutMs: 60_000,
      subscriptionBackoffMaxMs: 500,
    });
    try {
      const r = await quietEventScenario(env, "dr", async (agent) => {
        await env.cluster.restartAgent(agent, { downMs: 12_000 });
      });
      assertMatch(env.sched.log(), /Task dr\.p1\.1 of dr in doubt \(no stats from its executor/);
      console.log(
        `agent restart: ${r.acked} of ${r.attempts} writes acknowledged, ${r.errors} refused while the agent was away`,
      );
    } finally {
      await env.close();
    }
  },
});

Deno.test({
  name: "an agent unreachable then re-registered under writes: no promotion, no kill",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-detect-rereg", 3, {
      agentPingTimeoutMs: 2_000,
      subscriptionBackoffMaxMs: 500,
    });
    try {
      const r = await quietEventScenario(env, "du", async (agent) => {
        await env.cluster.restartAgent(agent, { downMs: 6_000 });
      });
      assertMatch(env.sched.log(), /Task du\.p1\.1 of du: TASK_UNREACHABLE/);
      assertMatch(
        env.sched.log(),
        /Task du\.p1\.1 of du in doubt \(Mesos reports TASK_UNREACHABLE/,
      );
      console.log(
        `agent re-registration: ${r.acked} of ${r.attempts} writes acknowledged, ${r.errors} refused while the agent was away`,
      );
    } finally {
      await env.close();
    }
  },
});

Deno.test({
  name: "a Mesos master restart (12 s away) under writes: no promotion, no kill",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const env = await startFailoverEnv("e2e-detect-master", 3, {
      agentPingTimeoutMs: 60_000,
      subscriptionBackoffMaxMs: 500,
    });
    try {
      const r = await quietEventScenario(env, "dm", async () => {
        await env.cluster.restartMaster({ downMs: 12_000 });
        // What follows (writes, then the checks) comes after the new subscription.
        await waitFor(
          "the scheduler to subscribe again",
          () => /Re-subscribed to Mesos as framework/.test(env.sched.log()),
          { timeoutMs: 30_000 },
        );
      });
      // The stream ended (the local master closes it cleanly; a killed one
      // breaks it), calls were refused while the master was away, then the
      // scheduler subscribed again as the same framework.
      assertMatch(
        env.sched.log(),
        /Event stream from \S+ (broke|ended)[^]*Subscription at \S+ failed[^]*Re-subscribed to Mesos as framework/,
      );
      console.log(
        `master restart: ${r.acked} of ${r.attempts} writes acknowledged, ${r.errors} refused while the master was away`,
      );
    } finally {
      await env.close();
    }
  },
});
