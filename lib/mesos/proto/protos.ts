/**
 * The Mesos v1 `.proto` files next to this module, imported as text so that
 * they are part of the module graph: `deno run` reads them from the source
 * tree and `deno compile` embeds them in the binary, with no `--include`.
 *
 * @module
 */
import mesos from "./mesos.proto" with { type: "text" };
import scheduler from "./scheduler.proto" with { type: "text" };
import executor from "./executor.proto" with { type: "text" };

/** Text of `lib/mesos/proto/mesos.proto`. */
export const MESOS_PROTO: string = mesos;
/** Text of `lib/mesos/proto/scheduler.proto`. */
export const SCHEDULER_PROTO: string = scheduler;
/** Text of `lib/mesos/proto/executor.proto`. */
export const EXECUTOR_PROTO: string = executor;
