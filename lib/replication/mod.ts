/**
 * @module
 * Partitions hosted on this node: their logs, leader epochs, high watermarks and the
 * waiters woken when the HW moves, plus the leader append path. On a single node the
 * ISR is the node itself; follower fetching and ISR changes arrive with the cluster work.
 * Must not decide elections (the controller does).
 */
export { Partition, partitionName } from "./partition.ts";
export {
  type LeaderAppendResult,
  logConfigFor,
  ReplicaManager,
  type ReplicaManagerOptions,
} from "./replica_manager.ts";
