import { deepStrictEqual, equal, ok, throws } from "node:assert/strict";
import {
  type ContentType,
  decode,
  decodeBase64,
  encode,
  encodeBase64,
  MesosDecodeError,
} from "../lib/mesos/codec.ts";
import "../lib/mesos/protobuf_codec.ts";
import type {
  ExecutorCall,
  ExecutorEvent,
  SchedulerCall,
  SchedulerEvent,
  TaskInfo,
  TaskStatus,
} from "../lib/mesos/types.ts";

const BOTH: ContentType[] = ["application/x-protobuf", "application/json"];
const UUID = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
const utf8 = (s: string) => new TextEncoder().encode(s);

const taskInfo: TaskInfo = {
  name: "redis-a",
  task_id: { value: "a::1" },
  agent_id: { value: "M-S0" },
  resources: [
    { name: "cpus", type: "SCALAR", scalar: { value: 0.5 }, allocation_info: { role: "*" } },
    { name: "ports", type: "RANGES", ranges: { range: [{ begin: 31000, end: 31000 }] } },
  ],
  executor: {
    executor_id: { value: "exec-1" },
    type: "CUSTOM",
    command: {
      value: "./MrRedisExecutor",
      shell: false,
      uris: [{ value: "http://127.0.0.1:5454/MrRedisExecutor", executable: true }],
      environment: { variables: [{ name: "A", value: "b" }] },
    },
    shutdown_grace_period: { nanoseconds: 5_000_000_000 },
  },
  data: utf8("payload ✓"),
  labels: { labels: [{ key: "k", value: "v" }] },
  limits: { mem: { value: 128 } },
};

const schedulerCalls: SchedulerCall[] = [
  {
    type: "SUBSCRIBE",
    subscribe: {
      framework_info: {
        user: "svc",
        name: "mr-redis",
        id: { value: "F-0001" },
        failover_timeout: 604800,
        checkpoint: true,
        roles: ["dev"],
        capabilities: [{ type: "MULTI_ROLE" }, { type: "PARTITION_AWARE" }],
      },
      suppressed_roles: ["dev"],
    },
    framework_id: { value: "F-0001" },
  },
  {
    framework_id: { value: "F" },
    type: "ACCEPT",
    accept: {
      offer_ids: [{ value: "O1" }],
      operations: [{ type: "LAUNCH", launch: { task_infos: [taskInfo] } }],
      filters: { refuse_seconds: 1 },
    },
  },
  {
    framework_id: { value: "F" },
    type: "ACKNOWLEDGE",
    acknowledge: { agent_id: { value: "A" }, task_id: { value: "T" }, uuid: UUID },
  },
  {
    framework_id: { value: "F" },
    type: "RECONCILE",
    reconcile: {
      tasks: [{ task_id: { value: "T" } }, { task_id: { value: "U" }, agent_id: { value: "A" } }],
    },
  },
  { framework_id: { value: "F" }, type: "REVIVE", revive: { roles: ["a", "b"] } },
  { framework_id: { value: "F" }, type: "TEARDOWN" },
];

const status: TaskStatus = {
  task_id: { value: "T" },
  state: "TASK_RUNNING",
  source: "SOURCE_EXECUTOR",
  reason: "REASON_RECONCILIATION",
  agent_id: { value: "A" },
  executor_id: { value: "E" },
  timestamp: 1732540000.25,
  uuid: UUID,
  healthy: true,
  data: new Uint8Array([0, 255, 1]),
  unreachable_time: { nanoseconds: 1732540000000000000 },
};

const schedulerEvents: SchedulerEvent[] = [
  {
    type: "SUBSCRIBED",
    subscribed: {
      framework_id: { value: "F" },
      heartbeat_interval_seconds: 15,
      master_info: {
        id: "m",
        ip: 16777343,
        port: 5050,
        pid: "master@127.0.0.1:5050",
        address: { ip: "127.0.0.1", port: 5050, hostname: "localhost" },
      },
    },
  },
  {
    type: "OFFERS",
    offers: {
      offers: [{
        id: { value: "O" },
        framework_id: { value: "F" },
        agent_id: { value: "A" },
        hostname: "h",
        resources: taskInfo.resources,
        executor_ids: [{ value: "E" }],
        allocation_info: { role: "*" },
        url: { scheme: "http", address: { ip: "127.0.0.1", port: 5051 }, path: "/slave(1)" },
      }],
    },
  },
  { type: "UPDATE", update: { status } },
  {
    type: "FAILURE",
    failure: { agent_id: { value: "A" }, executor_id: { value: "E" }, status: 9 },
  },
  { type: "ERROR", error: { message: "Framework has been removed" } },
  { type: "HEARTBEAT" },
];

