/**
 * The I/O shell around one partition's {@linkcode ProducerStateManager}: rebuilds it when
 * the partition opens or its log was truncated (the newest usable snapshot, then a scan of
 * the batch headers after it, in chunks that yield to the event loop), keeps it current
 * after appends, and writes snapshots so a restart or a truncation does not rescan the
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
  readControlMarker,
} from "../protocol/mod.ts";
import { denoFs, type FileSystem, syncDir } from "../runtime/fs.ts";
import { systemTimers, type Timers, yieldToEventLoop } from "../runtime/timers.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { getLogger } from "../util/log.ts";
import {
  type AppendOrigin,
  type DuplicateBatch,
  type ProducerBatch,
  ProducerStateManager,
} from "./producer_state.ts";
import {
  type BatchIdentity,
  decodeSnapshot,
  encodeSnapshot,
  type ProducerStateSnapshot,
} from "./producer_state_snapshot.ts";

const log = getLogger(["tidelog", "producer"]);

/**
 * The single snapshot file of older data dirs: still read (as one more candidate, by the
 * offset inside it), never written; removed once a newer snapshot exists.
 */
export const PRODUCER_STATE_FILE = "producer-state.json";

const SNAPSHOT_FILE = /^producer-state-(\d{20})\.json$/;

/** The name of the snapshot covering the offsets below `offset`, in the partition folder. */
export function producerStateSnapshotFile(offset: number): string {
  return `producer-state-${String(offset).padStart(20, "0")}.json`;
}

/**
 * Snapshots kept, newest first: the older ones let a reload after a truncation start
 * close below the new log end instead of at the log start (Kafka keeps one per segment).
 */
const SNAPSHOTS_KEPT = 3;

/** Bytes read per step when scanning the log for producer batches. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

/** Rebuilds started over because the log was truncated under them, before giving up. */
const MAX_LOAD_ATTEMPTS = 5;

/** Options of {@linkcode PartitionProducerState.load}. */
export interface PartitionProducerStateOptions {
  clock?: Clock;
  /** Where the snapshot files live (the partition log's own disk). */
  fs?: FileSystem;
  /** Gives the event loop back between replay chunks (a simulation passes its own). */
  timers?: Timers;
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
  /**
   * A log replay yields to the event loop after this many bytes of batches, so that
   * rebuilding a large partition does not stall every other connection.
   * @default {4 MiB}
   */
  replayChunkBytes?: number;
  /**
   * ... or after this many batches, whichever comes first.
   * @default {4096}
   */
  replayChunkBatches?: number;
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
 * other append can come between); after a truncation of the log, `reloadAfterTruncation()`
 * and use the instance it returns; `close()` before the log closes; `abandon()` before the
 * partition's folder is deleted.
 */
export class PartitionProducerState {
  readonly state: ProducerStateManager;
  readonly loadInfo: ProducerStateLoadInfo;
  readonly #log: PartitionLog;
  readonly #options: PartitionProducerStateOptions;
  readonly #clock: Clock;
  readonly #fs: FileSystem;
  readonly #snapshotIntervalBytes: number;
  readonly #expirationMs: number;
  readonly #expirationCheckIntervalMs: number;
  #lastExpiryCheckMs: number;
  #bytesSinceSnapshot = 0;
  /** The snapshot writes run one at a time, chained here. */
  #writing: Promise<void> = Promise.resolve();
  #backgroundWrite = false;
  /** The offset of the newest snapshot file on disk; null if there is none. */
  #snapshotOffset: number | null;
  /**
   * The log end offset the state covers. Equal to the log's between calls, unless the log
   * was truncated under it: then the state describes offsets that are gone, and no
   * snapshot of it may be written.
   */
  #mapEnd: number;
  /** The log incarnation the state was built from. */
  readonly #incarnation: number;
  #closed = false;
  /** Replaced by a reload or the partition deleted: writes nothing any more. */
  #abandoned = false;

