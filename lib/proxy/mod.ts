/**
 * The mr-redis proxy: one address per instance that follows its master.
 *
 * @module
 */
export * from "./proxy.ts";
export * from "./reply_scanner.ts";
export * from "./request_scanner.ts";
export * from "./master_version.ts";
export * from "./proxy_group.ts";
