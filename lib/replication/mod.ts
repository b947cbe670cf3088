/**
 * @module
 * Partitions hosted on this node and their replication (DESIGN §8): logs, leader epochs,
 * roles (leader / follower / none, as the metadata image says), high watermarks and the
 * waiters woken when they move, the leader append path, replica fetchers (one per leader
 * broker) that truncate by leader epoch and then fetch, and ISR changes proposed to the
 * controller. Must not decide elections (the controller does).
 *
 * ## The replication core
 *
 * Every decision about one partition replica is made by {@linkcode PartitionCore}, a pure
 * state machine (no I/O, no clock: the shell passes the time and the log's offsets —
 * log start, log end, durable end — with each event). {@linkcode Partition} is its shell:
 * it owns the log, the epoch cache, the acks waiters and the producer state, feeds the
 * core and carries out what it returns.
 *
 * Events in:
 * - `applyImage(state, ctx)`: the metadata image's state of the partition (replicas, ISR,
 *   leader, leader and partition epochs, leader recovery state) and, in `ctx`, which
 *   replicas are eligible for the ISR and their broker epochs; with `holdLeadership`
 *   it leads nothing (a node not yet caught up with the metadata log, or one that has
 *   gone longer than its session without an answered heartbeat), and an unresolved
 *   proposal of the same leader epoch survives that pause;
 * - `followerFetched(id, offset)`: a follower's fetch (its offset is its durable end);
 * - `logAdvanced()`: the local log became durable further;
 * - `answered(proposal, answer)`: the controller's AlterPartition answer, or "unknown"
 *   (timeout, lost connection);
 * - `tick()`: time passed (lagging followers, re-sending a proposal after a back-off);
 * - `stepDown(reason)`: this replica must stop leading (its log failed, or the controller
 *   knows a newer epoch);
 * - `setFollowerHighWatermark()`, `clampHighWatermark()`: a follower's HW from the
 *   leader, kept within its own log after a truncation.
 *
 * Effects out ({@linkcode CoreOutput}): `hw` (the HW moved up: release the acks waiters
 * below it), `role` (start or stop fetching, from which leader), `newLeaderEpoch` (record
 * it in the epoch cache at the log end), `failAcks` (fail the waiting acks with this
 * error), `propose` (send this AlterPartition request), `note` (a log line).
 *
 * Rules (Kafka's Partition and AlterPartitionManager, KRaft mode): the HW is the smallest
 * durable end over the maximal ISR (committed ISR plus a pending addition) and never goes
 * back; one ISR change at a time, kept pending until the image or the answer resolves it,
 * and only "not applied" errors drop it; FENCED_LEADER_EPOCH stops leading; an uncleanly
 * elected leader reports RECOVERED first (KIP-704); a re-registered follower starts with
 * unknown fetch state (KIP-903). The file's header has the full list.
 *
 * ## Around the core
 *
 * - Leader: ISR shrink/expand decisions ({@linkcode isrDecisions}) go to the controller
 *   through the replica manager's `alterIsr`; {@linkcode highWatermark} computes the HW.
 * - Follower: {@linkcode ReplicaFetcherManager}; truncation per
 *   {@linkcode followerTruncationPoint} (KIP-101/279) from the leader's
 *   OffsetForLeaderEpoch answer; appends byte for byte; fetches at its durable end only;
 *   HW from the leader's responses. A truncation at or past the log end still trims the
 *   epoch cache from the end (Kafka's truncateTo → truncateFromEnd).
 * - Leader epochs: each partition has a {@linkcode LeaderEpochFileCache} (epoch → start
 *   offset, in `leader-epoch-checkpoint`, Kafka's format), which answers
 *   OffsetForLeaderEpoch. A leader records (epoch, log end) when it becomes leader; a
 *   follower learns epochs from the batches it appends; retention moves the start (never
 *   past the HW); truncation trims the end.
 * - A failed log write or fsync stops the node (Kafka halts on a failed log dir); the
 *   node's `main` exits 1.
 */
export {
  checkEpochEntries,
  endOffsetForEpoch,
  type EpochEndOffset,
  type EpochEntry,
  LeaderEpochCache,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
} from "./leader_epoch_cache.ts";
export {
  encodeLeaderEpochCheckpoint,
  LEADER_EPOCH_CHECKPOINT_FILE,
  parseLeaderEpochCheckpoint,
  readLeaderEpochCheckpoint,
  writeLeaderEpochCheckpoint,
} from "./leader_epoch_checkpoint.ts";
export {
  LeaderEpochFileCache,
  type LeaderEpochFileCacheOptions,
} from "./leader_epoch_file_cache.ts";
export { highWatermark, type HighWatermarkInput } from "./high_watermark.ts";
export {
  type FollowerState,
  isCaughtUp,
  isFollowerInSync,
  type IsrDecisions,
  isrDecisions,
  type IsrInput,
  newFollowerState,
  updateFollowerFetchState,
} from "./isr.ts";
export {
  followerTruncationPoint,
  type TruncationInput,
  type TruncationState,
} from "./truncation.ts";
export { Partition, partitionName } from "./partition.ts";
// The core in full: PartitionCore, its events' inputs and its CoreOutput.
export * from "./partition_core.ts";
export { ReplicaFetcherManager, type ReplicaFetcherOptions } from "./replica_fetcher.ts";
export {
  type IsrChange,
  type LeaderAppendResult,
  logConfigFor,
  ReplicaManager,
  type ReplicaManagerOptions,
} from "./replica_manager.ts";
