/**
 * A local master's membership in a Mesos masters' group in ZooKeeper, as
 * real masters do it: an EPHEMERAL_SEQUENTIAL `<path>/json.info_` node
 * holding the MasterInfo JSON; the member with the smallest node leads.
 *
 * @module
 */

import type zookeeperModule from "node-zookeeper-client";
import { type DetectedLeader, parseMasterSpec, ZooKeeperDetector } from "../detector.ts";

type Client = ReturnType<typeof zookeeperModule.createClient>;

/** Options of {@link ZooKeeperMembership}. */
export interface ZooKeeperMembershipOptions {
  /** `zk://host:port[,host:port]/path`. */
  zk: string;
  /** The MasterInfo to store (JSON). */
  info: object;
  /** Told whenever the leader changes: `true` when this member leads, else the leader (or `undefined`: none known). */
  onLeader: (leader: true | DetectedLeader | undefined) => void;
  /** Log sink. */
  log: (line: string) => void;
}

/** Registers one master in a ZooKeeper group and follows the group's leader. */
export class ZooKeeperMembership {
  #options: ZooKeeperMembershipOptions;
  #servers: string;
  #path: string;
  #auth: string | undefined;
  #client: Client | undefined;
  #detector: ZooKeeperDetector | undefined;
  #node: string | undefined;
  #closed = false;

  /** Validates the `zk` URL (a `TypeError` names it); call {@link start} to join. */
  constructor(options: ZooKeeperMembershipOptions) {
    const spec = parseMasterSpec(options.zk);
    if (spec.kind !== "zk" || !options.zk.trim().startsWith("zk://")) {
      throw new TypeError(`Option "zk" must be a zk://host:port/path URL, but got "${options.zk}"`);
    }
    this.#servers = spec.servers;
    this.#path = spec.path;
    this.#auth = spec.auth;
    this.#options = options;
  }

  /** Name of this member's node (`json.info_NNNNNNNNNN`) once joined. */
  get node(): string | undefined {
    return this.#node;
  }

  /**
   * Creates the node, starts following the leader and resolves once the
   * first leader is known. Rejects after `timeoutMs` without ZooKeeper.
   */
  async start(timeoutMs = 30_000): Promise<void> {
    const signal = AbortSignal.timeout(timeoutMs);
    // Loaded here, not with the module: only a master in a ZooKeeper group needs it.
    const [{ default: zookeeper }, { Buffer }] = await Promise.all([
      import("node-zookeeper-client"),
      import("node:buffer"),
    ]);
    const client = zookeeper.createClient(this.#servers, {
      sessionTimeout: 10_000,
      spinDelay: 500,
      retries: 1_000_000,
    });
    this.#client = client;
    if (this.#auth) client.addAuthInfo("digest", Buffer.from(this.#auth));
    client.on("state", (state: unknown) => {
      if (state === zookeeper.State.EXPIRED && !this.#closed) {
        // The node is gone with the session: like a real master, stop leading.
        this.#options.log(`master: ZooKeeper session expired; no longer a member of ${this.#path}`);
        this.#node = undefined;
        this.#options.onLeader(undefined);
      }
    });
    await withTimeout(
      new Promise<void>((resolve) => {
        client.once("connected", () => resolve());
        client.connect();
      }),
      signal,
      `Cannot connect to ZooKeeper at ${this.#servers}`,
    );
    await withTimeout(
      new Promise<void>((resolve, reject) =>
        client.mkdirp(this.#path, (error: Error | null) => (error ? reject(error) : resolve()))
      ),
      signal,
      `Cannot create ${this.#path} in ZooKeeper`,
    );
    const created = await withTimeout(
      new Promise<string>((resolve, reject) =>
        client.create(
          `${this.#path}/json.info_`,
          // node-zookeeper-client under Deno drops data that is not a Buffer.
          Buffer.from(JSON.stringify(this.#options.info)),
          zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
          (error: Error | null, path: string) => (error ? reject(error) : resolve(path)),
        )
      ),
      signal,
      `Cannot create a json.info_ node under ${this.#path}`,
    );
    this.#node = created.slice(created.lastIndexOf("/") + 1);
    this.#options.log(`master: registered as ${created} in ZooKeeper`);
    const detector = new ZooKeeperDetector({
      servers: this.#servers,
      path: this.#path,
      ...(this.#auth ? { auth: this.#auth } : {}),
      log: (line) => this.#options.log(`master: ${line}`),
      onChange: (leader) => {
        if (this.#closed) return;
        this.#options.onLeader(leader && leader.node === this.#node ? true : leader);
      },
    });
    this.#detector = detector;
    detector.start();
    await detector.waitForLeader(signal);
  }

  /** Removes the node (the group sees it vanish at once) and closes both sessions. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#detector?.close();
    const client = this.#client;
    const node = this.#node;
    if (client && node) {
      await withTimeout(
        new Promise<void>((resolve) => client.remove(`${this.#path}/${node}`, -1, () => resolve())),
        AbortSignal.timeout(5_000),
        "",
      ).catch(() => {});
    }
    client?.close();
  }
}

function withTimeout<T>(promise: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error(`${what}: timed out`));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
