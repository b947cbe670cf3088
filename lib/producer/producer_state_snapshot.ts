/**
 * The producer-state snapshot format (`producer-state-<offset, 20 digits>.json` in a
 * partition's folder; `producer-state.json` in older data dirs): the state after every
 * batch below `offset`, the identity of the last batch below `offset`, so a snapshot that
 * no longer matches the log (a torn tail recovered shorter, a truncation) is recognised and
 * ignored, and the incarnation of the log it was taken from (absent in older files: 0), so
 * one taken before the log was emptied and restarted is never trusted. Pure: encoding and
 * decoding only.
 */
import type { BatchMetadata, ProducerStateEntry } from "./producer_state.ts";

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
}

interface SnapshotJson {
  version: number;
  offset: number;
  lastBatch: BatchIdentity | null;
  /** Absent in snapshots written before it existed: those belong to incarnation 0. */
  logIncarnation?: number;
  /** producerId as a decimal string (int64), epoch, lastUpdateMs, batches as tuples. */
  producers: [string, number, number, [number, number, number, number, number][]][];
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
    ]),
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
    if (!Array.isArray(p) || p.length !== 4) fail("bad producer entry");
    const [id, epoch, lastUpdateMs, batches] = p;
    if (typeof id !== "string" || !/^\d+$/.test(id)) fail("bad producer id");
    if (!isInt(epoch) || !isInt(lastUpdateMs) || !Array.isArray(batches)) {
      fail("bad producer entry");
    }
    return {
      producerId: BigInt(id),
      producerEpoch: epoch,
      lastUpdateMs,
      batches: batches.map((b): BatchMetadata => {
        if (!Array.isArray(b) || b.length !== 5 || !b.every(isInt)) fail("bad batch metadata");
        const [firstSeq, lastSeq, firstOffset, lastOffset, timestamp] = b;
        return { firstSeq, lastSeq, firstOffset, lastOffset, timestamp };
      }),
    };
  });
  return { offset: json.offset, lastBatch: lb ?? null, logIncarnation, entries };
}
