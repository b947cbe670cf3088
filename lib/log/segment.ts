/**
 * One segment of a partition log: a `.log` file of whole record batches starting at
 * `baseOffset`, with its sparse offset and time indexes (kept in memory, written to
 * `.index` / `.timeindex` when the segment is rolled or the log closed).
 *
 * All file access here is synchronous on one handle per segment: reads seek to their
 * position, appends seek back to the end when a read moved the handle. Because nothing
 * awaits between the seek and the read or write, they cannot interleave. Only `syncData`
 * is async, and it does not use the position.
 */
import {
  BATCH_HEADER_SIZE,
  BATCH_LOG_OVERHEAD,
  batchCrcValid,
  type BatchHeader,
  readBatchHeader,
} from "../protocol/record_batch.ts";
import type { FileHandle, FileSystem } from "../runtime/fs.ts";
import { assert } from "../util/assert.ts";
import { OffsetIndex, TimeIndex } from "./_index.ts";

/** Smallest valid `batchLength` (a header with no records). */
const MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD;
/** Read size while scanning a segment during recovery. */
const SCAN_WINDOW = 8 * 1024 * 1024;
/** Read size while walking batch headers from an index entry. */
const LOOKUP_WINDOW = 8 * 1024;

/** `<base offset, 20 digits>.<ext>`, as Kafka names segment files. */
export function segmentFileName(baseOffset: number, ext: "log" | "index" | "timeindex"): string {
  return `${String(baseOffset).padStart(20, "0")}.${ext}`;
}

/** What {@linkcode LogSegment.recover} found. */
export interface ScanResult {
  /** Bytes of valid batches from the start of the file. */
  validBytes: number;
  /** Size of the file before truncation. */
  fileBytes: number;
  /** Why the scan stopped before the end of the file, if it did. */
  problem: string | null;
}

/** Position and header of a batch located in the segment. */
export interface BatchLocation {
  position: number;
  header: BatchHeader;
}

/** A byte range of a segment file that holds whole batches. */
export interface SegmentRange {
  position: number;
  length: number;
}

/** The fields of a batch the segment tracks when it is appended. */
export interface AppendedBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  size: number;
}

export class LogSegment {
  readonly baseOffset: number;
  readonly logPath: string;
  readonly indexPath: string;
  readonly timeIndexPath: string;
  /** Clock time (or first batch timestamp for recovered segments) that `segmentMs` counts from. */
  rollBaseMs: number;
  readonly offsetIndex = new OffsetIndex();
  readonly timeIndex = new TimeIndex();
  readonly #fs: FileSystem;
  #file: FileHandle;
  /** Where the handle's position is, as far as we moved it. */
  #handlePos = 0;
  #size = 0;
  #nextOffset: number;
  #maxTimestamp = -1;
  /** Base offset of the first batch carrying `#maxTimestamp`, -1 if empty. */
  #maxTimestampBatch = -1;
  /** Position of the last offset index entry (0 if none: the first batch is implicit). */
  #lastIndexedPos = 0;
  #closed = false;
  /** Advances whenever bytes already in the file may change or go: truncation, close. */
  #generation = 0;

  private constructor(
    fs: FileSystem,
    dir: string,
    baseOffset: number,
    file: FileHandle,
    nowMs: number,
  ) {
    this.#fs = fs;
    this.baseOffset = baseOffset;
    this.logPath = `${dir}/${segmentFileName(baseOffset, "log")}`;
    this.indexPath = `${dir}/${segmentFileName(baseOffset, "index")}`;
    this.timeIndexPath = `${dir}/${segmentFileName(baseOffset, "timeindex")}`;
    this.#file = file;
    this.#nextOffset = baseOffset;
    this.rollBaseMs = nowMs;
  }

