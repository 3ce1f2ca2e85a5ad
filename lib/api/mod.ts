/**
 * The REST API: {@linkcode createApiHandler} and its validation.
 *
 * @module
 */
export * from "./auth.ts";
export * from "./handler.ts";
export * from "./http_error.ts";
export * from "./validate.ts";
export * from "./health.ts";
export * from "./metrics.ts";
export * from "./logs.ts";
