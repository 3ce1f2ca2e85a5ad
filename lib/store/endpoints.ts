/**
 * Checks the syntax of a `DBEndPoint` list for etcd and ZooKeeper, so that an
 * address that can never work is refused at once (exit code 2) while a
 * well-formed one that does not answer yet is waited for.
 *
 * @module
 */

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$/;

/**
 * What is wrong with the endpoint list `text` (`host:port,host:port`; etcd
 * also takes `http://` or `https://` before each), as the end of a sentence
 * (`endpoint "x" has no port`), or `undefined` when it is well formed.
 */
export function endpointProblem(type: "etcd" | "zookeeper", text: string): string | undefined {
  const entries = text.split(",").map((e) => e.trim());
  if (entries.every((e) => e === "")) return "it names no endpoint";
  for (const entry of entries) {
    if (entry === "") return "an entry between commas is empty";
    let rest = entry;
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
    if (scheme) {
      if (type !== "etcd") return `endpoint "${entry}" has a scheme (write host:port)`;
      if (!/^https?$/i.test(scheme[1]!)) {
        return `endpoint "${entry}" has the scheme "${scheme[1]}" (http or https expected)`;
      }
      rest = rest.slice(scheme[0].length).replace(/\/$/, "");
    }
    const m = /^(.*):(\d+)$/.exec(rest);
    if (!m) return `endpoint "${entry}" is not host:port`;
    const host = m[1]!;
    const port = Number(m[2]);
    if (!HOST.test(host)) return `endpoint "${entry}" has "${host}", not a host name or address`;
    if (port < 1 || port > 65535) return `endpoint "${entry}" has a port outside 1-65535`;
  }
  return undefined;
}

/**
 * Splits a well-formed endpoint list into its entries; throws `TypeError`
 * naming the problem (see {@linkcode endpointProblem}) otherwise.
 */
export function parseEndpoints(type: "etcd" | "zookeeper", text: string): string[] {
  const problem = endpointProblem(type, text);
  if (problem !== undefined) {
    throw new TypeError(`Cannot use the ${type} endpoint list "${text}": ${problem}`);
  }
  return text.split(",").map((e) => e.trim());
}
