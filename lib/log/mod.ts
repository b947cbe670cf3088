/**
 * @module
 * The segmented, durable log of one partition (DESIGN §5).
 *
 * Owns: a directory `<topic>-<partition>/` of segments `<base offset, 20 digits>.log`
 * holding whole RecordBatch v2 batches byte for byte, their sparse `.index` (relative
 * offset u32, position u32) and `.timeindex` (timestamp i64, relative offset u32), and the
 * checkpoints `log-start-offset`, `recovery-point` and `log-incarnation` (how many times
 * the log was emptied and restarted, so derived state can tell histories apart);
 * appending (offsets assigned here), reading by offset, ListOffsets lookups by timestamp
 * and max timestamp, crash recovery, truncation, retention, and fsync by group commit.
 *
 * Exports: {@linkcode PartitionLog}, {@linkcode LogConfig}, {@linkcode FlushPolicy},
 * {@linkcode DEFAULT_LOG_CONFIG}, {@linkcode validateLogConfig}, the result and option
 * types, and the errors {@linkcode KafkaStorageError}, {@linkcode LogClosedError} and
 * {@linkcode LogTruncatedError}.
 *
 * Must not: know about Kafka requests, topics' metadata, replication or the high
 * watermark (callers pass `maxOffset`); validate batch CRCs on append (the Produce path
 * did, with `validateBatch`); decompress anything; share file handles between logs.
 *
 * Durability contract (I2, I6):
 * 1. `append()` writes synchronously to the page cache, so appends take effect in call
 *    order and are immediately readable (`read()` up to `logEndOffset`).
 * 2. With flush "always", a round of `syncData` starts after an append when none is in
 *    flight; it covers every append made before it started, and `durableEndOffset`
 *    advances to the `logEndOffset` captured at its start. Appends during a round are
 *    covered by the next one (group commit). A rolled segment is fsynced (with its index
 *    files) before `durableEndOffset` passes it. "interval" runs rounds on a timer;
 *    "never" sets `durableEndOffset = logEndOffset` at once.
 * 3. An fsync failure is fatal for the log: it is logged at error level, every waiter
 *    rejects with `KafkaStorageError`, and later appends throw it.
 * 4. Recovery scans (CRC-checked) every segment from the recovery point on, and any whose
 *    index files are missing or inconsistent, and truncates at the first bad batch.
 *
 * Non-obvious:
 * - Reads stay within one segment; a consumer at a segment's end gets the next segment
 *   on its next fetch. `minOneMessage` defaults to false: pass true for the first
 *   partition of a Fetch (KIP-74).
 * - Everything recovered by `open()` is fsynced before it returns, so
 *   `durableEndOffset === logEndOffset` right after open.
 * - `waitDurable()` for an offset that `truncateTo()` removes rejects with
 *   `LogTruncatedError`, even if a later write reuses the offset.
 * - Truncation and segment deletion hold off new fsync rounds while they run (appends
 *   continue); they run one at a time, in call order.
 * - `truncateTo(o)` removes the whole batch containing `o`, so logEndOffset may end below `o`.
 * - `applyRetention(now, { maxOffset: hw })` deletes by time or size only segments whose
 *   successor starts at or below the high watermark (Kafka's upper bound); without
 *   `maxOffset` it deletes nothing but what lies below the log start.
 * - The time index stores (max timestamp so far, first batch with it), as Kafka does; a
 *   lookup takes the last entry strictly below the target, so the scan never skips a match.
 */
export {
  type AppendOptions,
  type AppendResult,
  LogSlice,
  type LogStats,
  type OpenLogOptions,
  PartitionLog,
  type ReadOptions,
  type ReadResult,
  type RetentionBounds,
} from "./partition_log.ts";
export {
  DEFAULT_LOG_CONFIG,
  type FlushPolicy,
  type LogConfig,
  MAX_SEGMENT_BYTES,
  validateLogConfig,
} from "./config.ts";
export { KafkaStorageError, LogClosedError, LogTruncatedError } from "./errors.ts";
export { forEachStoredBatch } from "./stored_batches.ts";
