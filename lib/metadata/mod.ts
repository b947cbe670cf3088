/**
 * @module
 * Cluster metadata: the records that change it, the {@linkcode MetadataImage} every node
 * answers from (with deterministic snapshots), the controller's decisions as pure
 * functions, topic config rules, and the store that persists records in the Raft log
 * ({@linkcode RaftMetadataStore}; a single voter by default, the `--peers` voters in a
 * cluster). I/O shells around the pure parts: {@linkcode ControllerService} (the
 * controller, active on the Raft leader), {@linkcode ControllerChannel} (how any node
 * reaches it: locally, or over the Kafka protocol), {@linkcode BrokerLifecycle} (this
 * node's registration and heartbeats). Must not touch partition data.
 *
 * Controller driver contract (what ControllerService does on the Raft leader):
 * 1. On becoming controller at `nowMs`: `tracker = BrokerHeartbeatTracker.start(nowMs)`
 *    (every registered broker gets a fresh session).
 * 2. Whenever the controller runs (every fencing tick, even with a check in flight, and
 *    before every liveness input or decision): `tracker = tracker.tick(nowMs)`. A gap
 *    over `controllerStallMs` (half a session) means its event loop or disk stopped it
 *    and it heard nobody meanwhile: every session restarts at the resume, as in 1.
 * 3. Plan every decision against the latest image, including records proposed but not yet
 *    committed (as KRaft does), or serialise proposals on the applied image (not on the
 *    listeners: `RaftMetadataStore` does this); propose a decision's records as one
 *    batch, in the order returned (leaders move before a broker is fenced, so every
 *    prefix keeps I5).
 * 4. BrokerRegistration: `planRegisterBroker(image, req, image.offset + 1,
 *    { sessionExpired: tracker.sessionExpired(id, nowMs) })`, then
 *    `tracker = tracker.registered(id, nowMs)`; answer with the epoch passed.
 * 5. BrokerHeartbeat, at its arrival `nowMs`, before any queueing:
 *    `{ tracker, reply, records } = tracker.heartbeat(image, hb, nowMs)` on the latest
 *    applied image (`RaftMetadataStore.controllerImage()`: complete once the term's
 *    barrier applied); with no records and no error, keep that tracker and answer
 *    `reply` at once. Otherwise `tracker = tracker.heartbeatReceived(image, hb, nowMs)` (contact
 *    now; the broker is not silent while held), decide again in the proposal queue,
 *    answer once the records are committed, and when that settles either way,
 *    `tracker = tracker.heartbeatAnswered(id, nowMs)`.
 * 6. A broker's connection closes: `tracker = tracker.connectionLost(id, nowMs)`.
 * 7. Every tick (e.g. 50 ms): propose `decideFencing(image, tracker, nowMs)`, waiting for
 *    the entry to apply, not for this node's listeners (a slow disk must not delay the
 *    next check); when `auto.leader.rebalance.enable`, now and then
 *    `planPreferredLeaders(image)`, likewise.
 * 8. AlterPartition from a leader: `planAlterPartition(image, req)`.
 *
 * Non-obvious:
 * - `image.offset` counts records applied; a broker reports its own image's offset as
 *   `currentMetadataOffset` and is caught up once it reaches its registration's
 *   `registrationOffset` (the offset right after its RegisterBroker record).
 * - A PartitionChange that carries `leader` bumps the leader epoch even if the leader is
 *   the same (Kafka); every PartitionChange bumps the partition epoch.
 * - The ISR is never emptied: the last member stays when it is fenced and the partition
 *   has no leader (-1) until it returns (Kafka without ELR).
 */
export type {
  BrokerEndpoint,
  BrokerRegistrationChangeRecord,
  ClusterRecord,
  ConfigRecord,
  LeaderRecoveryState,
  MetadataRecord,
  PartitionChangeRecord,
  PartitionRecord,
  ProducerIdsRecord,
  RegisterBrokerRecord,
  RemoveTopicRecord,
  TopicRecord,
  UnregisterBrokerRecord,
} from "./records.ts";
export {
  type BrokerRegistration,
  type CanonicalImage,
  canonicalImage,
  imageEquals,
  MetadataImage,
  type MetadataImageState,
  type PartitionState,
  type TopicIdPartition,
  type TopicImage,
} from "./metadata_image.ts";
export {
  type AlterPartitionRequest,
  type AlterPartitionResult,
  type BrokerHeartbeat,
  type BrokerHeartbeatReply,
  BrokerHeartbeatTracker,
  type BrokerLivenessOptions,
  type BrokerSession,
  decideFencing,
  ElectionType,
  type HeartbeatDecision,
  type LeaderChangeReason,
  type LeaderElectionOptions,
  planAlterPartition,
  planElectLeader,
  planLeaderChanges,
  planPreferredLeaders,
  planRegisterBroker,
  planUnregisterBroker,
  type RegisterBrokerRequest,
} from "./cluster_controller.ts";
export {
  AlterConfigOp,
  assignBalanced,
  type ConfigOperation,
  type ConfigResource,
  type ControllerContext,
  type ControllerDefaults,
  type CreateTopicSpec,
  planAlterConfigs,
  planCreatePartitions,
  planCreateTopic,
  planDeleteTopic,
  planIncrementalAlterConfigs,
  type TopicCreationPlan,
} from "./controller.ts";
export {
  BROKER_LOG_CONFIGS,
  type BrokerConfigLayers,
  type ConfigDef,
  type ConfigType,
  NO_BROKER_CONFIGS,
  resolveTopicConfig,
  TOPIC_CONFIG_DEFS,
  topicCollisionKey,
  topicConfigNumber,
  type TopicConfigSource,
  topicConfigValue,
  validateTopicConfigs,
  validateTopicName,
} from "./topic_config.ts";
export { readRecordJournal } from "./record_journal.ts";
export { randomUuid } from "./uuid.ts";
export {
  decodeMetadataEntry,
  encodeMetadataEntry,
  type ImageListener,
  RaftMetadataStore,
  type RaftMetadataStoreOptions,
} from "./raft_metadata_store.ts";
export {
  asControllerError,
  type BrokerRegistrationInput,
  ControllerService,
  type ControllerServiceOptions,
} from "./controller_service.ts";
export {
  BecameControllerError,
  ControllerChannel,
  type ControllerChannelOptions,
  type IsrChangeResult,
} from "./controller_channel.ts";
export { BrokerLifecycle, type BrokerLifecycleOptions } from "./broker_lifecycle.ts";