  /** Creates a new empty segment file (truncating any stale one). */
  static create(fs: FileSystem, dir: string, baseOffset: number, nowMs: number): LogSegment {
    const path = `${dir}/${segmentFileName(baseOffset, "log")}`;
    const file = fs.openSync(path, { read: true, write: true, create: true, truncate: true });
    const seg = new LogSegment(fs, dir, baseOffset, file, nowMs);
    // Stale indexes of an earlier segment with the same base would mislead a later open.
    removeIfExists(fs, seg.indexPath);
    removeIfExists(fs, seg.timeIndexPath);
    return seg;
  }

  /** Opens an existing segment file; call {@linkcode recover} or {@linkcode loadIndexes} next. */
  static openExisting(
    fs: FileSystem,
    dir: string,
    baseOffset: number,
    nowMs: number,
  ): LogSegment {
    const path = `${dir}/${segmentFileName(baseOffset, "log")}`;
    const file = fs.openSync(path, { read: true, write: true });
    const seg = new LogSegment(fs, dir, baseOffset, file, nowMs);
    seg.#size = file.statSync().size;
    return seg;
  }

  /** Bytes of batches in the segment. */
  get size(): number {
    return this.#size;
  }

  /** The offset after the last batch (the base offset when empty). */
  get nextOffset(): number {
    return this.#nextOffset;
  }

  /** Sets the end offset of a segment whose batches were not scanned (the next segment's base). */
  set nextOffset(offset: number) {
    this.#nextOffset = offset;
  }

  /** Largest batch max timestamp in the segment, -1 if empty or unknown. */
  get maxTimestamp(): number {
    return this.#maxTimestamp;
  }

  /** Base offset of the first batch with the largest timestamp, -1 if empty. */
  get maxTimestampBatch(): number {
    return this.#maxTimestampBatch;
  }

  /**
   * Changes when the file is truncated or closed: a {@linkcode SegmentRange} located
   * before then may no longer hold the batches it did.
   */
  get generation(): number {
    return this.#generation;
  }

  get file(): FileHandle {
    return this.#file;
  }

  /**
   * Updates indexes and counters for a batch about to be written at the end: call
   * before {@linkcode write} for each batch, in order.
   */
  track(batch: AppendedBatch, indexIntervalBytes: number): void {
    const position = this.#size;
    if (batch.maxTimestamp > this.#maxTimestamp || this.#maxTimestampBatch < 0) {
      this.#maxTimestamp = batch.maxTimestamp;
      this.#maxTimestampBatch = batch.baseOffset;
    }
    if (position > 0 && position - this.#lastIndexedPos >= indexIntervalBytes) {
      this.offsetIndex.add(batch.baseOffset - this.baseOffset, position);
      this.#lastIndexedPos = position;
      this.#maybeAddTimeEntry();
    }
    this.#size += batch.size;
    this.#nextOffset = batch.lastOffset + 1;
  }

  #maybeAddTimeEntry(): void {
    if (this.#maxTimestampBatch >= 0 && this.#maxTimestamp > this.timeIndex.lastTimestamp) {
      this.timeIndex.add(this.#maxTimestamp, this.#maxTimestampBatch - this.baseOffset);
    }
  }

  /**
   * Writes bytes at the end of the file (after {@linkcode track}ed batches were counted:
   * `position` is where they go). Throws on an I/O error; the caller then calls
   * {@linkcode rollback}.
   */
  write(bytes: Uint8Array, position: number): void {
    if (this.#handlePos !== position) {
      this.#file.seekSync(position, Deno.SeekMode.Start);
      this.#handlePos = position;
    }
    let done = 0;
    while (done < bytes.length) {
      const n = this.#file.writeSync(done === 0 ? bytes : bytes.subarray(done));
      done += n;
      this.#handlePos += n;
    }
  }

  /** Undoes appends after a failed write: truncates the file to `size` and rescans indexes. */
  rollback(size: number, indexIntervalBytes: number): void {
    this.truncateToPosition(size, indexIntervalBytes);
  }

