/**
 * The REST API: {@linkcode createApiHandler} and its validation.
 *
 * @module
 */
export * from "./handler.ts";
export * from "./http_error.ts";
export * from "./validate.ts";
