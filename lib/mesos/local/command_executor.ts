/**
 * The command executor of the local cluster: what runs a task that has a
 * `CommandInfo` and no `ExecutorInfo`, as Mesos' `mesos-executor` does. The
 * agent starts it in the task's sandbox (executor id = task id, the task's
 * URIs fetched) with the usual executor environment; it speaks the v1
 * executor API like any executor:
 *
 * - LAUNCH: runs the task's command (`/bin/sh -c value`, or `value` with
 *   `arguments` when `shell` is false) in the sandbox in a session of its
 *   own, with the task's environment; TASK_STARTING, then TASK_RUNNING.
 * - The command exits: TASK_FINISHED for status 0, else TASK_FAILED with
 *   "Command exited with status N" (or "terminated with signal S").
 * - KILL (or SHUTDOWN): TASK_KILLING when the framework has that capability,
 *   SIGTERM to the command's process group, SIGKILL after the grace period
 *   (the KILL's `kill_policy`, else the task's, else 3 s), then TASK_KILLED.
 * - Exits once the agent acknowledged the terminal update.
 *
 * Run as `mesos_local --command-executor`.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { ExecutorClient } from "../executor_client.ts";
import type { ExecutorEvent, TaskInfo as LaunchedTask, TaskState } from "../types.ts";
import type { ExecutorInfo, TaskInfo } from "./messages.ts";
import { findSetsid, killTree } from "./agent.ts";
import { currentRelease, isFile } from "../../release/layout.ts";
import { fromFileUrl } from "../../release/_paths.ts";

/** Mesos' default kill grace period of the command executor. */
export const DEFAULT_KILL_GRACE_MS = 3000;

/**
 * The command line that starts the command executor from this install: the
 * `mesos_local` of this release, the compiled one next to this program, or
 * `deno run cmd/mesos_local.ts` in this source tree.
 */
export function commandExecutorArgv(moduleUrl: string = import.meta.url): string[] {
  const file = fromFileUrl(moduleUrl);
  if (file?.endsWith(".ts")) {
    const root = join(dirname(file), "..", "..", "..");
    const entry = join(root, "cmd", "mesos_local.ts");
    if (isFile(entry)) {
      const config = join(root, "deno.json");
      return [
        Deno.execPath(),
        "run",
        "-A",
        ...(isFile(config) ? ["--config", config] : []),
        entry,
        "--command-executor",
      ];
    }
  }
  const release = currentRelease(moduleUrl);
  if (release) return [join(release.dir, "mesos_local"), "--command-executor"];
  return [join(dirname(Deno.execPath()), "mesos_local"), "--command-executor"];
}

/** The ExecutorInfo the agent gives a command task, as Mesos builds it. */
export function commandExecutorInfo(
  task: TaskInfo,
  frameworkId: string,
  argv: string[] = commandExecutorArgv(),
): ExecutorInfo {
  const command = task.command ?? {};
  const shown = command.shell === false
    ? [command.value ?? "", ...(command.arguments ?? []).slice(1)].join(" ")
    : `sh -c '${command.value ?? ""}'`;
  return {
    executor_id: { value: task.task_id.value },
    framework_id: { value: frameworkId },
    name: `Command Executor (Task: ${task.task_id.value}) (Command: ${shown})`,
    source: task.task_id.value,
    command: {
      shell: false,
      value: argv[0]!,
      arguments: argv,
      ...(command.uris ? { uris: command.uris } : {}),
      ...(command.user ? { user: command.user } : {}),
    },
    resources: [],
  } as ExecutorInfo;
}

function graceOf(policy: { grace_period?: { nanoseconds: number } } | undefined): number {
  const ns = policy?.grace_period?.nanoseconds;
  return ns !== undefined && ns >= 0 ? Math.floor(ns / 1e6) : DEFAULT_KILL_GRACE_MS;
}