  private constructor(
    plog: PartitionLog,
    state: ProducerStateManager,
    loadInfo: ProducerStateLoadInfo,
    options: PartitionProducerStateOptions,
    mapEnd: number,
  ) {
    this.#log = plog;
    this.state = state;
    this.loadInfo = loadInfo;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#fs = options.fs ?? denoFs;
    this.#snapshotIntervalBytes = options.snapshotIntervalBytes ?? 64 * 1024 * 1024;
    this.#expirationMs = options.expirationMs ?? 86_400_000;
    this.#expirationCheckIntervalMs = options.expirationCheckIntervalMs ?? 600_000;
    this.#lastExpiryCheckMs = this.#clock.nowMs();
    this.#snapshotOffset = loadInfo.snapshotOffset;
    this.#mapEnd = mapEnd;
    this.#incarnation = plog.incarnation;
  }

  /**
   * Rebuilds the state of `plog`: loads the newest snapshot at or below the log end that
   * still matches the log, then replays the batch headers after it, yielding to the event
   * loop between chunks. Snapshots beyond the log end (their offsets were truncated), from
   * another incarnation of the log (taken before a `truncateFullyAndStartAt`), whose last
   * batch differs from the log's, or that cannot be decoded are deleted. The log must not
   * be appended to or truncated until this resolves.
   */
  static async load(
    plog: PartitionLog,
    options: PartitionProducerStateOptions = {},
  ): Promise<PartitionProducerState> {
    for (let attempt = 1;; attempt++) {
      const loaded = await loadOnce(plog, options);
      if (loaded !== null) {
        const { state, info, mapEnd } = loaded;
        const pps = new PartitionProducerState(plog, state, info, options, mapEnd);
        // A long scan is not repeated after a crash: snapshot now rather than at the next
        // interval or clean close.
        pps.#bytesSinceSnapshot = info.scannedBytes;
        pps.#maybeSnapshotInBackground();
        return pps;
      }
      if (attempt >= MAX_LOAD_ATTEMPTS) {
        throw new Error(
          `Cannot rebuild the producer state of ${plog.name}: the log was truncated during each of ${attempt} attempts`,
        );
      }
      log.warn("The log of {partition} was truncated while its producer state was rebuilt", {
        partition: plog.name,
      });
    }
  }

