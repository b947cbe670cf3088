/**
 * The I/O shell around one partition's {@linkcode ProducerStateManager}: rebuilds it when
 * the partition opens (snapshot, then a scan of the batch headers after it), keeps it
 * current after leader appends, and writes snapshots so a restart does not rescan the
 * whole log.
 */
import { join } from "node:path";
import type { PartitionLog } from "../log/mod.ts";
import {
  BATCH_HEADER_SIZE,
  type BatchHeader,
  isControl,
  lastOffsetOf,
  readBatchHeader,
} from "../protocol/mod.ts";
import { denoFs, type FileSystem, syncDir } from "../runtime/fs.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { getLogger } from "../util/log.ts";
import { type DuplicateBatch, ProducerStateManager } from "./producer_state.ts";
import {
  type BatchIdentity,
  decodeSnapshot,
  encodeSnapshot,
  type ProducerStateSnapshot,
} from "./producer_state_snapshot.ts";

const log = getLogger(["tidelog", "producer"]);

/** The snapshot file in a partition's folder. */
export const PRODUCER_STATE_FILE = "producer-state.json";

/** Bytes read per step when scanning the log for producer batches. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

/** Options of {@linkcode PartitionProducerState.load}. */
export interface PartitionProducerStateOptions {
  clock?: Clock;
  /** Where the snapshot file lives (the partition log's own disk). */
  fs?: FileSystem;
  /**
   * Bytes appended between two background snapshots; bounds the scan at start-up after a
   * crash (a clean close always writes one).
   * @default {64 MiB}
   */
  snapshotIntervalBytes?: number;
  /**
   * `producer.id.expiration.ms`: a producer not heard from for this long is forgotten.
   * @default {86_400_000}
   */
  expirationMs?: number;
  /**
   * `producer.id.expiration.check.interval.ms`: how often appends look for expired producers.
   * @default {600_000}
   */
  expirationCheckIntervalMs?: number;
}

/** How a load went, for logs and tests. */
export interface ProducerStateLoadInfo {
  /** The offset of the snapshot used, or null if none was (missing, corrupt or stale). */
  snapshotOffset: number | null;
  /** Where the log scan started. */
  scannedFrom: number;
  /** Batches read by the scan. */
  scannedBatches: number;
  /** Bytes read by the scan. */
  scannedBytes: number;
}

/**
 * One partition's producer state with its persistence.
 *
 * Contract: `load()` before the first append; `check()` the batches of each leader
 * append before writing them and `onAppended()` right after (both synchronous, so no
 * other append can come between); `close()` before the log closes; `abandon()` before
 * the partition's folder is deleted.
 */
export class PartitionProducerState {
  readonly state: ProducerStateManager;
  readonly loadInfo: ProducerStateLoadInfo;
  readonly #log: PartitionLog;
  readonly #clock: Clock;
  readonly #fs: FileSystem;
  readonly #path: string;
  readonly #snapshotIntervalBytes: number;
  readonly #expirationMs: number;
  readonly #expirationCheckIntervalMs: number;
  #lastExpiryCheckMs: number;
  #bytesSinceSnapshot = 0;
  /** The snapshot writes run one at a time, chained here. */
  #writing: Promise<void> = Promise.resolve();
  #backgroundWrite = false;
  /** The log end offset the snapshot file on disk covers; null if there is none. */
  #snapshotOffset: number | null;
  #closed = false;

  private constructor(
    plog: PartitionLog,
    state: ProducerStateManager,
    loadInfo: ProducerStateLoadInfo,
    options: PartitionProducerStateOptions,
  ) {
    this.#log = plog;
    this.state = state;
    this.loadInfo = loadInfo;
    this.#clock = options.clock ?? systemClock;
    this.#fs = options.fs ?? denoFs;
    this.#path = join(plog.dir, PRODUCER_STATE_FILE);
    this.#snapshotIntervalBytes = options.snapshotIntervalBytes ?? 64 * 1024 * 1024;
    this.#expirationMs = options.expirationMs ?? 86_400_000;
    this.#expirationCheckIntervalMs = options.expirationCheckIntervalMs ?? 600_000;
    this.#lastExpiryCheckMs = this.#clock.nowMs();
    this.#snapshotOffset = loadInfo.snapshotOffset;
  }

