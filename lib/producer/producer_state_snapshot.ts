/**
 * The producer-state snapshot format (`producer-state-<offset, 20 digits>.json` in a
 * partition's folder; `producer-state.json` in older data dirs): the state after every
 * batch below `offset`, the identity of the last batch below `offset`, so a snapshot that
 * no longer matches the log (a torn tail recovered shorter, a truncation) is recognised and
 * ignored, and the incarnation of the log it was taken from (absent in older files: 0), so
 * one taken before the log was emptied and restarted is never trusted. Pure: encoding and
 * decoding only.
 */
import type { BatchMetadata, ProducerStateEntry, TxnRange } from "./producer_state.ts";

/** Format version written in every snapshot. */
export const SNAPSHOT_VERSION = 1;

/** Identifies a batch in the log: its base offset and CRC32C. */
export interface BatchIdentity {
  baseOffset: number;
  lastOffset: number;
  crc: number;
}

/** A decoded snapshot. */
export interface ProducerStateSnapshot {
  /** The state covers every batch whose offsets are below this one (a log end offset). */
  offset: number;
  /** The last batch below `offset`, or null if the log held none below it then. */
  lastBatch: BatchIdentity | null;
  /** `PartitionLog.incarnation` when the snapshot was taken. */
  logIncarnation: number;
  entries: ProducerStateEntry[];
  /** The aborted transactions whose markers are below `offset` (absent in older files). */
  aborted?: TxnRange[];
}

interface SnapshotJson {
  version: number;
  offset: number;
  lastBatch: BatchIdentity | null;
  /** Absent in snapshots written before it existed: those belong to incarnation 0. */
  logIncarnation?: number;
  /**
   * producerId as a decimal string (int64), epoch, lastUpdateMs, batches as tuples, and
   * (absent in older files) the open transaction's first offset and the coordinator epoch.
   */
  producers: (
    | [string, number, number, [number, number, number, number, number][]]
    | [string, number, number, [number, number, number, number, number][], [number, number]]
  )[];
  /** Aborted transactions: producer id, first offset, marker offset. */
  aborted?: [string, number, number][];
}

/** Encodes a snapshot as JSON text. */
export function encodeSnapshot(snapshot: ProducerStateSnapshot): string {
  const json: SnapshotJson = {
    version: SNAPSHOT_VERSION,
    offset: snapshot.offset,
    lastBatch: snapshot.lastBatch,
    logIncarnation: snapshot.logIncarnation,
    producers: snapshot.entries.map((e) => [
      e.producerId.toString(),
      e.producerEpoch,
      e.lastUpdateMs,
      e.batches.map((b) => [b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset, b.timestamp]),
      [e.currentTxnFirstOffset ?? -1, e.coordinatorEpoch ?? -1],
    ]),
    aborted: (snapshot.aborted ?? []).map((
      t,
    ) => [t.producerId.toString(), t.firstOffset, t.lastOffset]),
  };
  return JSON.stringify(json);
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

function fail(what: string): never {
  throw new SyntaxError(`Cannot decode producer state snapshot: ${what}`);
}

/**
 * Decodes snapshot text.
 *
 * @throws {SyntaxError} if the text is not a valid snapshot of this version
 */
export function decodeSnapshot(text: string): ProducerStateSnapshot {
  const json = JSON.parse(text) as Partial<SnapshotJson> | null;
  if (typeof json !== "object" || json === null) fail("not an object");
  if (json.version !== SNAPSHOT_VERSION) fail(`unknown version ${json.version}`);
  if (!isInt(json.offset) || json.offset < 0) fail("bad offset");
  const lb = json.lastBatch;
  if (
    lb !== null &&
    (typeof lb !== "object" || !isInt(lb?.baseOffset) || !isInt(lb.lastOffset) || !isInt(lb.crc))
  ) {
    fail("bad lastBatch");
  }
  const logIncarnation = json.logIncarnation ?? 0;
  if (!isInt(logIncarnation)) fail("bad logIncarnation");
  if (!Array.isArray(json.producers)) fail("bad producers");
  const entries = json.producers.map((p): ProducerStateEntry => {
    if (!Array.isArray(p) || (p.length !== 4 && p.length !== 5)) fail("bad producer entry");
    const [id, epoch, lastUpdateMs, batches] = p;
    const txn = p.length === 5 ? p[4] : [-1, -1];
    if (!Array.isArray(txn) || txn.length !== 2 || !txn.every(isInt)) fail("bad transaction state");
    if (typeof id !== "string" || !/^\d+$/.test(id)) fail("bad producer id");
    if (!isInt(epoch) || !isInt(lastUpdateMs) || !Array.isArray(batches)) {
      fail("bad producer entry");
    }
    return {
      producerId: BigInt(id),
      producerEpoch: epoch,
      lastUpdateMs,
      currentTxnFirstOffset: txn[0],
      coordinatorEpoch: txn[1],
      batches: batches.map((b): BatchMetadata => {
        if (!Array.isArray(b) || b.length !== 5 || !b.every(isInt)) fail("bad batch metadata");
        const [firstSeq, lastSeq, firstOffset, lastOffset, timestamp] = b;
        return { firstSeq, lastSeq, firstOffset, lastOffset, timestamp };
      }),
    };
  });
  const abortedJson = json.aborted ?? [];
  if (!Array.isArray(abortedJson)) fail("bad aborted transactions");
  const aborted = abortedJson.map((t): TxnRange => {
    if (
      !Array.isArray(t) || t.length !== 3 || typeof t[0] !== "string" || !/^\d+$/.test(t[0]) ||
      !isInt(t[1]) || !isInt(t[2])
    ) {
      fail("bad aborted transaction");
    }
    return { producerId: BigInt(t[0]), firstOffset: t[1], lastOffset: t[2] };
  });
  return { offset: json.offset, lastBatch: lb ?? null, logIncarnation, entries, aborted };
}