const executorCalls: ExecutorCall[] = [
  {
    executor_id: { value: "E" },
    framework_id: { value: "F" },
    type: "SUBSCRIBE",
    subscribe: { unacknowledged_tasks: [taskInfo], unacknowledged_updates: [{ status }] },
  },
  { executor_id: { value: "E" }, framework_id: { value: "F" }, type: "UPDATE", update: { status } },
  {
    executor_id: { value: "E" },
    framework_id: { value: "F" },
    type: "MESSAGE",
    message: { data: utf8("{}") },
  },
];

const executorEvents: ExecutorEvent[] = [
  {
    type: "SUBSCRIBED",
    subscribed: {
      executor_info: taskInfo.executor!,
      framework_info: { user: "u", name: "n", id: { value: "F" } },
      agent_info: { hostname: "h", id: { value: "A" }, port: 5051 },
      container_id: { value: "c" },
    },
  },
  { type: "LAUNCH", launch: { task: taskInfo } },
  { type: "KILL", kill: { task_id: { value: "T" } } },
  { type: "ACKNOWLEDGED", acknowledged: { task_id: { value: "T" }, uuid: UUID } },
  { type: "MESSAGE", message: { data: utf8("hi") } },
  { type: "SHUTDOWN" },
];

/** Asserts every Uint8Array inside `value` is a plain Uint8Array (no Buffer). */
function assertPlainBytes(value: unknown): void {
  if (value instanceof Uint8Array) {
    equal(Object.getPrototypeOf(value), Uint8Array.prototype);
  } else if (Array.isArray(value)) {
    value.forEach(assertPlainBytes);
  } else if (typeof value === "object" && value !== null) {
    Object.values(value).forEach(assertPlainBytes);
  }
}

Deno.test("calls and events round-trip in both encodings", async (t) => {
  const cases: [string, object[]][] = [
    ["mesos.v1.scheduler.Call", schedulerCalls],
    ["mesos.v1.scheduler.Event", schedulerEvents],
    ["mesos.v1.executor.Call", executorCalls],
    ["mesos.v1.executor.Event", executorEvents],
  ];
  for (const [typeName, messages] of cases) {
    for (const contentType of BOTH) {
      await t.step(`${typeName} as ${contentType}`, () => {
        for (const message of messages) {
          const body = encode(typeName, message, contentType);
          equal(Object.getPrototypeOf(body), Uint8Array.prototype);
          const back = decode(typeName, body, contentType);
          deepStrictEqual(back, message);
          assertPlainBytes(back);
        }
      });
    }
  }
});

Deno.test("hand-built protobuf bytes of a TaskStatus decode to the right fields", () => {
  const bytes = new Uint8Array([
    0x0a,
    0x04,
    0x0a,
    0x02,
    0x74,
    0x31, // 1: task_id {1: value "t1"}
    0x10,
    0x01, // 2: state = TASK_RUNNING (1)
    0x2a,
    0x03,
    0x0a,
    0x01,
    0x41, // 5: agent_id {1: value "A"}
    0x48,
    0x02, // 9: source = SOURCE_EXECUTOR (2)
    0x5a,
    0x10,
    ...UUID, // 11: uuid, 16 bytes
    0x98,
    0x06,
    0x01, // field 99 (unknown varint): skipped
  ]);
  const decoded = decode<TaskStatus>("mesos.v1.TaskStatus", bytes, "application/x-protobuf");
  deepStrictEqual(decoded, {
    task_id: { value: "t1" },
    state: "TASK_RUNNING",
    agent_id: { value: "A" },
    source: "SOURCE_EXECUTOR",
    uuid: UUID,
  });
  assertPlainBytes(decoded);
});

Deno.test("hand-built protobuf bytes of a scheduler SUBSCRIBE call decode to the right fields", () => {
  const frameworkInfo = [0x0a, 0x03, ...utf8("svc"), 0x12, 0x02, ...utf8("fw")];
  const subscribe = [0x0a, frameworkInfo.length, ...frameworkInfo];
  const bytes = new Uint8Array([0x10, 0x01, 0x1a, subscribe.length, ...subscribe]);
  deepStrictEqual(decode("mesos.v1.scheduler.Call", bytes, "application/x-protobuf"), {
    type: "SUBSCRIBE",
    subscribe: { framework_info: { user: "svc", name: "fw" } },
  });
});

Deno.test("our protobuf encoding of a TaskStatus carries Mesos's tags", () => {
  const bytes = encode(
    "mesos.v1.TaskStatus",
    { task_id: { value: "t1" }, state: "TASK_RUNNING" },
    "application/x-protobuf",
  );
  deepStrictEqual([...bytes].sort(), [0x0a, 0x04, 0x0a, 0x02, 0x74, 0x31, 0x10, 0x01].sort());
});

