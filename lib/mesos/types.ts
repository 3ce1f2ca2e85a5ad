/**
 * TypeScript shapes of the Mesos v1 messages, in the in-memory form used by
 * `codec.ts`: snake_case field names, enums as names, ids as `{value}`,
 * `bytes` as `Uint8Array`, 64-bit integers as numbers. Optional fields are
 * optional. Only the fields in `proto/*.proto` exist.
 *
 * @module
 */

/** Any Mesos id wrapper (`FrameworkID`, `TaskID`, ...). */
export interface ID {
  /** The id string. */
  value: string;
}
/** `mesos.v1.FrameworkID`. */
export type FrameworkID = ID;
/** `mesos.v1.OfferID`. */
export type OfferID = ID;
/** `mesos.v1.AgentID`. */
export type AgentID = ID;
/** `mesos.v1.TaskID`. */
export type TaskID = ID;
/** `mesos.v1.ExecutorID`. */
export type ExecutorID = ID;
/** `mesos.v1.OperationID`. */
export type OperationID = ID;
/** `mesos.v1.ResourceProviderID`. */
export type ResourceProviderID = ID;

/** `mesos.v1.ContainerID`. */
export interface ContainerID {
  value: string;
  parent?: ContainerID;
}

/** `mesos.v1.TimeInfo` / `mesos.v1.DurationInfo`. */
export interface TimeInfo {
  nanoseconds: number;
}
/** `mesos.v1.DurationInfo`. */
export type DurationInfo = TimeInfo;

/** `mesos.v1.Address`. */
export interface Address {
  hostname?: string;
  ip?: string;
  port: number;
}

/** `mesos.v1.Parameter`. */
export interface Parameter {
  key: string;
  value: string;
}

/** `mesos.v1.URL`. */
export interface URLInfo {
  scheme: string;
  address: Address;
  path?: string;
  query?: Parameter[];
  fragment?: string;
}

/** `mesos.v1.Label`. */
export interface Label {
  key: string;
  value?: string;
}

/** `mesos.v1.Labels`. */
export interface Labels {
  labels?: Label[];
}

/** `mesos.v1.DiscoveryInfo.Visibility`. */
export type DiscoveryVisibility = "FRAMEWORK" | "CLUSTER" | "EXTERNAL";

/** `mesos.v1.Port`: a named port for service discovery. */
export interface DiscoveryPort {
  number: number;
  name?: string;
  protocol?: string;
  visibility?: DiscoveryVisibility;
  labels?: Labels;
}

/** `mesos.v1.DiscoveryInfo`: how discovery tools (Mesos-DNS, ...) name a task. */
export interface DiscoveryInfo {
  visibility: DiscoveryVisibility;
  name?: string;
  environment?: string;
  location?: string;
  version?: string;
  ports?: { ports?: DiscoveryPort[] };
  labels?: Labels;
}

/** `mesos.v1.KillPolicy`. */
export interface KillPolicy {
  grace_period?: DurationInfo;
}

/** `mesos.v1.Filters` (`refuse_seconds` defaults to 5 on the master). */
export interface Filters {
  refuse_seconds?: number;
}

/** `mesos.v1.DomainInfo`. */
export interface DomainInfo {
  fault_domain?: { region: { name: string }; zone: { name: string } };
}

/** `mesos.v1.Unavailability`. */
export interface Unavailability {
  start: TimeInfo;
  duration?: DurationInfo;
}

/** `mesos.v1.FrameworkInfo.Capability.Type`. */
export type FrameworkCapabilityType =
  | "UNKNOWN"
  | "REVOCABLE_RESOURCES"
  | "TASK_KILLING_STATE"
  | "GPU_RESOURCES"
  | "SHARED_RESOURCES"
  | "PARTITION_AWARE"
  | "MULTI_ROLE"
  | "RESERVATION_REFINEMENT"
  | "REGION_AWARE";

/** `mesos.v1.FrameworkInfo`. */
export interface FrameworkInfo {
  user: string;
  name: string;
  id?: FrameworkID;
  failover_timeout?: number;
  checkpoint?: boolean;
  role?: string;
  roles?: string[];
  hostname?: string;
  principal?: string;
  webui_url?: string;
  capabilities?: { type?: FrameworkCapabilityType }[];
  labels?: Labels;
  offer_filters?: Record<string, OfferFilters>;
}

