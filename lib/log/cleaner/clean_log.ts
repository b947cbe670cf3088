/**
 * One cleaning of one compacted log (Kafka's Cleaner.doClean), in three steps:
 *
 * 1. The cleanable range: from the cleaner checkpoint (the first dirty offset) to the
 *    first uncleanable offset: the active segment, the high watermark (nothing a
 *    truncation could still remove is cleaned), and any segment with records younger
 *    than `min.compaction.lag.ms`.
 * 2. The offset map: key → latest offset over the dirty part of that range, in bounded
 *    memory; if it fills up, this cleaning stops where it did, the rest waits for the next.
 * 3. The rewrite: the segments from the log start up to there, in groups that fit one
 *    segment, each copied to a `.cleaned` file keeping a record unless a later offset of
 *    its key is in the map, or it is a tombstone whose delete horizon has passed. A
 *    tombstone's batch gets its delete horizon (now + `delete.retention.ms`, KIP-534) the
 *    first time it is cleaned. Offsets never change; batches whose records all go are
 *    dropped, unless one is a producer's last batch (its sequence state must survive) or
 *    a control batch. Each group then replaces its segments through
 *    {@linkcode PartitionLog.replaceSegments}, crash-safely.
 *
 * Transactions (Kafka's CleanedTransactionMetadata): the range ends at the last stable
 * offset, so every transactional batch in it is decided. Records of aborted transactions
 * never enter the offset map (they must not shadow a committed value) and are removed by
 * the rewrite; transaction markers (control batches) are kept.
 *
 * The work runs in slices that yield to the event loop (and sleep to honour an I/O
 * rate), so produce and fetch keep being served.
 */
import { readBatchHeader } from "../../protocol/record_batch.ts";
import {
  type BatchRecord,
  DELETE_HORIZON_BIT,
  readBatchRecords,
  writeBatch,
} from "../../protocol/record_codec.ts";
import type { FileHandle } from "../../runtime/fs.ts";
import { yieldToEventLoop } from "../../runtime/timers.ts";
import type { Timers } from "../../runtime/timers.ts";
import { cleanedFileName, type PartitionLog } from "../partition_log.ts";
import type { LogSegment } from "../segment.ts";
import { OffsetMap } from "./offset_map.ts";

/** Bytes read from a segment at a time (a bigger batch is read whole). */
const READ_WINDOW = 1024 * 1024;
const CONTROL_BIT = 0x20;
const TRANSACTIONAL_BIT = 0x10;

/** An aborted transaction: its producer's records from `firstOffset` to its marker. */
export interface AbortedTxn {
  readonly producerId: bigint;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

/** Answers "is this transactional batch part of an aborted transaction?". */
class AbortedIndex {
  readonly #byProducer = new Map<bigint, AbortedTxn[]>();

  constructor(aborted: readonly AbortedTxn[]) {
    for (const t of aborted) {
      const list = this.#byProducer.get(t.producerId) ?? [];
      list.push(t);
      this.#byProducer.set(t.producerId, list);
    }
  }

