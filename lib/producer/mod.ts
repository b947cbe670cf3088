/**
 * @module
 * Idempotent producers (KIP-98, DESIGN §2): producer ids and, per partition, the state
 * that deduplicates retried batches and refuses sequence gaps and fenced epochs.
 *
 * Owns: {@linkcode ProducerStateManager} (pure: producer id → epoch and the metadata of
 * its last {@linkcode NUM_BATCHES_TO_RETAIN} batches; the Kafka 3.x rules), the snapshot
 * format (`producer-state.json` in the partition folder), {@linkcode PartitionProducerState}
 * (the shell that rebuilds the state on open and writes snapshots) and
 * {@linkcode ProducerIdManager} (ids in blocks reserved by `ProducerIds` metadata records).
 *
 * Must not: know about Kafka requests or transactions (transactional and control batches
 * are refused by the produce path before they get here).
 *
 * Append contract (the replication layer drives it):
 * 1. Open the log, then `PartitionProducerState.load()` before the first append.
 * 2. Per leader append: `check(headers)`. A returned duplicate is answered with its
 *    original offsets and nothing is written; a thrown `ProducerStateError` fails the
 *    partition with its code (nothing written).
 * 3. `log.append(...)`, then at once `onAppended(headers, baseOffset, ...)`, with no await
 *    between 2 and 3, so no other append interleaves.
 * 4. `close()` before the log closes (writes a snapshot); `abandon()` before deleting.
 *
 * Non-obvious:
 * - An unknown producer id is accepted at any sequence, as in Kafka 3.x: its state may
 *   have been removed by retention or expiry, so UNKNOWN_PRODUCER_ID is never answered.
 * - Duplicates are detected against the committed state only, and only for batches with
 *   the current epoch and the exact sequence range of one of the last 5 batches; any
 *   other repeated sequence is OUT_OF_ORDER_SEQUENCE_NUMBER.
 * - A snapshot records its offset and the CRC of the last batch below it, so one that no
 *   longer matches the log (a recovery that truncated a torn tail, later a follower
 *   truncation) is ignored and the log rescanned from its start.
 * - Expiry uses the broker's wall clock of the last append (not record timestamps, which
 *   clients set); an entry rebuilt from the log counts from the time it was loaded.
 * - Log truncation (followers, leader-epoch truncation) is not handled yet: whoever adds
 *   it must reload the state from the log (`load()` again) after truncating.
 */
export {
  planProducerIdBlock,
  PRODUCER_ID_BLOCK_SIZE,
  ProducerIdManager,
} from "./producer_id_manager.ts";
export {
  type BatchMetadata,
  type DuplicateBatch,
  incrementSequence,
  lastSequenceOf,
  NUM_BATCHES_TO_RETAIN,
  type ProducerBatch,
  type ProducerStateEntry,
  ProducerStateError,
  ProducerStateManager,
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
} from "./partition_producer_state.ts";
