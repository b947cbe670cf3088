/**
 * @module
 * Transactions (KIP-98, KIP-447; Kafka's transaction version 1, without KIP-890's implicit
 * partition adds): the transaction coordinator.
 *
 * Owns: {@linkcode TxnCoordinator} (pure: transactional id → producer id and epoch, the
 * transaction state machine Empty → Ongoing → PrepareCommit/PrepareAbort →
 * CompleteCommit/CompleteAbort, fencing of older producer incarnations, timeouts and id
 * expiry), the records of `__transaction_state` in Kafka's TransactionLogKey/Value layouts
 * ({@linkcode encodeTxnRecord}), {@linkcode TxnService} (the shell: persistence into the
 * partitions this node leads, loading on leadership, timers, marker retries) and
 * {@linkcode MarkerChannel} (markers to partition leaders, local or over WriteTxnMarkers).
 *
 * Must not: write partition data itself (markers are appended by the partition leaders'
 * WriteTxnMarkers path, through replication), or know about groups (offsets sent to a
 * transaction are the group coordinator's: TxnOffsetCommit, completed by the marker).
 *
 * Non-obvious:
 * - The coordinator of an id is the leader of partition abs(hash(id)) % 50 of
 *   `__transaction_state`; its coordinator epoch is that partition's leader epoch.
 * - EndTxn is answered once PrepareCommit/PrepareAbort is durable; the markers follow, and
 *   the producer's next AddPartitionsToTxn gets CONCURRENT_TRANSACTIONS until they are all
 *   written and CompleteCommit/CompleteAbort is durable (Kafka's behaviour).
 * - A new coordinator (failover) writes the markers of every transaction it loads in a
 *   Prepare state again; partition leaders accept a marker twice (the second ends
 *   nothing), and refuse those of an older coordinator epoch.
 * - InitProducerId while a transaction is open aborts it with the epoch bumped (fencing
 *   the old producer) and answers CONCURRENT_TRANSACTIONS; the retry gets the next epoch.
 */
export {
  type AfterWrite,
  DEFAULT_TXN_CONFIG,
  type MarkerJob,
  type Transition,
  TxnCoordinator,
  type TxnCoordinatorConfig,
  type TxnProducer,
  type TxnStep,
  type TxnView,
} from "./txn_coordinator.ts";
export {
  decodeTxnRecord,
  encodeTxnRecord,
  sortPartitions,
  TXN_STATES,
  type TxnMetadata,
  type TxnPartition,
  type TxnRecord,
  TxnRecordDecodeError,
  type TxnState,
} from "./txn_record.ts";
export {
  type MarkerResults,
  type MarkerWriter,
  partitionKey,
  type TxnReply,
  TxnService,
} from "./txn_service.ts";
export { MarkerChannel, type MarkerChannelDeps } from "./marker_channel.ts";
export {
  TXN_TOPIC,
  TXN_TOPIC_CONFIGS,
  TXN_TOPIC_MIN_ISR,
  TXN_TOPIC_PARTITIONS,
} from "./transaction_topic.ts";