  has(producerId: bigint, offset: number): boolean {
    const list = this.#byProducer.get(producerId);
    return list !== undefined &&
      list.some((t) => t.firstOffset <= offset && offset <= t.lastOffset);
  }
}

function isAbortedData(
  h: { attributes: number; producerId: bigint; baseOffset: number },
  aborted: AbortedIndex,
): boolean {
  return (h.attributes & (TRANSACTIONAL_BIT | CONTROL_BIT)) === TRANSACTIONAL_BIT &&
    aborted.has(h.producerId, h.baseOffset);
}

/** What the cleaner needs from outside the log. */
export interface CleanOptions {
  nowMs: number;
  /** The first offset that must not be cleaned: the partition's last stable offset. */
  maxOffset: number;
  /** The log's aborted transactions. */
  aborted?: readonly AbortedTxn[];
  /** Memory for the offset map. */
  mapBytes: number;
  /** Each producer's last batch's last offset (those batches are kept, empty if need be). */
  producerLastOffsets: ReadonlySet<number>;
  timers: Timers;
  /** Waits as long as moving `bytes` more takes under the I/O rate limit. */
  throttle?: (bytes: number) => Promise<void>;
}

/** What a cleaning did. */
export interface CleanResult {
  /** The first dirty offset before, and the checkpoint after. */
  firstDirty: number;
  cleanedUpTo: number;
  bytesRead: number;
  bytesWritten: number;
  recordsRemoved: number;
  tombstonesRemoved: number;
  /** False when the log changed under it and the rewrite was abandoned. */
  completed: boolean;
}

/** The dirty share and whether the log is due for cleaning. */
export interface CleanableState {
  firstDirty: number;
  firstUncleanable: number;
  cleanBytes: number;
  dirtyBytes: number;
  dirtyRatio: number;
  /** A dirty record is older than `max.compaction.lag.ms`. */
  overdue: boolean;
}

/** Where cleaning may start and stop, and how dirty the log is (no I/O). */
export function cleanableState(
  log: PartitionLog,
  nowMs: number,
  maxOffset: number,
): CleanableState {
  const config = log.config;
  const segments = log.inactiveSegments();
  const firstDirty = log.cleanerCheckpoint;
  let firstUncleanable = Math.min(log.activeSegmentBase, maxOffset);
  // As Kafka: only with a lag set, and only among dirty segments (a record stamped in the
  // future would otherwise hold cleaning back for good).
  if (config.minCompactionLagMs > 0) {
    for (const seg of segments) {
      if (seg.baseOffset >= firstUncleanable) break;
      if (seg.nextOffset <= firstDirty) continue;
      if (seg.maxTimestamp >= 0 && nowMs - seg.maxTimestamp < config.minCompactionLagMs) {
        firstUncleanable = Math.max(seg.baseOffset, firstDirty);
        break;
      }
    }
  }
  let cleanBytes = 0;
  let dirtyBytes = 0;
  let overdue = false;
  for (const seg of segments) {
    if (seg.baseOffset < log.logStartOffset && seg.nextOffset <= log.logStartOffset) continue;
    if (seg.nextOffset <= firstDirty) cleanBytes += seg.size;
    else if (seg.nextOffset <= firstUncleanable) {
      dirtyBytes += seg.size;
      if (seg.maxTimestamp >= 0 && nowMs - seg.maxTimestamp > config.maxCompactionLagMs) {
        overdue = true;
      }
    }
  }
  const total = cleanBytes + dirtyBytes;
  return {
    firstDirty,
    firstUncleanable,
    cleanBytes,
    dirtyBytes,
    dirtyRatio: total === 0 ? 0 : dirtyBytes / total,
    overdue,
  };
}

/** Batches of a segment from `position` on, read in windows; yields [position, bytes]. */
async function* batchesOf(
  seg: LogSegment,
  o: CleanOptions,
  counted: { read: number },
): AsyncGenerator<[number, Uint8Array]> {
  const generation = seg.generation;
  let pos = 0;
  while (pos < seg.size) {
    // Retention, DeleteRecords or a truncation closed or cut it meanwhile: give up.
    if (seg.generation !== generation) throw new CleaningAbandoned();
    const want = Math.min(READ_WINDOW, seg.size - pos);
    let window = seg.readAt(pos, want);
    counted.read += window.length;
    let at = 0;
    while (at + 12 <= window.length) {
      const size = new DataView(window.buffer, window.byteOffset + at, 12).getInt32(8) + 12;
      if (at + size > window.length) {
        if (at === 0) {
          window = seg.readAt(pos, size); // one batch bigger than the window
          counted.read += window.length;
        } else break;
      }
      yield [pos + at, window.subarray(at, at + size)];
      at += size;
    }
    pos += at;
    await o.throttle?.(at);
    await yieldToEventLoop(o.timers);
  }
}

/** Step 2: the latest offset of each key in [firstDirty, firstUncleanable). */
async function buildOffsetMap(
  log: PartitionLog,
  state: CleanableState,
  o: CleanOptions,
  counted: { read: number },
  aborted: AbortedIndex,
): Promise<{ map: OffsetMap; end: number }> {
  const map = new OffsetMap(o.mapBytes);
  let end = state.firstDirty;
  for (const seg of log.inactiveSegments()) {
    if (seg.nextOffset <= state.firstDirty) continue;
    if (seg.baseOffset >= state.firstUncleanable) break;
    for await (const [, batch] of batchesOf(seg, o, counted)) {
      const h = readBatchHeader(batch);
      const last = h.baseOffset + h.lastOffsetDelta;
      if (last < state.firstDirty) continue;
      if (h.baseOffset >= state.firstUncleanable) return { map, end };
      if ((h.attributes & CONTROL_BIT) !== 0 || isAbortedData(h, aborted)) {
        end = last + 1;
        continue;
      }
      const { records } = readBatchRecords(batch);
      // A batch is mapped whole or not at all, so the cleaned range ends on a batch.
      const fresh = new Set<string>();
      let room = map.capacity - map.size;
      for (const r of records) {
        if (r.key === null) continue;
        if (map.get(r.key) < 0) {
          const k = String(r.key);
          if (!fresh.has(k)) {
            fresh.add(k);
            room--;
          }
        }
      }
      if (room < 0) return { map, end };
      for (const r of records) if (r.key !== null) map.put(r.key, r.offset);
      end = last + 1;
    }
  }
  return { map, end: Math.min(end, state.firstUncleanable) };
}

/** Offsets one segment may span (relative offsets in the index are 31-bit, as Kafka's). */
const MAX_SEGMENT_SPAN = 0x7fffffff;

/**
 * Groups consecutive segments below `end` whose total size fits one segment and whose
 * offsets one index can address.
 */
function groupSegments(segments: readonly LogSegment[], end: number, maxBytes: number) {
  const groups: LogSegment[][] = [];
  let current: LogSegment[] = [];
  let size = 0;
  for (const seg of segments) {
    if (seg.baseOffset >= end) break;
    const tooWide = current.length > 0 &&
      seg.nextOffset - current[0]!.baseOffset > MAX_SEGMENT_SPAN;
    if (
      current.length > 0 && (size + seg.size > maxBytes || seg.nextOffset > end || tooWide)
    ) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(seg);
    size += seg.size;
    // A segment reaching past `end` is cleaned (only its mapped part can lose records)
    // but closes its group: the next cleaning starts there.
    if (seg.nextOffset > end) break;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** The log changed under a cleaning (segments closed or truncated): it is abandoned. */
class CleaningAbandoned extends Error {
  constructor() {
    super("The log changed during the cleaning");
  }
}

/** Cleans `log` once (see the module doc). */
export async function cleanLog(log: PartitionLog, o: CleanOptions): Promise<CleanResult> {
  try {
    return await clean(log, o);
  } catch (err) {
    if (!(err instanceof CleaningAbandoned)) throw err;
    return {
      firstDirty: log.cleanerCheckpoint,
      cleanedUpTo: log.cleanerCheckpoint,
      bytesRead: 0,
      bytesWritten: 0,
      recordsRemoved: 0,
      tombstonesRemoved: 0,
      completed: false,
    };
  }
}

async function clean(log: PartitionLog, o: CleanOptions): Promise<CleanResult> {
  // A truncation anywhere (not only in the segments rewritten) voids the offset map.
  const truncations = log.truncations;
  const state = cleanableState(log, o.nowMs, o.maxOffset);
  const counted = { read: 0 };
  const result: CleanResult = {
    firstDirty: state.firstDirty,
    cleanedUpTo: state.firstDirty,
    bytesRead: 0,
    bytesWritten: 0,
    recordsRemoved: 0,
    tombstonesRemoved: 0,
    completed: true,
  };
  if (state.firstDirty >= state.firstUncleanable) return result;
  const aborted = new AbortedIndex(o.aborted ?? []);
  const { map, end } = await buildOffsetMap(log, state, o, counted, aborted);
  if (end <= state.firstDirty) {
    result.bytesRead = counted.read;
    return result;
  }
  const horizon = o.nowMs + log.config.deleteRetentionMs;
  for (const group of groupSegments(log.inactiveSegments(), end, log.config.segmentBytes)) {
    const path = `${log.dir}/${cleanedFileName(group[0]!.baseOffset)}`;
    const file = log.fileSystem.openSync(path, {
      read: true,
      write: true,
      create: true,
      truncate: true,
    });
    let written = 0;
    let done = false;
    try {
      for (const seg of group) {
        const lastSegment = seg === group[group.length - 1];
        let pending: Uint8Array | null = null;
        const emit = async (batch: Uint8Array, keepLast: boolean) => {
          const out = cleanBatch(batch, map, end, horizon, o, result, keepLast, aborted);
          if (out === null) return;
          writeAll(file, out);
          written += out.length;
          await o.throttle?.(out.length);
        };
        // One batch behind, so that the group's last batch is known when it comes.
        for await (const [, batch] of batchesOf(seg, o, counted)) {
          if (pending !== null) await emit(pending, false);
          pending = batch;
        }
        if (pending !== null) await emit(pending, lastSegment);
      }
      await file.syncData();
      done = true;
    } finally {
      file.close();
      if (!done) await log.fileSystem.remove(path).catch(() => {});
    }
    result.bytesWritten += written;
    if (!(await log.replaceSegments(group, path, truncations))) {
      result.completed = false;
      result.bytesRead = counted.read;
      return result;
    }
  }
  result.bytesRead = counted.read;
  if (!(await log.setCleanerCheckpoint(end, truncations))) {
    result.completed = false;
    return result;
  }
  result.cleanedUpTo = end;
  return result;
}

function writeAll(file: FileHandle, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += file.writeSync(bytes.subarray(done));
}

/**
 * The batch as the cleaned segment keeps it: the same bytes when every record stays (and
 * no delete horizon is to be set), a rebuilt batch when some go, null when it goes whole
 * (never when `keepLast`: a cleaned segment ends on the same offset as the segments it
 * replaces, so recovery can tell a hole at a segment boundary from a lost tail).
 */
function cleanBatch(
  batch: Uint8Array,
  map: OffsetMap,
  end: number,
  horizon: number,
  o: CleanOptions,
  result: CleanResult,
  keepLast: boolean,
  aborted: AbortedIndex,
): Uint8Array | null {
  const h = readBatchHeader(batch);
  if ((h.attributes & CONTROL_BIT) !== 0) return batch;
  const last = h.baseOffset + h.lastOffsetDelta;
  const keepEmpty = keepLast || o.producerLastOffsets.has(last);
  if (h.recordCount === 0) return keepEmpty ? batch : null;
  if (last < end && isAbortedData(h, aborted)) {
    // No consumer may ever see these records (read_committed skips them already).
    result.recordsRemoved += h.recordCount;
    return keepEmpty ? writeBatch(h, []) : null;
  }
  const { records } = readBatchRecords(batch);
  const hasHorizon = (h.attributes & DELETE_HORIZON_BIT) !== 0;
  const kept: BatchRecord[] = [];
  let tombstonesKept = false;
  for (const r of records) {
    let keep = true;
    if (r.key !== null && r.offset < end) {
      const latest = map.get(r.key);
      if (latest > r.offset) keep = false;
    }
    if (keep && r.value === null && r.key !== null) {
      // Only a tombstone the map covers (or an older clean one) is its key's latest for
      // sure; one past `end` may yet shadow an older value the map still keeps.
      if (hasHorizon && o.nowMs >= h.baseTimestamp && r.offset < end) {
        keep = false;
        result.tombstonesRemoved++;
      } else tombstonesKept = true;
    }
    if (keep) kept.push(r);
    else result.recordsRemoved++;
  }
  const needsHorizon = tombstonesKept && !hasHorizon;
  if (kept.length === records.length && !needsHorizon) return batch;
  if (kept.length === 0 && !keepEmpty) return null;
  return writeBatch(h, kept, needsHorizon ? { deleteHorizonMs: horizon } : {});
}