  /**
   * Rebuilds the state after the log was truncated (`truncateTo`) or emptied and
   * restarted (`truncateFullyAndStartAt`); returns the instance to use from now on. This
   * one stops writing snapshots (waiting for a write in flight), then the rebuild runs as
   * {@linkcode PartitionProducerState.load} with the same options: from the newest
   * snapshot at or below the new log end (none survives a restart of the log), replaying
   * the rest in chunks that yield to the event loop. The log must not be appended to or
   * truncated until this resolves; pass this instance nowhere afterwards.
   */
  async reloadAfterTruncation(): Promise<PartitionProducerState> {
    await this.abandon();
    return await PartitionProducerState.load(this.#log, this.#options);
  }

  /**
   * Checks a leader append's batches (see {@linkcode ProducerStateManager.checkAppend}).
   * Returns the duplicated batch, if the request is a retry of one already appended.
   *
   * @throws {ProducerStateError} if a batch is refused
   */
  check(headers: readonly BatchHeader[], origin: AppendOrigin = "client"): DuplicateBatch | null {
    return this.state.checkAppend(headers, origin);
  }

  /**
   * Records the batches just appended from `baseOffset` on (contiguous, in order; `batches`
   * are their bytes, read for the markers of control batches), with their stored max
   * timestamp (`logAppendTimeMs` when not -1); `bytes` is their size. May start a background
   * snapshot, and now and then forgets expired producers.
   */
  onAppended(
    headers: readonly BatchHeader[],
    batches: readonly Uint8Array[],
    baseOffset: number,
    options: { logAppendTimeMs: number; bytes: number },
  ): void {
    const now = this.#clock.nowMs();
    let offset = baseOffset;
    headers.forEach((h, i) => {
      const maxTimestamp = options.logAppendTimeMs >= 0 ? options.logAppendTimeMs : h.maxTimestamp;
      applyBatch(this.state, { ...h, maxTimestamp }, batches[i]!, offset, now);
      offset += h.lastOffsetDelta + 1;
    });
    this.#mapEnd = offset;
    if (now - this.#lastExpiryCheckMs >= this.#expirationCheckIntervalMs) {
      this.#lastExpiryCheckMs = now;
      this.state.trimAborted(this.#log.logStartOffset);
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
    if (snapshot === null) return;
    const text = encodeSnapshot(snapshot);
    this.#bytesSinceSnapshot = 0;
    const path = join(this.#log.dir, producerStateSnapshotFile(snapshot.offset));
    const tmp = `${path}.tmp`;
    await this.#fs.writeTextFile(tmp, text);
    {
      using f = await this.#fs.open(tmp, { read: true, write: true });
      await f.sync();
    }
    await this.#fs.rename(tmp, path);
    await syncDir(this.#fs, this.#log.dir);
    this.#snapshotOffset = snapshot.offset;
    await this.#pruneSnapshots();
  }

  /** The state as of the log end now; null if it no longer describes the log. */
  #capture(): ProducerStateSnapshot | null {
    if (this.#abandoned) return null;
    const offset = this.#mapEnd;
    if (this.#log.logEndOffset !== offset || this.#log.incarnation !== this.#incarnation) {
      // The log was truncated under this state: a snapshot of it would pass for the
      // truncated log's (same end, same last batch). The reload writes the real one.
      log.debug("Not snapshotting the producer state of {partition}: its log was truncated", {
        partition: this.#log.name,
      });
      return null;
    }
    const lastBatch = offset > this.#log.logStartOffset
      ? batchIdentityAt(this.#log, offset - 1)
      : null;
    this.state.trimAborted(this.#log.logStartOffset);
    return {
      offset,
      lastBatch,
      logIncarnation: this.#incarnation,
      entries: this.state.entries(),
      aborted: [...this.state.allAborted()],
    };
  }

  /** Keeps the newest snapshots; the single file of older data dirs is superseded. */
  async #pruneSnapshots(): Promise<void> {
    const files = await listSnapshotFiles(this.#fs, this.#log.dir);
    const doomed = files.numbered.slice(SNAPSHOTS_KEPT).map((f) => f.path);
    if (files.legacy !== null) doomed.push(files.legacy);
    for (const path of doomed) await this.#fs.remove(path).catch(() => {});
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

  /**
   * Waits for any snapshot write in flight and writes no more (the partition is deleted,
   * or a reload replaces this instance).
   */
  async abandon(): Promise<void> {
    this.#closed = true;
    this.#abandoned = true;
    await this.#writing;
  }
}

/** The snapshot files in `dir`, newest first, and the older single file if present. */
async function listSnapshotFiles(
  fs: FileSystem,
  dir: string,
): Promise<{ numbered: { offset: number; path: string }[]; legacy: string | null }> {
  const numbered: { offset: number; path: string }[] = [];
  let legacy: string | null = null;
  for await (const e of fs.readDir(dir)) {
    const m = SNAPSHOT_FILE.exec(e.name);
    if (m !== null) numbered.push({ offset: Number(m[1]), path: join(dir, e.name) });
    else if (e.name === PRODUCER_STATE_FILE) legacy = join(dir, e.name);
  }
  numbered.sort((a, b) => b.offset - a.offset);
  return { numbered, legacy };
}

/**
 * One rebuild of `plog`'s producer state (see {@linkcode PartitionProducerState.load});
 * null if the log was truncated under it.
 */
async function loadOnce(
  plog: PartitionLog,
  options: PartitionProducerStateOptions,
): Promise<{ state: ProducerStateManager; info: ProducerStateLoadInfo; mapEnd: number } | null> {
  const clock = options.clock ?? systemClock;
  const fs = options.fs ?? denoFs;
  const now = clock.nowMs();
  const state = new ProducerStateManager(plog.name);
  const files = await listSnapshotFiles(fs, plog.dir);
  const candidates: { offset: number; path: string; snapshot?: ProducerStateSnapshot | null }[] = [
    ...files.numbered,
  ];
  if (files.legacy !== null) {
    const snapshot = await readSnapshot(fs, files.legacy, plog.name);
    candidates.push({ offset: snapshot?.offset ?? -1, path: files.legacy, snapshot });
    candidates.sort((a, b) => b.offset - a.offset);
  }
  let chosen: ProducerStateSnapshot | null = null;
  let removed = false;
  for (const c of candidates) {
    // Older snapshots than the one used stay, for a later deeper truncation.
    if (chosen !== null && c.offset <= plog.logEndOffset) continue;
    const snapshot = c.snapshot !== undefined
      ? c.snapshot
      : await readSnapshot(fs, c.path, plog.name);
    const problem = snapshot === null
      ? "it cannot be decoded"
      : snapshot.offset !== c.offset && c.path !== files.legacy
      ? `it holds offset ${snapshot.offset}, not the ${c.offset} of its name`
      : snapshotProblem(plog, snapshot);
    if (problem === null && snapshot !== null) {
      chosen = snapshot;
      continue;
    }
    log.warn("Ignoring producer state snapshot {file} of {partition}: {problem}", {
      file: c.path,
      partition: plog.name,
      problem,
    });
    await fs.remove(c.path).catch(() => {});
    removed = true;
  }
  // The deletions must not come back after a crash: the log may grow past their offsets.
  if (removed) await syncDir(fs, plog.dir);
  let from = plog.logStartOffset;
  if (chosen !== null) {
    state.load(chosen.entries, chosen.aborted ?? []);
    from = Math.max(from, chosen.offset);
  }
  const replayed = await replayLog(plog, state, from, now, {
    timers: options.timers ?? systemTimers,
    chunkBytes: options.replayChunkBytes ?? 4 * 1024 * 1024,
    chunkBatches: options.replayChunkBatches ?? 4096,
  });
  if (replayed === null) return null;
  const expired = state.removeExpired(now, options.expirationMs ?? 86_400_000);
  const snapshotOffset = chosen?.offset ?? null;
  const info = {
    snapshotOffset,
    scannedFrom: from,
    scannedBatches: replayed.batches,
    scannedBytes: replayed.bytes,
  };
  log.debug(
    "Loaded producer state of {partition}: {producers} producers, snapshot {snapshot}, scanned {batches} batches from offset {from}, {expired} expired",
    {
      partition: plog.name,
      producers: state.size,
      snapshot: snapshotOffset,
      batches: replayed.batches,
      from,
      expired,
    },
  );
  return { state, info, mapEnd: replayed.end };
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
    log.warn("Ignoring corrupt producer state snapshot {path} of {partition}: {error}", {
      path,
      partition: name,
      error: err,
    });
    return null;
  }
}

/** Why `snapshot` cannot be trusted for `plog`, or null if it can. */
function snapshotProblem(plog: PartitionLog, snapshot: ProducerStateSnapshot): string | null {
  if (snapshot.logIncarnation !== plog.incarnation || plog.incarnation < 0) {
    return `it was taken from incarnation ${snapshot.logIncarnation} of the log, which is now at ${plog.incarnation} (emptied and restarted since)`;
  }
  if (snapshot.offset > plog.logEndOffset) {
    return `it covers offsets up to ${snapshot.offset}, beyond the log end ${plog.logEndOffset}`;
  }
  // Nothing below the snapshot is left in the log: there is nothing to compare, and the
  // scan starts at the log start anyway (the incarnation says it is this log's history).
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
  if (offset < plog.logStartOffset || offset >= plog.logEndOffset) return null;
  const { records } = plog.read(offset, 1, { minOneMessage: true });
  if (records.length < BATCH_HEADER_SIZE) return null;
  const h = readBatchHeader(records, 0);
  return { baseOffset: h.baseOffset, lastOffset: lastOffsetOf(h), crc: h.crc };
}

/**
 * Replays the producer batches of `plog` from `from` to its end into `state` (headers
 * only, in chunks), giving the event loop back every `chunkBytes` / `chunkBatches`.
 * Returns the batches and bytes read and the log end reached, or null if the log was
 * truncated (or restarted) meanwhile: what was replayed may then be gone.
 */
async function replayLog(
  plog: PartitionLog,
  state: ProducerStateManager,
  from: number,
  nowMs: number,
  pace: { timers: Timers; chunkBytes: number; chunkBatches: number },
): Promise<{ batches: number; bytes: number; end: number } | null> {
  const incarnation = plog.incarnation;
  let offset = from;
  let batches = 0;
  let bytes = 0;
  let chunkBytes = 0;
  let chunkBatches = 0;
  let last: BatchIdentity | null = null;
  /** Gives the event loop back; false if the log changed under the replay meanwhile. */
  const pause = async (): Promise<boolean> => {
    chunkBytes = 0;
    chunkBatches = 0;
    await yieldToEventLoop(pace.timers);
    if (plog.incarnation !== incarnation || offset > plog.logEndOffset) return false;
    if (last !== null && last.lastOffset >= plog.logStartOffset) {
      const now = batchIdentityAt(plog, last.lastOffset);
      if (now === null || now.baseOffset !== last.baseOffset || now.crc !== last.crc) return false;
    }
    // Retention may have deleted segments meanwhile: their producers are gone with them.
    if (offset < plog.logStartOffset) offset = plog.logStartOffset;
    return true;
  };
  for (;;) {
    const end = plog.logEndOffset;
    if (offset >= end) return { batches, bytes, end };
    // A copy: it stays valid while the replay yields (the pause checks the log kept it).
    const { records } = plog.read(offset, SCAN_CHUNK_BYTES, { minOneMessage: true });
    let pos = 0;
    const before = offset;
    while (pos + BATCH_HEADER_SIZE <= records.length) {
      const h = readBatchHeader(records, pos);
      if (pos + h.sizeInBytes > records.length) break;
      pos += h.sizeInBytes;
      const lastOffset = lastOffsetOf(h);
      // The first batch read may start before `from` (a log start inside a batch); its
      // producer state is still what the log implies.
      if (lastOffset < offset) continue;
      batches++;
      chunkBatches++;
      bytes += h.sizeInBytes;
      chunkBytes += h.sizeInBytes;
      applyBatch(state, h, records.subarray(pos - h.sizeInBytes, pos), h.baseOffset, nowMs);
      last = { baseOffset: h.baseOffset, lastOffset, crc: h.crc };
      offset = lastOffset + 1;
      if (chunkBytes >= pace.chunkBytes || chunkBatches >= pace.chunkBatches) {
        if (!(await pause())) return null;
      }
    }
    if (offset <= before) {
      log.warn(
        "Producer state scan of {partition} stopped at offset {offset} before the end {end}",
        { partition: plog.name, offset, end },
      );
      return { batches, bytes, end: offset };
    }
  }
}

/**
 * Applies one batch now in the log at `baseOffset` to `state`: a producer batch, or a
 * transaction marker (control batch) that ends the producer's transaction here.
 */
function applyBatch(
  state: ProducerStateManager,
  h: BatchHeader & ProducerBatch,
  batch: Uint8Array,
  baseOffset: number,
  nowMs: number,
): void {
  if (h.producerId < 0n) return;
  if (!isControl(h)) {
    state.onBatchAppended(h, baseOffset, nowMs);
    return;
  }
  const marker = readControlMarker(batch);
  if (marker === null) return;
  state.onMarkerAppended(
    { producerId: h.producerId, producerEpoch: h.producerEpoch, ...marker },
    baseOffset,
    nowMs,
  );
}
