/**
 * The records the transaction coordinator persists in `__transaction_state`, in Kafka's own
 * layouts (`coordinator/TransactionLogKey.json`, `TransactionLogValue.json`), so that a
 * Kafka tool reading the topic decodes them: the key is an int16 version (0) and the
 * transactional id as an int16-length string; the value an int16 version (0, as Kafka
 * writes it without transaction version 2) and a TransactionLogValue. A tombstone (null
 * value) removes an expired transactional id.
 */
import { ByteReader, ByteWriter, decodeData, encodeData, ErrorCode } from "../protocol/mod.ts";
import { TidelogError } from "../util/errors.ts";

/** Kafka's TransactionState, with the ids the records carry. */
export const TXN_STATES = [
  "Empty",
  "Ongoing",
  "PrepareCommit",
  "PrepareAbort",
  "CompleteCommit",
  "CompleteAbort",
  "Dead",
  "PrepareEpochFence",
] as const;

/** A transaction's state (Kafka's names, as DescribeTransactions and ListTransactions show). */
export type TxnState = (typeof TXN_STATES)[number];

/** A partition in a transaction. */
export interface TxnPartition {
  topic: string;
  partition: number;
}

/** What the coordinator knows of one transactional id (Kafka's TransactionMetadata). */
export interface TxnMetadata {
  transactionalId: string;
  producerId: bigint;
  /** The producer id before the last rotation (epoch exhaustion); -1 if none. */
  prevProducerId: bigint;
  producerEpoch: number;
  /** The epoch before the last bump; -1 if none (a retried InitProducerId is recognised by it). */
  lastProducerEpoch: number;
  txnTimeoutMs: number;
  state: TxnState;
  /** Sorted by topic, then partition. */
  partitions: TxnPartition[];
  /** When the current transaction started; -1 when none is open. */
  txnStartTimestampMs: number;
  txnLastUpdateTimestampMs: number;
}

/** A record of `__transaction_state`: a transactional id's metadata, or its removal. */
export type TxnRecord =
  | { kind: "txn"; metadata: TxnMetadata }
  | { kind: "txn-tombstone"; transactionalId: string };

const KEY_VERSION = 0;
const VALUE_VERSION = 0;

/** The record's key and value bytes. */
export function encodeTxnRecord(r: TxnRecord): { key: Uint8Array; value: Uint8Array | null } {
  const transactionalId = r.kind === "txn" ? r.metadata.transactionalId : r.transactionalId;
  const k = new ByteWriter(32);
  k.int16(KEY_VERSION);
  k.string(transactionalId);
  const key = k.finish();
  if (r.kind === "txn-tombstone") return { key, value: null };
  const m = r.metadata;
  const byTopic = new Map<string, number[]>();
  for (const p of m.partitions) {
    byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
  }
  const body = encodeData("TransactionLogValue", VALUE_VERSION, {
    producerId: m.producerId,
    producerEpoch: m.producerEpoch,
    transactionTimeoutMs: m.txnTimeoutMs,
    transactionStatus: TXN_STATES.indexOf(m.state),
    // Kafka writes null for the partitions of an Empty or completed transaction.
    transactionPartitions: m.partitions.length === 0
      ? null
      : [...byTopic].map(([topic, partitionIds]) => ({ topic, partitionIds })),
    transactionLastUpdateTimestampMs: BigInt(m.txnLastUpdateTimestampMs),
    transactionStartTimestampMs: BigInt(m.txnStartTimestampMs),
  });
  const value = new Uint8Array(2 + body.length);
  new DataView(value.buffer).setInt16(0, VALUE_VERSION);
  value.set(body, 2);
  return { key, value };
}

/** The bytes of a `__transaction_state` record could not be decoded. */
export class TxnRecordDecodeError extends TidelogError {
  constructor(message: string) {
    super(ErrorCode.CORRUPT_MESSAGE, message);
  }
}

/**
 * Decodes a record of `__transaction_state` (value versions 0 and 1).
 *
 * @throws {TxnRecordDecodeError} for bytes that are not such a record
 */
export function decodeTxnRecord(key: Uint8Array, value: Uint8Array | null): TxnRecord {
  try {
    const k = new ByteReader(key);
    const keyVersion = k.int16();
    if (keyVersion !== KEY_VERSION) {
      throw new TxnRecordDecodeError(`Unknown transaction log key version ${keyVersion}`);
    }
    const transactionalId = k.string(false);
    if (transactionalId === null) throw new TxnRecordDecodeError("Null transactional id");
    if (value === null) return { kind: "txn-tombstone", transactionalId };
    const valueVersion = new ByteReader(value).int16();
    if (valueVersion < 0 || valueVersion > 1) {
      throw new TxnRecordDecodeError(`Unknown transaction log value version ${valueVersion}`);
    }
    const v = decodeData("TransactionLogValue", valueVersion, value.subarray(2));
    const state = TXN_STATES[v.transactionStatus];
    if (state === undefined) {
      throw new TxnRecordDecodeError(`Unknown transaction state ${v.transactionStatus}`);
    }
    const partitions = (v.transactionPartitions ?? []).flatMap((t) =>
      t.partitionIds.map((partition) => ({ topic: t.topic, partition }))
    );
    return {
      kind: "txn",
      metadata: {
        transactionalId,
        producerId: v.producerId,
        prevProducerId: valueVersion >= 1 ? v.previousProducerId : -1n,
        producerEpoch: v.producerEpoch,
        lastProducerEpoch: -1,
        txnTimeoutMs: v.transactionTimeoutMs,
        state,
        partitions: sortPartitions(partitions),
        txnStartTimestampMs: Number(v.transactionStartTimestampMs),
        txnLastUpdateTimestampMs: Number(v.transactionLastUpdateTimestampMs),
      },
    };
  } catch (err) {
    if (err instanceof TxnRecordDecodeError) throw err;
    throw new TxnRecordDecodeError(`Cannot decode transaction log record: ${err}`);
  }
}

/** Partitions sorted by topic, then partition, without duplicates. */
export function sortPartitions(partitions: readonly TxnPartition[]): TxnPartition[] {
  const seen = new Set<string>();
  const out: TxnPartition[] = [];
  for (const p of partitions) {
    const k = `${p.topic}\u0000${p.partition}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ topic: p.topic, partition: p.partition });
  }
  return out.sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
  );
}
