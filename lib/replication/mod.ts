/**
 * @module
 * Partitions hosted on this node and their replication (DESIGN §8): logs, leader epochs,
 * roles (leader / follower / none, as the metadata image says), high watermarks and the
 * waiters woken when they move, the leader append path, replica fetchers (one per leader
 * broker) that truncate by leader epoch and then fetch, and ISR changes proposed to the
 * controller. Must not decide elections (the controller does).
 *
 * - Leader: HW = smallest durable end over the committed ISR ({@linkcode highWatermark});
 *   a follower's fetch offset is its durable end. ISR shrink/expand decisions
 *   ({@linkcode isrDecisions}) go to the controller through `alterIsr`; the leader acts
 *   only on the ISR the metadata log committed.
 * - Follower: {@linkcode ReplicaFetcherManager}; truncation per
 *   {@linkcode followerTruncationPoint} (KIP-101/279) from the leader's
 *   OffsetForLeaderEpoch answer; appends byte for byte; HW from the leader's responses.
 * - Leader epochs: each partition has a {@linkcode LeaderEpochFileCache} (epoch → start
 *   offset, in `leader-epoch-checkpoint`, Kafka's format), which answers
 *   OffsetForLeaderEpoch. A leader records (epoch, log end) when it becomes leader; a
 *   follower learns epochs from the batches it appends; retention moves the start;
 *   truncation trims the end.
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
export { Partition, partitionName, type PartitionRole } from "./partition.ts";
export { ReplicaFetcherManager, type ReplicaFetcherOptions } from "./replica_fetcher.ts";
export {
  type IsrChange,
  type LeaderAppendResult,
  logConfigFor,
  ReplicaManager,
  type ReplicaManagerOptions,
} from "./replica_manager.ts";
