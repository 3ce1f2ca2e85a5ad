/**
 * Passwords and ACLs of the redis-servers: every process of an instance has
 * two users, set in a config file of mode 0600 (never on the command line):
 *
 * - `default`, the tenant's: its password is the instance's (`GET
 *   /v1/CREDENTIALS/{name}`); every command but those that would break the
 *   managed topology or reach the host ({@linkcode TENANT_DENIED}).
 *   `FLUSHALL` and the rest of the data commands stay: the data is the
 *   tenant's.
 * - {@linkcode ADMIN_USER}, the executor's (health checks, promotion,
 *   re-pointing, fencing, shutdown), with a secret of its own the tenant
 *   never sees.
 * - {@linkcode REPLICATION_USER}, what replicas log in to their master as
 *   (`masteruser` / `masterauth`): it may only run the replication handshake
 *   (`PING`, `REPLCONF`, `PSYNC`, `SYNC`). Its secret is derived from the
 *   internal one; `CONFIG GET masterauth` shows it to the tenant, to whom it
 *   gives nothing the tenant's own password does not.
 *
 * @module
 */
import { base64url, sha256 } from "./sha256.ts";

/** The credentials of one instance's processes. */
export interface RedisAuth {
  /** The `default` user's password: the one clients use. */
  password: string;
  /** The internal user's secret (executor and replication). */
  adminPassword: string;
}

/** The internal user the executor logs in as. */
export const ADMIN_USER = "mrr-admin";

/** The user replicas log in to their master as (replication handshake only). */
export const REPLICATION_USER = "mrr-replication";

/** Name of the auth config file written next to the data. */
export const AUTH_CONFIG_FILE = "mrr-auth.conf";

/**
 * ACL rules taken from the `default` user: replication and failover
 * (`REPLICAOF`, `SLAVEOF`, `FAILOVER`, `SYNC`, `PSYNC`), the configuration
 * (`CONFIG`: `GET` would show the replication secret), `SHUTDOWN`, `DEBUG`,
 * `MODULE`, `ACL`, cluster changes, and the client commands that could cut
 * or stall the executor's own connection (`CLIENT KILL`, `CLIENT PAUSE`).
 * `CONFIG GET` stays (it shows nothing secret but the replication login).
 */
export const TENANT_DENIED: readonly string[] = [
  "-replicaof",
  "-slaveof",
  "-failover",
  "-sync",
  "-psync",
  "-config|set",
  "-config|rewrite",
  "-shutdown",
  "-debug",
  "-module",
  "-acl",
  "-cluster",
  "+cluster|info",
  "+cluster|nodes",
  "+cluster|slots",
  "+cluster|shards",
  "+cluster|myid",
  "+cluster|keyslot",
  "-client|kill",
  "-client|pause",
];

/** Shortest password accepted in a CREATE body, characters. */
export const MIN_PASSWORD_LENGTH = 16;
/** Longest password accepted in a CREATE body, characters. */
export const MAX_PASSWORD_LENGTH = 128;

/**
 * Why `password` cannot be an instance password, or `undefined` when it can:
 * {@linkcode MIN_PASSWORD_LENGTH} to {@linkcode MAX_PASSWORD_LENGTH}
 * printable ASCII characters, no space, quote or backslash. The reason never
 * repeats the password.
 */
export function passwordProblem(password: string): string | undefined {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    return `must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long, but has ${password.length}`;
  }
  if (!/^[\x21-\x7e]+$/.test(password) || /["'\\]/.test(password)) {
    return "may only hold printable ASCII characters other than space, quotes and backslash";
  }
  return undefined;
}

/** A random secret: 32 random bytes, base64url (43 characters). */
export function randomSecret(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Derived replication secrets by internal secret (the processes of an instance share one). */
const derived = new Map<string, string>();

/** The replication user's secret: derived from the internal one (nothing more to store). */
export function replicationSecret(auth: RedisAuth): string {
  let secret = derived.get(auth.adminPassword);
  if (secret === undefined) {
    // SHA-256, base64url: the same value `node:crypto` gave (processes started
    // by an older executor keep matching).
    secret = base64url(sha256(`mrr-replication:${auth.adminPassword}`));
    if (derived.size >= 256) derived.delete(derived.keys().next().value!);
    derived.set(auth.adminPassword, secret);
  }
  return secret;
}

/** The config file text that sets the three users and the replication login. */
export function authConfig(auth: RedisAuth): string {
  for (const secret of [auth.password, auth.adminPassword]) {
    const problem = passwordProblem(secret);
    if (problem) throw new TypeError(`Cannot write the redis auth config: a secret ${problem}`);
  }
  const replication = replicationSecret(auth);
  return [
    "# Written by MrRedisExecutor: the users of this process. Owner-only.",
    `user default on >${auth.password} ~* &* +@all ${TENANT_DENIED.join(" ")}`,
    `user ${ADMIN_USER} on >${auth.adminPassword} ~* &* +@all`,
    `user ${REPLICATION_USER} on >${replication} -@all +ping +replconf +psync +sync`,
    `masteruser ${REPLICATION_USER}`,
    `masterauth ${replication}`,
    "",
  ].join("\n");
}

/** Replaces every secret of `auth` in `text` by `***` (for messages that quote redis output). */
export function redactSecrets(text: string, auth: RedisAuth | undefined): string {
  if (!auth) return text;
  let out = text;
  for (const secret of [auth.password, auth.adminPassword, replicationSecret(auth)]) {
    out = out.split(secret).join("***");
  }
  return out;
}
