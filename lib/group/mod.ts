/**
 * @module
 * The classic consumer-group coordinator (DESIGN §9) as a pure state machine: JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups, ListGroups,
 * DeleteGroups and OffsetDelete with Kafka's GroupCoordinator (3.x) semantics and error codes,
 * plus the records it persists in `__consumer_offsets` and their bytes.
 *
 * Owns: group membership and generations, rebalance phases, protocol selection, static
 * membership (KIP-345), MEMBER_ID_REQUIRED (KIP-394), session/rebalance/sync timers, committed
 * offsets and their expiry. The core ({@linkcode GroupCoordinator} and the files it uses) must
 * not do I/O, read clocks or call `Math.random`, know which topics exist, or decide coordinator
 * ownership (COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR for requests are the shell's).
 * KIP-848 is not implemented.
 *
 * {@linkcode GroupService} (`group_service.ts`) is that shell: it keeps the contract below
 * against the node's `__consumer_offsets` partitions.
 *
 * Driver contract (the shell, one coordinator per node, calls serialised):
 * 1. Decode a request and call the matching method with a fresh `requestId`, the API version
 *    and the time. Reads (`offsetFetch`, `describeGroups`, `listGroups`) answer at once.
 * 2. Every other call returns a {@linkcode CoordinatorOutput}: append its `records` to the
 *    group's `__consumer_offsets` partition (acks=all), then call `onAppendCompleted(appendId)`
 *    once they are below the high watermark, THEN send its `responses`, which may answer
 *    earlier requests (JoinGroup/SyncGroup wait for the rebalance). If the append fails, call
 *    `onAppendFailed(appendId)` and answer those responses with an error instead; group
 *    metadata in memory is then ahead of the log: rebuild the partition's groups (`unload()`
 *    then `load()`) before trusting them again.
 * 3. Arm one timer at `nextDeadlineMs()` (re-read after every call) and call `tick(now)` when
 *    it fires; late is fine, early does nothing.
 * 4. On becoming leader of partition p, wait until its high watermark reaches its log end
 *    (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile), read its records in log order, decode
 *    them with {@linkcode decodeGroupRecord} and call `load(records, now)`. On losing it, call
 *    `unload(p, partitionCount)` and send the responses.
 * 5. Encode responses with the version of their request; they are already shaped for it.
 *
 * Non-obvious:
 * 1. Every mutating call first fires timers due at its `nowMs` and fires again at its end (a
 *    zero initial delay completes the join inside the JoinGroup call), so the outcome does not
 *    depend on how punctually the shell ticks.
 * 2. Group state changes take effect when the output is returned, before the records are
 *    durable (Kafka applies group state after its append callback); responses wait, which is
 *    what the shell guarantees. Committed offsets do not: as Kafka's pendingOffsetCommits they
 *    stay invisible to OffsetFetch (UNSTABLE_OFFSET_COMMIT with requireStable), to expiry and
 *    to `group()` until `onAppendCompleted`, and `onAppendFailed` drops them.
 * 3. No request is left unanswered: a JoinGroup or SyncGroup superseded by another from the
 *    same member gets REBALANCE_IN_PROGRESS, a removed member's pending requests get
 *    UNKNOWN_MEMBER_ID, a fenced static member's get FENCED_INSTANCE_ID (Kafka drops some).
 * 4. Members are kept in join order (Kafka: hash order). A departing leader is replaced by the
 *    earliest remaining member; protocol vote ties go to the first protocol voted for.
 * 5. OffsetCommit, OffsetFetch, DescribeGroups and DeleteGroups accept the empty group id (as
 *    Kafka: `groupId != null`); JoinGroup, SyncGroup, Heartbeat, LeaveGroup and OffsetDelete
 *    answer INVALID_GROUP_ID.
 * 6. A group record holds only the selected protocol's metadata; a loaded member therefore has
 *    one protocol, and rejoining with more (or different) protocols triggers a rebalance.
 * 7. Offset expiry runs every `offsetsRetentionCheckIntervalMs`, as Kafka's cleanup task; a
 *    timer fired late uses the late `nowMs` (as Kafka's timers use the clock when they run).
 * 8. Byte arrays inside responses (member metadata, assignments) are the core's own: the
 *    shell must treat them as read-only. Records and snapshots get copies.
 * 9. A group that a failed JoinGroup or OffsetCommit created and that holds nothing is
 *    forgotten at once (Kafka keeps it Empty until its next cleanup).
 * 10. Reads of a group (`group()`, `groupIds()`) are for tests and admin tools; the wire
 *    answers come from the request methods.
 */
export { DEFAULT_GROUP_CONFIG, type GroupCoordinatorConfig } from "./config.ts";
export {
  decodeGroupRecord,
  encodeGroupRecord,
  type GroupRecord,
  GroupRecordDecodeError,
  type GroupRecordMember,
} from "./group_record.ts";
export { groupPartition, javaStringHashCode } from "./group_partition.ts";
export {
  type AppendId,
  type CoordinatorOutput,
  GroupCoordinator,
  type GroupSnapshot,
  type JoinClient,
  NEW_MEMBER_JOIN_TIMEOUT_MS,
  type RequestId,
} from "./group_coordinator.ts";
export type { GroupState } from "./_group_metadata.ts";
export { GroupService } from "./group_service.ts";
export { OFFSETS_TOPIC, OFFSETS_TOPIC_CONFIGS, OFFSETS_TOPIC_PARTITIONS } from "./offsets_topic.ts";