Deno.test("a hand-written Mesos JSON event decodes right", () => {
  const json = `{
    "type": "UPDATE",
    "some_future_key": {"x": 1},
    "update": {"status": {
      "task_id": {"value": "t1"},
      "state": "TASK_FAILED",
      "reason": "REASON_FROM_THE_FUTURE",
      "source": "SOURCE_AGENT",
      "uuid": "${encodeBase64(UUID)}",
      "data": "aGVsbG8=",
      "timestamp": "1732540000.5",
      "agent_id": {"value": "A"},
      "healthy": false,
      "unreachable_time": {"nanoseconds": "1732540000000000000"}
    }}
  }`;
  deepStrictEqual(decode("mesos.v1.scheduler.Event", utf8(json), "application/json"), {
    type: "UPDATE",
    update: {
      status: {
        task_id: { value: "t1" },
        state: "TASK_FAILED",
        source: "SOURCE_AGENT",
        uuid: UUID,
        data: utf8("hello"),
        timestamp: 1732540000.5,
        agent_id: { value: "A" },
        healthy: false,
        unreachable_time: { nanoseconds: 1732540000000000000 },
      },
    },
  });
});

Deno.test("an unknown event type is dropped, not an error", () => {
  const event = decode(
    "mesos.v1.scheduler.Event",
    utf8(`{"type":"NEW_THING"}`),
    "application/json",
  );
  deepStrictEqual(event, {});
});

Deno.test("JSON encoding uses base64 for bytes and names for enums", () => {
  const body = encode(
    "mesos.v1.scheduler.Call",
    schedulerCalls[2]!,
    "application/json",
  );
  const parsed = JSON.parse(new TextDecoder().decode(body));
  equal(parsed.type, "ACKNOWLEDGE");
  equal(parsed.acknowledge.uuid, encodeBase64(UUID));
  deepStrictEqual(decodeBase64(parsed.acknowledge.uuid), UUID);
  const infinite = encode("mesos.v1.Filters", { refuse_seconds: Infinity }, "application/json");
  equal(new TextDecoder().decode(infinite), `{"refuse_seconds":"Infinity"}`);
  deepStrictEqual(decode("mesos.v1.Filters", infinite, "application/json"), {
    refuse_seconds: Infinity,
  });
});

Deno.test("a missing required field is a MesosDecodeError", async (t) => {
  await t.step("JSON, nested", () => {
    throws(
      () =>
        decode(
          "mesos.v1.scheduler.Call",
          utf8(`{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u"}}}`),
          "application/json",
        ),
      (e: unknown) =>
        e instanceof MesosDecodeError && e.message.includes("mesos.v1.scheduler.Call") &&
        e.message.includes("subscribe.framework_info.name"),
    );
  });
  await t.step("JSON, required field inside a repeated message", () => {
    throws(
      () =>
        decode(
          "mesos.v1.scheduler.Event",
          utf8(`{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o"}}]}}`),
          "application/json",
        ),
      /offers\.offers\[0\]\.framework_id/,
    );
  });
  await t.step("protobuf: TaskStatus without state", () => {
    throws(
      () =>
        decode(
          "mesos.v1.TaskStatus",
          new Uint8Array([0x0a, 0x04, 0x0a, 0x02, 0x74, 0x31]),
          "application/x-protobuf",
        ),
      (e: unknown) => e instanceof MesosDecodeError && e.message.includes("mesos.v1.TaskStatus"),
    );
  });
  await t.step("protobuf: executor Call without framework_id", () => {
    throws(
      () =>
        decode(
          "mesos.v1.executor.Call",
          new Uint8Array([0x0a, 0x03, 0x0a, 0x01, 0x45]),
          "application/x-protobuf",
        ),
      MesosDecodeError,
    );
  });
  await t.step("an unknown name of a required enum", () => {
    throws(
      () =>
        decode(
          "mesos.v1.TaskStatus",
          utf8(`{"task_id":{"value":"t"},"state":"TASK_SLEEPING"}`),
          "application/json",
        ),
      /state/,
    );
  });
});

Deno.test("unparsable input is a MesosDecodeError", () => {
  for (
    const [body, contentType] of [
      [utf8("{not json"), "application/json"],
      [utf8("[1,2]"), "application/json"],
      [utf8(`{"task_id":{"value":5},"state":"TASK_RUNNING"}`), "application/json"],
      [utf8(`{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"!!"}`), "application/json"],
      [new Uint8Array([0x0a, 0x40, 0x01]), "application/x-protobuf"],
      [new Uint8Array([0x0f]), "application/x-protobuf"],
    ] as const
  ) {
    throws(() => decode("mesos.v1.TaskStatus", body, contentType), MesosDecodeError);
  }
});

