/**
 * The `mrr` command-line client: its commands, the REST client it uses and
 * the output formats. The program itself is `cmd/mrr.ts`.
 *
 * @module
 */

export * from "./client.ts";
export * from "./command.ts";
export * from "./context.ts";
export * from "./errors.ts";
export * from "./flags.ts";
export * from "./format.ts";
export * from "./help.ts";
export * from "./main.ts";
export * from "./user_config.ts";
export * from "./wait.ts";