/** Runs the command executor until its task ended and was acknowledged; returns the exit code. */
export async function runCommandExecutor(
  env: Record<string, string> = Deno.env.toObject(),
): Promise<number> {
  const log = (line: string) =>
    console.error(`${new Date().toISOString()} command executor: ${line}`);
  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => finish = resolve);
  let taskId: string | undefined;
  let child: Deno.ChildProcess | undefined;
  let killing = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  let killingState = false;
  let task: LaunchedTask | undefined;

  // Updates go one after another, each once the agent took the one before: a
  // command that ends at once must not have its terminal update overtake
  // TASK_RUNNING on the way to the agent.
  let sent: Promise<void> = Promise.resolve();
  const update = (state: TaskState, message?: string): Promise<void> => {
    const id = taskId!;
    sent = sent.then(() =>
      client.update({
        task_id: { value: id },
        state,
        ...(message !== undefined ? { message } : {}),
      }).then(() => {}, (error) => log(`Cannot send ${state}: ${(error as Error).message}`))
    );
    return sent;
  };

  const kill = (policy: { grace_period?: { nanoseconds: number } } | undefined) => {
    if (!child || killing) return;
    killing = true;
    if (killingState) update("TASK_KILLING");
    const graceMs = graceOf(policy ?? task?.kill_policy);
    log(`Killing the command (SIGTERM, SIGKILL after ${graceMs} ms)`);
    killTree(child.pid, "SIGTERM");
    const target = child;
    killTimer = setTimeout(() => killTree(target.pid, "SIGKILL"), graceMs);
  };

  const launch = (info: LaunchedTask) => {
    if (taskId !== undefined) {
      log(`Ignoring a second task "${info.task_id.value}": this executor runs one`);
      return;
    }
    task = info;
    taskId = info.task_id.value;
    const command = info.command ?? {};
    const argv = command.shell === false
      ? [command.value ?? "", ...(command.arguments ?? []).slice(1)]
      : ["/bin/sh", "-c", command.value ?? ""];
    const taskEnv: Record<string, string> = { ...env };
    for (const v of command.environment?.variables ?? []) {
      if (v.type !== "SECRET") taskEnv[v.name] = v.value ?? "";
    }
    const sandbox = env.MESOS_SANDBOX || Deno.cwd();
    update("TASK_STARTING");
    try {
      const setsid = findSetsid();
      child = new Deno.Command(setsid ?? argv[0]!, {
        args: setsid ? argv : argv.slice(1),
        cwd: sandbox,
        env: taskEnv,
        clearEnv: true,
        stdin: "null",
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      update("TASK_FAILED", `Failed to launch the command: ${(error as Error).message}`)
        .then(() => finish(1));
      return;
    }
    log(`Started the command of task "${taskId}" as process ${child.pid}: ${argv.join(" ")}`);
    update("TASK_RUNNING");
    child.status.then(async (status) => {
      clearTimeout(killTimer);
      let state: TaskState;
      let message: string;
      if (killing) {
        state = "TASK_KILLED";
        message = status.signal
          ? `Command terminated with signal ${status.signal}`
          : `Command exited with status ${status.code}`;
      } else if (status.success) {
        state = "TASK_FINISHED";
        message = "Command exited with status 0";
      } else {
        state = "TASK_FAILED";
        message = status.signal
          ? `Command terminated with signal ${status.signal}`
          : `Command exited with status ${status.code}`;
      }
      log(`${message}; ${state}`);
      await update(state, message);
      // Wait for the agent to acknowledge every update, then leave: leaving
      // earlier makes the agent fail the task for an executor gone. A busy
      // agent may take long; the executor client retries meanwhile.
      const deadline = Date.now() + 60_000;
      while (client.unacknowledgedUpdates.length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      finish(0);
    });
  };

  const client: ExecutorClient = new ExecutorClient({
    env,
    log,
    onEvent: (event: ExecutorEvent) => {
      switch (event.type) {
        case "SUBSCRIBED":
          killingState = (event.subscribed?.framework_info?.capabilities ?? [])
            .some((c) => c.type === "TASK_KILLING_STATE");
          break;
        case "LAUNCH":
          if (event.launch) launch(event.launch.task);
          break;
        case "KILL":
          if (event.kill?.task_id.value === taskId) kill(event.kill?.kill_policy);
          break;
        case "SHUTDOWN":
          if (child) kill(undefined);
          else finish(0);
          break;
      }
    },
    onGiveUp: (reason) => {
      log(`Giving up on the agent: ${reason}`);
      if (child) killTree(child.pid, "SIGKILL");
      finish(1);
    },
  });
  client.start();
  const code = await done;
  await client.stop().catch(() => {});
  return code;
}