Deno.test("encode refuses a message without its required fields, naming the field", () => {
  throws(
    () => encode("mesos.v1.TaskStatus", { task_id: { value: "t" } }, "application/x-protobuf"),
    (e: unknown) => e instanceof TypeError && /state/.test(e.message),
  );
  throws(() => encode("mesos.v1.NoSuchThing", {}, "application/json"), TypeError);
  ok(encode("mesos.v1.Filters", {}, "application/x-protobuf").length === 0);
});

Deno.test("the generated descriptor matches the .proto files (run tools/gen_mesos_descriptor.ts)", async () => {
  const { mesosDescriptor, DESCRIPTOR_PATH } = await import("../tools/gen_mesos_descriptor.ts");
  equal(await Deno.readTextFile(DESCRIPTOR_PATH), mesosDescriptor());
});

/** Plain objects protobufjs takes (`fromObject`) for a message in the codec's shape. */
function protobufjsInput(value: unknown): unknown {
  if (value instanceof Uint8Array || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map(protobufjsInput);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, protobufjsInput(v)]));
}

Deno.test("our protobuf bytes are protobufjs's bytes for the same message, and we read its packed fields", async () => {
  const { default: protobuf } = await import("protobufjs");
  const { MESOS_DESCRIPTOR } = await import("../lib/mesos/schema.ts");
  const root = protobuf.Root.fromJSON(MESOS_DESCRIPTOR as protobuf.INamespace);
  root.resolveAll();
  const extra: [string, object][] = [
    // Negative int32 and int64 (10-byte varints), a large int64, a map, a double.
    ["mesos.v1.scheduler.Event", {
      type: "FAILURE",
      failure: { agent_id: { value: "A" }, status: -9 },
    }],
    ["mesos.v1.TimeInfo", { nanoseconds: -1_500_000_000 }],
    ["mesos.v1.TimeInfo", { nanoseconds: 1732540000000000000 }],
    ["mesos.v1.AgentInfo", { hostname: "h", port: -1 }],
    ["mesos.v1.TaskInfo", { ...taskInfo, limits: { mem: { value: 128 }, cpus: { value: 0.25 } } }],
    // Long strings and a body over 127 bytes in nested lengths.
    ["mesos.v1.TaskStatus", { ...status, message: "ü".repeat(300) + "x".repeat(70) }],
    ["mesos.v1.HealthCheck.HTTPCheckInfo", { port: 80, statuses: [200, 204, 301] }],
  ];
  const cases: [string, object][] = [
    ...schedulerCalls.map((m) => ["mesos.v1.scheduler.Call", m] as [string, object]),
    ...schedulerEvents.map((m) => ["mesos.v1.scheduler.Event", m] as [string, object]),
    ...executorCalls.map((m) => ["mesos.v1.executor.Call", m] as [string, object]),
    ...executorEvents.map((m) => ["mesos.v1.executor.Event", m] as [string, object]),
    ...extra,
  ];
  for (const [typeName, message] of cases) {
    const ours = encode(typeName, message, "application/x-protobuf");
    const type = root.lookupType(typeName);
    const theirs = type.encode(type.fromObject(protobufjsInput(message) as object)).finish();
    deepStrictEqual([...ours], [...theirs], `${typeName} ${JSON.stringify(message).slice(0, 80)}`);
    deepStrictEqual(decode(typeName, theirs, "application/x-protobuf"), message);
  }
  // Repeated scalars may come packed (proto2 with [packed=true], proto3): read either way.
  const packed = new Uint8Array([0x08, 0x50, 0x22, 0x04, 0xc8, 0x01, 0xcc, 0x01, 0x20, 0xad, 0x02]);
  deepStrictEqual(
    decode("mesos.v1.HealthCheck.HTTPCheckInfo", packed, "application/x-protobuf"),
    { port: 80, statuses: [200, 204, 301] },
  );
  // A field with an unexpected wire type is skipped like an unknown one.
  deepStrictEqual(
    decode(
      "mesos.v1.TaskStatus",
      // state (2) again, as a length-delimited field: skipped.
      new Uint8Array([0x0a, 0x03, 0x0a, 0x01, 0x74, 0x10, 0x01, 0x12, 0x01, 0x41]),
      "application/x-protobuf",
    ),
    { task_id: { value: "t" }, state: "TASK_RUNNING" },
  );
});

Deno.test("base64 of bytes is standard base64 with padding, and reads back", () => {
  for (const length of [0, 1, 2, 3, 4, 5, 16, 17, 255, 100_000]) {
    const bytes = new Uint8Array(length).map((_, i) => (i * 37 + 11) % 256);
    let binary = "";
    for (const b of bytes) binary += String.fromCharCode(b);
    equal(encodeBase64(bytes), btoa(binary), `length ${length}`);
    deepStrictEqual(decodeBase64(encodeBase64(bytes)), bytes);
  }
});