  /**
   * Rebuilds the state of `plog`: loads the snapshot if it still matches the log (it is
   * ignored, and deleted, if it lies beyond the log end, its last batch differs from the
   * log's, or it cannot be decoded), then replays the batch headers after it.
   */
  static async load(
    plog: PartitionLog,
    options: PartitionProducerStateOptions = {},
  ): Promise<PartitionProducerState> {
    const clock = options.clock ?? systemClock;
    const fs = options.fs ?? denoFs;
    const now = clock.nowMs();
    const state = new ProducerStateManager(plog.name);
    const path = join(plog.dir, PRODUCER_STATE_FILE);
    let from = plog.logStartOffset;
    let snapshotOffset: number | null = null;
    const snapshot = await readSnapshot(fs, path, plog.name);
    if (snapshot !== null) {
      const problem = snapshotProblem(plog, snapshot);
      if (problem === null) {
        state.load(snapshot.entries);
        snapshotOffset = snapshot.offset;
        from = Math.max(from, snapshot.offset);
      } else {
        log.warn("Ignoring producer state snapshot of {partition}: {problem}", {
          partition: plog.name,
          problem,
        });
        await fs.remove(path).catch(() => {});
      }
    }
    const { batches: scannedBatches, bytes: scannedBytes } = replayLog(plog, state, from, now);
    const expired = state.removeExpired(now, options.expirationMs ?? 86_400_000);
    const info = { snapshotOffset, scannedFrom: from, scannedBatches, scannedBytes };
    log.debug(
      "Loaded producer state of {partition}: {producers} producers, snapshot {snapshot}, scanned {batches} batches from offset {from}, {expired} expired",
      {
        partition: plog.name,
        producers: state.size,
        snapshot: snapshotOffset,
        batches: scannedBatches,
        from,
        expired,
      },
    );
    const loaded = new PartitionProducerState(plog, state, info, options);
    // A long scan is not repeated after a crash: snapshot now rather than at the next
    // interval or clean close.
    loaded.#bytesSinceSnapshot = scannedBytes;
    loaded.#maybeSnapshotInBackground();
    return loaded;
  }

  /**
   * Checks a leader append's batches (see {@linkcode ProducerStateManager.checkAppend}).
   * Returns the duplicated batch, if the request is a retry of one already appended.
   *
   * @throws {ProducerStateError} if a batch is refused
   */
  check(headers: readonly BatchHeader[]): DuplicateBatch | null {
    return this.state.checkAppend(headers);
  }

  /**
   * Records the batches just appended from `baseOffset` on (contiguous, in order), with
   * their stored max timestamp (`logAppendTimeMs` when not -1); `bytes` is their size.
   * May start a background snapshot, and now and then forgets expired producers.
   */
  onAppended(
    headers: readonly BatchHeader[],
    baseOffset: number,
    options: { logAppendTimeMs: number; bytes: number },
  ): void {
    const now = this.#clock.nowMs();
    let offset = baseOffset;
    for (const h of headers) {
      if (h.producerId >= 0n && !isControl(h)) {
        const maxTimestamp = options.logAppendTimeMs >= 0
          ? options.logAppendTimeMs
          : h.maxTimestamp;
        this.state.onBatchAppended({ ...h, maxTimestamp }, offset, now);
      }
      offset += h.lastOffsetDelta + 1;
    }
    if (now - this.#lastExpiryCheckMs >= this.#expirationCheckIntervalMs) {
      this.#lastExpiryCheckMs = now;
      const removed = this.state.removeExpired(now, this.#expirationMs);
      if (removed > 0) {
        log.info("Expired {count} idle producer(s) of {partition}", {
          count: removed,
          partition: this.#log.name,
        });
      }
    }
    this.#bytesSinceSnapshot += options.bytes;
    this.#maybeSnapshotInBackground();
  }

  #maybeSnapshotInBackground(): void {
    if (this.#bytesSinceSnapshot >= this.#snapshotIntervalBytes && !this.#backgroundWrite) {
      this.#backgroundWrite = true;
      this.snapshot().catch((err) => {
        // A missing snapshot only costs a longer scan at the next start.
        log.warn("Cannot write producer state snapshot of {partition}: {error}", {
          partition: this.#log.name,
          error: err,
        });
      }).finally(() => {
        this.#backgroundWrite = false;
      });
    }
  }

  /**
   * Writes a snapshot of the state as of the log end now (tmp file, fsync, rename,
   * directory fsync), after any write in flight.
   */
  snapshot(): Promise<void> {
    const p = this.#writing.then(() => this.#write());
    this.#writing = p.catch(() => {});
    return p;
  }

  async #write(): Promise<void> {
    // Captured synchronously, so no append can fall between the offset and the state.
    const snapshot = this.#capture();
    const text = encodeSnapshot(snapshot);
    this.#bytesSinceSnapshot = 0;
    const tmp = `${this.#path}.tmp`;
    await this.#fs.writeTextFile(tmp, text);
    {
      using f = await this.#fs.open(tmp, { read: true, write: true });
      await f.sync();
    }
    await this.#fs.rename(tmp, this.#path);
    await syncDir(this.#fs, this.#log.dir);
    this.#snapshotOffset = snapshot.offset;
  }