/** `mesos.v1.OfferFilters`. */
export interface OfferFilters {
  min_allocatable_resources?: {
    quantities?: { quantities?: Record<string, ValueScalar> }[];
  };
}

/** `mesos.v1.MasterInfo`. */
export interface MasterInfo {
  id: string;
  ip: number;
  port: number;
  pid?: string;
  hostname?: string;
  version?: string;
  address?: Address;
  domain?: DomainInfo;
  capabilities?: { type?: "UNKNOWN" | "AGENT_UPDATE" | "AGENT_DRAINING" | "QUOTA_V2" }[];
}

/** `mesos.v1.AgentInfo`. */
export interface AgentInfo {
  hostname: string;
  port?: number;
  resources?: Resource[];
  attributes?: Attribute[];
  id?: AgentID;
  domain?: DomainInfo;
}

/** `mesos.v1.Value.Type`. */
export type ValueType = "SCALAR" | "RANGES" | "SET" | "TEXT";
/** `mesos.v1.Value.Scalar`. */
export interface ValueScalar {
  value: number;
}
/** `mesos.v1.Value.Range` (both ends inclusive). */
export interface ValueRange {
  begin: number;
  end: number;
}
/** `mesos.v1.Value.Ranges`. */
export interface ValueRanges {
  range?: ValueRange[];
}
/** `mesos.v1.Value.Set`. */
export interface ValueSet {
  item?: string[];
}
/** `mesos.v1.Value.Text`. */
export interface ValueText {
  value: string;
}

/** `mesos.v1.Attribute`. */
export interface Attribute {
  name: string;
  type: ValueType;
  scalar?: ValueScalar;
  ranges?: ValueRanges;
  set?: ValueSet;
  text?: ValueText;
}

/** `mesos.v1.Resource.ReservationInfo`. */
export interface ReservationInfo {
  type?: "UNKNOWN" | "STATIC" | "DYNAMIC";
  role?: string;
  principal?: string;
  labels?: Labels;
}

/** `mesos.v1.Resource`. */
export interface Resource {
  provider_id?: ResourceProviderID;
  name: string;
  type: ValueType;
  scalar?: ValueScalar;
  ranges?: ValueRanges;
  set?: ValueSet;
  role?: string;
  allocation_info?: { role?: string };
  reservation?: ReservationInfo;
  reservations?: ReservationInfo[];
  revocable?: Record<string, never>;
  shared?: Record<string, never>;
}

/** `mesos.v1.CommandInfo.URI`. */
export interface CommandURI {
  value: string;
  executable?: boolean;
  extract?: boolean;
  cache?: boolean;
  output_file?: string;
}

/** `mesos.v1.Environment`. */
export interface Environment {
  variables?: {
    name: string;
    type?: "UNKNOWN" | "VALUE" | "SECRET";
    value?: string;
  }[];
}

/** `mesos.v1.CommandInfo` (`shell` defaults to true on the agent). */
export interface CommandInfo {
  uris?: CommandURI[];
  environment?: Environment;
  shell?: boolean;
  value?: string;
  arguments?: string[];
  user?: string;
}

/** `mesos.v1.ContainerInfo` (only the fields in `proto/mesos.proto`). */
export interface ContainerInfo {
  type: "DOCKER" | "MESOS";
  hostname?: string;
  docker?: {
    image: string;
    network?: "HOST" | "BRIDGE" | "NONE" | "USER";
    port_mappings?: { host_port: number; container_port: number; protocol?: string }[];
    privileged?: boolean;
    parameters?: Parameter[];
    force_pull_image?: boolean;
  };
}

/** `mesos.v1.HealthCheck`. */
export interface HealthCheck {
  delay_seconds?: number;
  interval_seconds?: number;
  timeout_seconds?: number;
  consecutive_failures?: number;
  grace_period_seconds?: number;
  type?: "UNKNOWN" | "COMMAND" | "HTTP" | "TCP";
  command?: CommandInfo;
  http?: { port: number; path?: string; scheme?: string; statuses?: number[] };
  tcp?: { port: number };
}