  /** Reads exactly `length` bytes at `position` (throws if the file is shorter). */
  readAt(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(position, out);
    return out;
  }

  /** Fills `out` with the bytes at `position` (throws if the file is shorter). */
  readInto(position: number, out: Uint8Array): void {
    const length = out.length;
    if (length === 0) return;
    if (this.#handlePos !== position) {
      this.#file.seekSync(position, Deno.SeekMode.Start);
      this.#handlePos = position;
    }
    let done = 0;
    while (done < length) {
      const n = this.#file.readSync(done === 0 ? out : out.subarray(done));
      if (n === null || n === 0) {
        this.#handlePos = -1;
        throw new Error(
          `Cannot read ${this.logPath} at ${position}: end of file after ${done} of ${length} bytes`,
        );
      }
      done += n;
      this.#handlePos += n;
    }
  }

  /**
   * Locates the first batch whose last offset is >= `offset` (the batch containing it),
   * starting from the offset index; null if the segment has none.
   */
  locate(offset: number): BatchLocation | null {
    if (offset >= this.#nextOffset) return null;
    let position = this.offsetIndex.lookup(Math.max(0, offset - this.baseOffset));
    while (position < this.#size) {
      const buf = this.readAt(position, Math.min(LOOKUP_WINDOW, this.#size - position));
      let p = 0;
      while (p + BATCH_HEADER_SIZE <= buf.length) {
        const h = readBatchHeader(buf, p);
        if (h.baseOffset + h.lastOffsetDelta >= offset) {
          return { position: position + p, header: h };
        }
        p += h.sizeInBytes;
      }
      if (p === 0) {
        // A header straddles the window end only if the window was short: impossible
        // here because every batch is at least BATCH_HEADER_SIZE bytes.
        assert(
          false,
          `Cannot locate offset ${offset} in ${this.logPath}: bad batch at ${position}`,
        );
      }
      position += p;
    }
    return null;
  }

  /**
   * Where the whole batches from the one containing `offset` lie in the file: at most
   * `maxBytes` (but the first batch even if larger when `minOneMessage`), none with a
   * base offset >= `maxOffset`. Null when the segment holds no batch containing `offset`
   * or later. Finds both ends from the offset index and a few batch headers, without
   * reading the batches themselves.
   */
  range(
    offset: number,
    maxBytes: number,
    maxOffset: number,
    minOneMessage: boolean,
  ): SegmentRange | null {
    const loc = this.locate(offset);
    if (loc === null) return null;
    const first = loc.header;
    const start = loc.position;
    if (first.baseOffset >= maxOffset) return { position: start, length: 0 };
    if (first.sizeInBytes > maxBytes) {
      return { position: start, length: minOneMessage ? first.sizeInBytes : 0 };
    }
    const cut = this.#positionOfFirstBatchFrom(maxOffset);
    const end = start + maxBytes >= cut ? cut : this.#boundaryAtOrBefore(start, start + maxBytes);
    return { position: start, length: end - start };
  }

  /**
   * The offset of the batch at `position` (a batch boundary), or the segment's next
   * offset at its end: where a range ending there stops.
   */
  offsetAtBoundary(position: number): number {
    if (position >= this.#size) return this.#nextOffset;
    const b = this.readAt(position, 8);
    return Number(new DataView(b.buffer, b.byteOffset, 8).getBigInt64(0));
  }

  /** Bytes of {@linkcode range}, read now. */
  read(
    offset: number,
    maxBytes: number,
    maxOffset: number,
    minOneMessage: boolean,
  ): Uint8Array | null {
    const r = this.range(offset, maxBytes, maxOffset, minOneMessage);
    return r === null ? null : this.readAt(r.position, r.length);
  }

  /** Position of the first batch whose base offset is >= `offset` (the size if none). */
  #positionOfFirstBatchFrom(offset: number): number {
    const loc = offset >= this.#nextOffset ? null : this.locate(offset);
    if (loc === null) return this.#size;
    return loc.header.baseOffset >= offset ? loc.position : loc.position + loc.header.sizeInBytes;
  }

  /**
   * The last batch boundary at or before `limit`, not before `start` (itself a
   * boundary): walks batch lengths from the closest offset index entry, so it reads at
   * most about one index interval of headers.
   */
  #boundaryAtOrBefore(start: number, limit: number): number {
    if (limit >= this.#size) return this.#size;
    let pos = Math.max(start, this.offsetIndex.floorPosition(limit));
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = 0;
    for (;;) {
      if (pos + BATCH_LOG_OVERHEAD > windowStart + window.length) {
        window = this.readAt(pos, Math.min(LOOKUP_WINDOW, this.#size - pos));
        windowStart = pos;
      }
      const at = pos - windowStart;
      const size = new DataView(window.buffer, window.byteOffset).getInt32(at + 8) +
        BATCH_LOG_OVERHEAD;
      assert(size >= BATCH_HEADER_SIZE, `Bad batch length at ${pos} in ${this.logPath}`);
      if (pos + size > limit) return pos;
      pos += size;
    }
  }

  /**
   * Scans every batch from the start (optionally CRC-checking each), rebuilding the
   * indexes, and truncates the file at the first torn, corrupt or misplaced batch.
   */
  recover(indexIntervalBytes: number, verifyCrc: boolean): ScanResult {
    const fileBytes = this.#file.statSync().size;
    this.#resetTracking();
    this.#size = 0;
    let window: Uint8Array = new Uint8Array(0);
    let windowStart = 0;
    const ensure = (pos: number, len: number): number => {
      if (pos < windowStart || pos + len > windowStart + window.length) {
        window = this.readAt(pos, Math.min(Math.max(len, SCAN_WINDOW), fileBytes - pos));
        windowStart = pos;
      }
      return pos - windowStart;
    };
    let pos = 0;
    let expected = this.baseOffset;
    let problem: string | null = null;
    while (pos < fileBytes) {
      if (fileBytes - pos < BATCH_HEADER_SIZE) {
        problem = `${fileBytes - pos} trailing bytes are too short for a batch header`;
        break;
      }
      const at = ensure(pos, BATCH_HEADER_SIZE);
      const h = readBatchHeader(window, at);
      if (h.batchLength < MIN_BATCH_LENGTH || h.magic !== 2) {
        problem = `invalid batch header (length ${h.batchLength}, magic ${h.magic})`;
        break;
      }
      if (pos + h.sizeInBytes > fileBytes) {
        problem = `torn batch: ${h.sizeInBytes} bytes, ${fileBytes - pos} present`;
        break;
      }
      // Offsets only increase; a compacted log has gaps where whole batches went.
      if (h.baseOffset < expected || h.lastOffsetDelta < 0) {
        problem = `batch has base offset ${h.baseOffset} (last delta ${h.lastOffsetDelta}), ` +
          `expected ${expected} or more`;
        break;
      }
      if (verifyCrc) {
        const batchAt = ensure(pos, h.sizeInBytes);
        if (!batchCrcValid(window, batchAt, h.sizeInBytes)) {
          problem = `CRC mismatch in batch at offset ${h.baseOffset}`;
          break;
        }
      }
      this.track({
        baseOffset: h.baseOffset,
        lastOffset: h.baseOffset + h.lastOffsetDelta,
        maxTimestamp: h.maxTimestamp,
        size: h.sizeInBytes,
      }, indexIntervalBytes);
      expected = h.baseOffset + h.lastOffsetDelta + 1;
      pos += h.sizeInBytes;
    }
    assert(pos === this.#size, "Recovered size must match the scanned batches");
    if (pos < fileBytes) {
      this.#file.truncateSync(pos);
      this.#handlePos = -1;
    }
    return { validBytes: pos, fileBytes, problem };
  }

  #resetTracking(): void {
    this.offsetIndex.clear();
    this.timeIndex.clear();
    this.#maxTimestamp = -1;
    this.#maxTimestampBatch = -1;
    this.#lastIndexedPos = 0;
    this.#nextOffset = this.baseOffset;
  }

  /**
   * Loads the index files of a segment known to be fully written (below the recovery
   * point), checking that they are sane for the file; false (and nothing loaded) if not,
   * so the caller rebuilds them with {@linkcode recover}.
   */
  loadIndexes(): boolean {
    let offsetBytes: Uint8Array;
    let timeBytes: Uint8Array;
    try {
      offsetBytes = this.#fs.readFileSync(this.indexPath);
      timeBytes = this.#fs.readFileSync(this.timeIndexPath);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    if (this.#size === 0) return false;
    const offsets = OffsetIndex.decode(offsetBytes, this.#size);
    const times = TimeIndex.decode(timeBytes);
    if (offsets === null || times === null || times.length === 0) return false;
    // The last offset entry must point at the batch it names.
    if (offsets.length > 0) {
      const i = offsets.length - 1;
      const pos = offsets.positionAt(i);
      if (pos + BATCH_HEADER_SIZE > this.#size) return false;
      const h = readBatchHeader(this.readAt(pos, BATCH_HEADER_SIZE));
      if (h.magic !== 2 || h.baseOffset !== this.baseOffset + offsets.relOffsetAt(i)) return false;
    }
    this.#resetTracking();
    for (let i = 0; i < offsets.length; i++) {
      this.offsetIndex.add(offsets.relOffsetAt(i), offsets.positionAt(i));
    }
    this.#lastIndexedPos = offsets.length > 0 ? offsets.positionAt(offsets.length - 1) : 0;
    // Re-encode through add() to copy; decode already checked ordering.
    const encoded = times.encode();
    const tv = new DataView(encoded.buffer);
    for (let p = 0; p < encoded.length; p += 12) {
      this.timeIndex.add(Number(tv.getBigInt64(p)), tv.getUint32(p + 8));
    }
    this.#maxTimestamp = this.timeIndex.lastTimestamp;
    this.#maxTimestampBatch = this.baseOffset + this.timeIndex.lastRelOffset;
    return true;
  }

  /** Adds the final time index entry (Kafka does this when a segment becomes inactive). */
  finalizeTimeIndex(): void {
    this.#maybeAddTimeEntry();
  }

  /** Writes both index files from memory (not fsynced). */
  writeIndexFiles(): void {
    this.#fs.writeFileSync(this.indexPath, this.offsetIndex.encode());
    this.#fs.writeFileSync(this.timeIndexPath, this.timeIndex.encode());
  }

  /** fsyncs the index files written by {@linkcode writeIndexFiles}. */
  async syncIndexFiles(): Promise<void> {
    for (const path of [this.indexPath, this.timeIndexPath]) {
      const f = await this.#fs.open(path, { write: true });
      try {
        await f.syncData();
      } finally {
        f.close();
      }
    }
  }

  /**
   * Truncates the file at `position` (a batch boundary) and rebuilds the indexes and
   * counters from what remains.
   */
  truncateToPosition(position: number, indexIntervalBytes: number): void {
    this.#generation++;
    this.#file.truncateSync(position);
    this.#handlePos = -1;
    this.recover(indexIntervalBytes, false);
    removeIfExists(this.#fs, this.indexPath);
    removeIfExists(this.#fs, this.timeIndexPath);
  }

  close(): void {
    if (this.#closed) return;
    this.#generation++;
    this.#closed = true;
    this.#file.close();
  }

  /** Closes the segment and removes its files. */
  remove(): void {
    this.close();
    removeIfExists(this.#fs, this.logPath);
    removeIfExists(this.#fs, this.indexPath);
    removeIfExists(this.#fs, this.timeIndexPath);
  }
}

function removeIfExists(fs: FileSystem, path: string): void {
  try {
    fs.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