  #capture(): ProducerStateSnapshot {
    const offset = this.#log.logEndOffset;
    const lastBatch = offset > this.#log.logStartOffset
      ? batchIdentityAt(this.#log, offset - 1)
      : null;
    return { offset, lastBatch, entries: this.state.entries() };
  }

  /**
   * Writes a final snapshot (call before the log closes), unless the one on disk already
   * covers the log end. Never throws: a failure is logged, and the next start scans the
   * log instead.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#writing;
      if (this.#snapshotOffset === this.#log.logEndOffset) return;
      await this.snapshot();
    } catch (err) {
      log.warn("Cannot write producer state snapshot of {partition} on close: {error}", {
        partition: this.#log.name,
        error: err,
      });
    }
  }

  /** Waits for any snapshot write in flight and writes no more (the partition is deleted). */
  async abandon(): Promise<void> {
    this.#closed = true;
    await this.#writing;
  }
}

/** Reads and decodes the snapshot at `path`; null if missing or unreadable (logged). */
async function readSnapshot(
  fs: FileSystem,
  path: string,
  name: string,
): Promise<ProducerStateSnapshot | null> {
  let text: string;
  try {
    text = await fs.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return decodeSnapshot(text);
  } catch (err) {
    log.warn("Ignoring corrupt producer state snapshot of {partition}: {error}", {
      partition: name,
      error: err,
    });
    return null;
  }
}

/** Why `snapshot` cannot be trusted for `plog`, or null if it can. */
function snapshotProblem(plog: PartitionLog, snapshot: ProducerStateSnapshot): string | null {
  if (snapshot.offset > plog.logEndOffset) {
    return `it covers offsets up to ${snapshot.offset}, beyond the log end ${plog.logEndOffset}`;
  }
  // Nothing below the snapshot is left in the log: there is nothing to compare, and the
  // scan starts at the log start anyway.
  if (snapshot.offset <= plog.logStartOffset) return null;
  const expected = snapshot.lastBatch;
  if (expected === null) return "it names no last batch but the log holds batches below it";
  const actual = batchIdentityAt(plog, snapshot.offset - 1);
  if (
    actual === null || actual.baseOffset !== expected.baseOffset ||
    actual.lastOffset !== expected.lastOffset || actual.crc !== expected.crc
  ) {
    return `its last batch (offsets ${expected.baseOffset}-${expected.lastOffset}) differs from the log's`;
  }
  return null;
}

/** The batch of `plog` containing `offset`, identified by offsets and CRC; null if none. */
function batchIdentityAt(plog: PartitionLog, offset: number): BatchIdentity | null {
  const { records } = plog.read(offset, 1, { minOneMessage: true });
  if (records.length < BATCH_HEADER_SIZE) return null;
  const h = readBatchHeader(records, 0);
  return { baseOffset: h.baseOffset, lastOffset: lastOffsetOf(h), crc: h.crc };
}

/**
 * Replays the producer batches of `plog` from `from` to its end into `state` (headers
 * only, in chunks). Returns the number of batches and bytes read.
 */
function replayLog(
  plog: PartitionLog,
  state: ProducerStateManager,
  from: number,
  nowMs: number,
): { batches: number; bytes: number } {
  const end = plog.logEndOffset;
  let offset = from;
  let batches = 0;
  let bytes = 0;
  while (offset < end) {
    const { records } = plog.read(offset, SCAN_CHUNK_BYTES, { minOneMessage: true });
    let pos = 0;
    let next = offset;
    while (pos + BATCH_HEADER_SIZE <= records.length) {
      const h = readBatchHeader(records, pos);
      if (pos + h.sizeInBytes > records.length) break;
      pos += h.sizeInBytes;
      const last = lastOffsetOf(h);
      // The first batch read may start before `from` (a log start inside a batch); its
      // producer state is still what the log implies.
      if (last < offset) continue;
      batches++;
      bytes += h.sizeInBytes;
      if (h.producerId >= 0n && !isControl(h)) state.onBatchAppended(h, h.baseOffset, nowMs);
      next = last + 1;
    }
    if (next <= offset) {
      log.warn(
        "Producer state scan of {partition} stopped at offset {offset} before the end {end}",
        {
          partition: plog.name,
          offset,
          end,
        },
      );
      break;
    }
    offset = next;
  }
  return { batches, bytes };
}