/** `mesos.v1.ExecutorInfo`. */
export interface ExecutorInfo {
  type?: "UNKNOWN" | "DEFAULT" | "CUSTOM";
  executor_id: ExecutorID;
  framework_id?: FrameworkID;
  command?: CommandInfo;
  container?: ContainerInfo;
  resources?: Resource[];
  name?: string;
  source?: string;
  data?: Uint8Array;
  shutdown_grace_period?: DurationInfo;
  labels?: Labels;
}

/** `mesos.v1.TaskInfo`. */
export interface TaskInfo {
  name: string;
  task_id: TaskID;
  agent_id: AgentID;
  resources?: Resource[];
  executor?: ExecutorInfo;
  command?: CommandInfo;
  container?: ContainerInfo;
  health_check?: HealthCheck;
  kill_policy?: KillPolicy;
  data?: Uint8Array;
  labels?: Labels;
  discovery?: DiscoveryInfo;
  max_completion_time?: DurationInfo;
  limits?: Record<string, ValueScalar>;
}

/** `mesos.v1.TaskGroupInfo`. */
export interface TaskGroupInfo {
  tasks?: TaskInfo[];
}

/** `mesos.v1.Offer.Operation.Type`. */
export type OperationType =
  | "UNKNOWN"
  | "LAUNCH"
  | "LAUNCH_GROUP"
  | "RESERVE"
  | "UNRESERVE"
  | "CREATE"
  | "DESTROY"
  | "GROW_VOLUME"
  | "SHRINK_VOLUME"
  | "CREATE_DISK"
  | "DESTROY_DISK";

/** `mesos.v1.Offer.Operation`. */
export interface OfferOperation {
  type?: OperationType;
  id?: OperationID;
  launch?: { task_infos?: TaskInfo[] };
  launch_group?: { executor: ExecutorInfo; task_group: TaskGroupInfo };
  reserve?: { source?: Resource[]; resources?: Resource[] };
  unreserve?: { resources?: Resource[] };
  create?: { volumes?: Resource[] };
  destroy?: { volumes?: Resource[] };
  grow_volume?: { volume: Resource; addition: Resource };
  shrink_volume?: { volume: Resource; subtract: ValueScalar };
}

/** `mesos.v1.Offer`. */
export interface Offer {
  id: OfferID;
  framework_id: FrameworkID;
  agent_id: AgentID;
  hostname: string;
  url?: URLInfo;
  domain?: DomainInfo;
  resources?: Resource[];
  attributes?: Attribute[];
  executor_ids?: ExecutorID[];
  unavailability?: Unavailability;
  allocation_info?: { role?: string };
}

/** `mesos.v1.InverseOffer`. */
export interface InverseOffer {
  id: OfferID;
  url?: URLInfo;
  framework_id: FrameworkID;
  agent_id?: AgentID;
  unavailability: Unavailability;
  resources?: Resource[];
}

/** `mesos.v1.TaskState`. */
export type TaskState =
  | "TASK_STAGING"
  | "TASK_STARTING"
  | "TASK_RUNNING"
  | "TASK_KILLING"
  | "TASK_FINISHED"
  | "TASK_FAILED"
  | "TASK_KILLED"
  | "TASK_ERROR"
  | "TASK_LOST"
  | "TASK_DROPPED"
  | "TASK_UNREACHABLE"
  | "TASK_GONE"
  | "TASK_GONE_BY_OPERATOR"
  | "TASK_UNKNOWN";

/** Terminal task states, as Mesos defines them (TASK_UNREACHABLE and TASK_UNKNOWN are not). */
export const TERMINAL_TASK_STATES: ReadonlySet<string> = new Set<TaskState>([
  "TASK_FINISHED",
  "TASK_FAILED",
  "TASK_KILLED",
  "TASK_ERROR",
  "TASK_LOST",
  "TASK_DROPPED",
  "TASK_GONE",
  "TASK_GONE_BY_OPERATOR",
]);

/** `mesos.v1.TaskStatus.Source`. */
export type TaskStatusSource = "SOURCE_MASTER" | "SOURCE_AGENT" | "SOURCE_EXECUTOR";

