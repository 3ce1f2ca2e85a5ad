/**
 * The scheduler: the core that owns the instance state, its pure decisions
 * (`plan`, `match`, `choosePromotion`, `planUpdate`), the STATUS view, the Mesos task
 * descriptions and the artifact server. See `README.md` for the vocabulary.
 *
 * @module
 */
export * from "./core.ts";
export * from "./plan.ts";
export * from "./match.ts";
export * from "./promotion.ts";
export * from "./update_plan.ts";
export * from "./status_view.ts";
export * from "./tasks.ts";
export * from "./artifacts.ts";
export * from "./mesos_port.ts";
export * from "./events.ts";
export * from "./log_requests.ts";
