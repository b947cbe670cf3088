/**
 * @module
 * Idempotent producers (KIP-98, DESIGN §2): producer ids and, per partition, the state
 * that deduplicates retried batches and refuses sequence gaps and fenced epochs.
 *
 * Owns: {@linkcode ProducerStateManager} (pure: producer id → epoch and the metadata of
 * its last {@linkcode NUM_BATCHES_TO_RETAIN} batches; the Kafka 3.x rules), the snapshot
 * format (`producer-state-<offset, 20 digits>.json` in the partition folder, the 3 newest
 * kept; the single `producer-state.json` of older data dirs is still read),
 * {@linkcode PartitionProducerState} (the shell that rebuilds the state on open and after a
 * truncation, and writes snapshots) and {@linkcode ProducerIdManager} (ids in blocks
 * reserved by `ProducerIds` metadata records).
 *
 * Transactions (KIP-98): the state also tracks each producer's open transaction in this
 * partition, the markers that end them (control batches, read back from their record), the
 * aborted transactions (kept in memory and in the snapshots, trimmed by the log start) and
 * the first unstable offset that bounds the last stable offset.
 *
 * Must not: know about Kafka requests, or decide transactions (the coordinator in lib/txn
 * does; markers arrive as control batches).
 *
 * Append contract (the replication layer drives it):
 * 1. Open the log, then `PartitionProducerState.load()` before the first append.
 * 2. Per leader append: `check(headers, origin)` (a coordinator's own transactional
 *    records carry no sequence: origin "coordinator"); a marker: `state.checkMarker(m)`.
 *    A returned duplicate is answered with its
 *    original offsets and nothing is written; a thrown `ProducerStateError` fails the
 *    partition with its code (nothing written).
 * 3. `log.append(...)`, then at once `onAppended(headers, batches, baseOffset, ...)` (the
 *    bytes are read for markers), with no await
 *    between 2 and 3, so no other append interleaves.
 * 4. After the log was truncated (`truncateTo`, `truncateFullyAndStartAt`):
 *    `producerState = await producerState.reloadAfterTruncation()`, with no append or other
 *    truncation until it resolves.
 * 5. `close()` before the log closes (writes a snapshot); `abandon()` before deleting.
 *
 * Non-obvious:
 * - An unknown producer id is accepted at any sequence, as in Kafka 3.x: its state may
 *   have been removed by retention or expiry, so UNKNOWN_PRODUCER_ID is never answered.
 * - Duplicates are detected against the committed state only, and only for batches with
 *   the current epoch and the exact sequence range of one of the last 5 batches; any
 *   other repeated sequence is OUT_OF_ORDER_SEQUENCE_NUMBER.
 * - A snapshot records its offset, the CRC of the last batch below it and the log's
 *   incarnation, so one that no longer matches the log (a recovery that truncated a torn
 *   tail, a follower truncation, a log emptied and restarted, even if a crash came before
 *   the reload) is ignored and deleted; the newest one left at or below the log end is used
 *   (Kafka's truncateAndReload), else the log is rescanned from its start.
 * - Rebuilds replay the log in chunks (`replayChunkBytes` / `replayChunkBatches`) and give
 *   the event loop back between them through the injected `timers`.
 * - A snapshot is only written of a state that covers the log's current end: one whose log
 *   was truncated under it (before its reload) writes nothing.
 * - Expiry uses the broker's wall clock of the last append (not record timestamps, which
 *   clients set); an entry rebuilt from the log counts from the time it was loaded.
 */
export {
  planProducerIdBlock,
  PRODUCER_ID_BLOCK_SIZE,
  ProducerIdManager,
} from "./producer_id_manager.ts";
export {
  type AppendOrigin,
  type BatchMetadata,
  type DuplicateBatch,
  incrementSequence,
  lastSequenceOf,
  NUM_BATCHES_TO_RETAIN,
  type ProducerBatch,
  type ProducerStateEntry,
  ProducerStateError,
  ProducerStateManager,
  type TxnMarker,
  type TxnRange,
} from "./producer_state.ts";
export {
  decodeSnapshot,
  encodeSnapshot,
  type ProducerStateSnapshot,
  SNAPSHOT_VERSION,
} from "./producer_state_snapshot.ts";
export {
  PartitionProducerState,
  type PartitionProducerStateOptions,
  PRODUCER_STATE_FILE,
  type ProducerStateLoadInfo,
  producerStateSnapshotFile,
} from "./partition_producer_state.ts";