/** `mesos.v1.TaskStatus.Reason` (names as in `proto/mesos.proto`). */
export type TaskStatusReason =
  | "REASON_COMMAND_EXECUTOR_FAILED"
  | "REASON_CONTAINER_LAUNCH_FAILED"
  | "REASON_CONTAINER_LIMITATION"
  | "REASON_CONTAINER_LIMITATION_DISK"
  | "REASON_CONTAINER_LIMITATION_MEMORY"
  | "REASON_CONTAINER_PREEMPTED"
  | "REASON_CONTAINER_UPDATE_FAILED"
  | "REASON_MAX_COMPLETION_TIME_REACHED"
  | "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
  | "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
  | "REASON_EXECUTOR_TERMINATED"
  | "REASON_EXECUTOR_UNREGISTERED"
  | "REASON_FRAMEWORK_REMOVED"
  | "REASON_GC_ERROR"
  | "REASON_INVALID_FRAMEWORKID"
  | "REASON_INVALID_OFFERS"
  | "REASON_IO_SWITCHBOARD_EXITED"
  | "REASON_MASTER_DISCONNECTED"
  | "REASON_RECONCILIATION"
  | "REASON_RESOURCES_UNKNOWN"
  | "REASON_AGENT_DISCONNECTED"
  | "REASON_AGENT_REMOVED"
  | "REASON_AGENT_REMOVED_BY_OPERATOR"
  | "REASON_AGENT_REREGISTERED"
  | "REASON_AGENT_RESTARTED"
  | "REASON_AGENT_UNKNOWN"
  | "REASON_AGENT_DRAINING"
  | "REASON_TASK_CHECK_STATUS_UPDATED"
  | "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
  | "REASON_TASK_GROUP_INVALID"
  | "REASON_TASK_GROUP_UNAUTHORIZED"
  | "REASON_TASK_INVALID"
  | "REASON_TASK_KILLED_DURING_LAUNCH"
  | "REASON_TASK_UNAUTHORIZED"
  | "REASON_TASK_UNKNOWN";

/** `mesos.v1.TaskStatus`. */
export interface TaskStatus {
  task_id: TaskID;
  state: TaskState;
  message?: string;
  source?: TaskStatusSource;
  reason?: TaskStatusReason;
  data?: Uint8Array;
  agent_id?: AgentID;
  executor_id?: ExecutorID;
  /** Seconds since the epoch. */
  timestamp?: number;
  /** Present ⇒ the update must be acknowledged. */
  uuid?: Uint8Array;
  healthy?: boolean;
  labels?: Labels;
  container_status?: { container_id?: ContainerID; executor_pid?: number };
  unreachable_time?: TimeInfo;
  limitation?: { resources?: Resource[] };
}

/** `mesos.v1.OperationState`. */
export type OperationState =
  | "OPERATION_UNSUPPORTED"
  | "OPERATION_PENDING"
  | "OPERATION_FINISHED"
  | "OPERATION_FAILED"
  | "OPERATION_ERROR"
  | "OPERATION_DROPPED"
  | "OPERATION_UNREACHABLE"
  | "OPERATION_GONE_BY_OPERATOR"
  | "OPERATION_RECOVERING"
  | "OPERATION_UNKNOWN";

/** `mesos.v1.OperationStatus`. */
export interface OperationStatus {
  operation_id?: OperationID;
  state: OperationState;
  message?: string;
  converted_resources?: Resource[];
  uuid?: { value: Uint8Array };
  agent_id?: AgentID;
  resource_provider_id?: ResourceProviderID;
}

/** `mesos.v1.scheduler.Call.Type`. */
export type SchedulerCallType =
  | "UNKNOWN"
  | "SUBSCRIBE"
  | "TEARDOWN"
  | "ACCEPT"
  | "DECLINE"
  | "ACCEPT_INVERSE_OFFERS"
  | "DECLINE_INVERSE_OFFERS"
  | "REVIVE"
  | "KILL"
  | "SHUTDOWN"
  | "ACKNOWLEDGE"
  | "ACKNOWLEDGE_OPERATION_STATUS"
  | "RECONCILE"
  | "RECONCILE_OPERATIONS"
  | "MESSAGE"
  | "REQUEST"
  | "SUPPRESS"
  | "UPDATE_FRAMEWORK";

