/**
 * @module
 * Log compaction (DESIGN §2, `log/cleaner/`): the node's {@linkcode LogCleaner}, which picks
 * the dirtiest compacted log and cleans it with {@linkcode cleanLog} (keeping the latest
 * record of each key, tombstones until their delete horizon, offsets unchanged), swapping
 * segments crash-safely through `PartitionLog.replaceSegments`; the bounded
 * {@linkcode OffsetMap}. It knows nothing of groups or Kafka requests.
 */
export {
  type AbortedTxn,
  type CleanableState,
  cleanableState,
  cleanLog,
  type CleanOptions,
  type CleanResult,
} from "./clean_log.ts";
export {
  type CleanerStats,
  type CleanerTarget,
  LogCleaner,
  type LogCleanerOptions,
} from "./log_cleaner.ts";
export { OffsetMap } from "./offset_map.ts";
