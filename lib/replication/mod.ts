/**
 * @module
 * Partitions hosted on this node: their logs, leader epochs, high watermarks and the
 * waiters woken when the HW moves, plus the leader append path. On a single node the
 * ISR is the node itself; follower fetching and ISR changes arrive with the cluster work.
 * Must not decide elections (the controller does).
 *
 * Leader epochs: each partition has a {@linkcode LeaderEpochFileCache} (epoch → start
 * offset, in `leader-epoch-checkpoint`, Kafka's format), which answers OffsetForLeaderEpoch.
 * The leader records (epoch, log end) when it becomes leader and before an epoch's first
 * append; retention moves its start; follower truncation trims its end.
 *
 * Pure replication rules (no I/O, not wired yet): {@linkcode highWatermark},
 * {@linkcode isrDecisions} with the follower bookkeeping it reads
 * ({@linkcode updateFollowerFetchState}, {@linkcode newFollowerState}), and
 * {@linkcode followerTruncationPoint}.
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
export { LeaderEpochFileCache } from "./leader_epoch_file_cache.ts";
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
export {
  type LeaderAppendResult,
  logConfigFor,
  ReplicaManager,
  type ReplicaManagerOptions,
} from "./replica_manager.ts";