/** `mesos.v1.scheduler.Call`. */
export interface SchedulerCall {
  framework_id?: FrameworkID;
  type?: SchedulerCallType;
  subscribe?: { framework_info: FrameworkInfo; suppressed_roles?: string[] };
  accept?: { offer_ids?: OfferID[]; operations?: OfferOperation[]; filters?: Filters };
  decline?: { offer_ids?: OfferID[]; filters?: Filters };
  accept_inverse_offers?: { inverse_offer_ids?: OfferID[]; filters?: Filters };
  decline_inverse_offers?: { inverse_offer_ids?: OfferID[]; filters?: Filters };
  revive?: { roles?: string[] };
  kill?: { task_id: TaskID; agent_id?: AgentID; kill_policy?: KillPolicy };
  shutdown?: { executor_id: ExecutorID; agent_id: AgentID };
  acknowledge?: { agent_id: AgentID; task_id: TaskID; uuid: Uint8Array };
  acknowledge_operation_status?: {
    agent_id?: AgentID;
    resource_provider_id?: ResourceProviderID;
    uuid: Uint8Array;
    operation_id: OperationID;
  };
  reconcile?: { tasks?: { task_id: TaskID; agent_id?: AgentID }[] };
  reconcile_operations?: {
    operations?: {
      operation_id: OperationID;
      agent_id?: AgentID;
      resource_provider_id?: ResourceProviderID;
    }[];
  };
  message?: { agent_id: AgentID; executor_id: ExecutorID; data: Uint8Array };
  request?: { requests?: { agent_id?: AgentID; resources?: Resource[] }[] };
  suppress?: { roles?: string[] };
  update_framework?: { framework_info: FrameworkInfo; suppressed_roles?: string[] };
}

/** `mesos.v1.scheduler.Event.Type`. */
export type SchedulerEventType =
  | "UNKNOWN"
  | "SUBSCRIBED"
  | "OFFERS"
  | "INVERSE_OFFERS"
  | "RESCIND"
  | "RESCIND_INVERSE_OFFER"
  | "UPDATE"
  | "UPDATE_OPERATION_STATUS"
  | "MESSAGE"
  | "FAILURE"
  | "ERROR"
  | "HEARTBEAT";

/** `mesos.v1.scheduler.Event`. */
export interface SchedulerEvent {
  /** Absent when the sender used a type this library does not know. */
  type?: SchedulerEventType;
  subscribed?: {
    framework_id: FrameworkID;
    heartbeat_interval_seconds?: number;
    master_info?: MasterInfo;
  };
  offers?: { offers?: Offer[] };
  inverse_offers?: { inverse_offers?: InverseOffer[] };
  rescind?: { offer_id: OfferID };
  rescind_inverse_offer?: { inverse_offer_id: OfferID };
  update?: { status: TaskStatus };
  update_operation_status?: { status: OperationStatus };
  message?: { agent_id: AgentID; executor_id: ExecutorID; data: Uint8Array };
  failure?: { agent_id?: AgentID; executor_id?: ExecutorID; status?: number };
  error?: { message: string };
}

/** `mesos.v1.executor.Call.Type`. */
export type ExecutorCallType = "UNKNOWN" | "SUBSCRIBE" | "UPDATE" | "MESSAGE" | "HEARTBEAT";

/** `mesos.v1.executor.Call`. */
export interface ExecutorCall {
  executor_id: ExecutorID;
  framework_id: FrameworkID;
  type?: ExecutorCallType;
  subscribe?: {
    unacknowledged_tasks?: TaskInfo[];
    unacknowledged_updates?: { status: TaskStatus }[];
  };
  update?: { status: TaskStatus };
  message?: { data: Uint8Array };
}

/** `mesos.v1.executor.Event.Type`. */
export type ExecutorEventType =
  | "UNKNOWN"
  | "SUBSCRIBED"
  | "LAUNCH"
  | "LAUNCH_GROUP"
  | "KILL"
  | "ACKNOWLEDGED"
  | "MESSAGE"
  | "ERROR"
  | "SHUTDOWN"
  | "HEARTBEAT";

/** `mesos.v1.executor.Event`. */
export interface ExecutorEvent {
  /** Absent when the sender used a type this library does not know. */
  type?: ExecutorEventType;
  subscribed?: {
    executor_info: ExecutorInfo;
    framework_info: FrameworkInfo;
    agent_info: AgentInfo;
    container_id?: ContainerID;
  };
  acknowledged?: { task_id: TaskID; uuid: Uint8Array };
  launch?: { task: TaskInfo };
  launch_group?: { task_group: TaskGroupInfo };
  kill?: { task_id: TaskID; kill_policy?: KillPolicy };
  message?: { data: Uint8Array };
  error?: { message: string };
}
