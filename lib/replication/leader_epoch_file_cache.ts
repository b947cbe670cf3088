/**
 * A partition's {@linkcode LeaderEpochCache} kept in its `leader-epoch-checkpoint` file:
 * loaded and reconciled with the log on open, rewritten (atomically, in the background,
 * one write at a time) after every change.
 *
 * Crash safety: changes reach memory at once and the file a little later, so the file may
 * lag the log. On open the entries at or past the log end are dropped (a truncation that
 * did not reach the file), the log start is applied, and the last batch's
 * partitionLeaderEpoch is compared with the latest entry: a newer epoch in the log means
 * the file missed assignments, which are recovered by scanning batch headers from the
 * latest entry on; anything inconsistent, missing or unreadable is rebuilt by scanning the
 * whole log (Kafka does the same in segment recovery).
 */
import type { PartitionLog } from "../log/mod.ts";
import { type BatchHeader, readBatchHeader } from "../protocol/record_batch.ts";
import { denoFs, type FileSystem } from "../runtime/fs.ts";
import { getLogger } from "../util/log.ts";
import { type EpochEndOffset, type EpochEntry, LeaderEpochCache } from "./leader_epoch_cache.ts";
import {
  readLeaderEpochCheckpoint,
  writeLeaderEpochCheckpoint,
} from "./leader_epoch_checkpoint.ts";

const log = getLogger(["tidelog", "replication", "epochs"]);

/** Bytes read per step when scanning a log's batch headers. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

/** Options of {@linkcode LeaderEpochFileCache.open}. */
export interface LeaderEpochFileCacheOptions {
  /** Where the checkpoint file lives (the partition log's own disk). */
  fs?: FileSystem;
}

/** The durable leader-epoch cache of one partition. */
export class LeaderEpochFileCache {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #name: string;
  readonly #cache: LeaderEpochCache;
  /** Bumped on every change; the file holds the state of version #persisted. */
  #version = 0;
  #persisted = 0;
  /** The write loop in flight; it never rejects (failures are logged and kept). */
  #flushing: Promise<void> | null = null;
  #failure: unknown = null;
  #closed = false;

  private constructor(
    fs: FileSystem,
    dir: string,
    name: string,
    cache: LeaderEpochCache,
    dirty: boolean,
  ) {
    this.#fs = fs;
    this.#dir = dir;
    this.#name = name;
    this.#cache = cache;
    if (dirty) this.#changed();
  }

  /**
   * Loads the checkpoint in `partitionLog.dir` and reconciles it with the log (see the
   * module doc); the reconciled cache is written back before this resolves if it changed.
   */
  static async open(
    partitionLog: PartitionLog,
    options: LeaderEpochFileCacheOptions = {},
  ): Promise<LeaderEpochFileCache> {
    const fs = options.fs ?? denoFs;
    const { dir, name } = partitionLog;
    const loaded = await readLeaderEpochCheckpoint(fs, dir);
    const start = partitionLog.logStartOffset;
    const end = partitionLog.logEndOffset;
    let cache: LeaderEpochCache | null = null;
    let dirty = false;
    let rebuild: string | null = null;
    if (loaded === "invalid") {
      rebuild = "the checkpoint is unreadable";
    } else if (loaded === null) {
      if (end > start) rebuild = "the checkpoint is missing";
      else cache = new LeaderEpochCache();
    } else {
      cache = new LeaderEpochCache(loaded);
      dirty = cache.truncateFromEnd(end);
      dirty = cache.truncateFromStart(start) || dirty;
      const last = end > start ? lastBatchHeader(partitionLog) : null;
      if (last !== null && last.partitionLeaderEpoch >= 0) {
        const latest = cache.latestEntry;
        if (latest === undefined || last.partitionLeaderEpoch > latest.epoch) {
          // Epochs assigned after the file's last write: recover them from the log.
          dirty = scanEpochs(partitionLog, cache, latest?.startOffset ?? start) || dirty;
          dirty = cache.truncateFromStart(start) || dirty;
          log.info("Recovered leader epochs of {name} from the log: latest {epoch}", {
            name,
            epoch: cache.latestEpoch,
          });
        } else if (
          last.partitionLeaderEpoch < latest.epoch ||
          cache.epochForOffset(last.baseOffset) !== last.partitionLeaderEpoch
        ) {
          rebuild =
            `the checkpoint does not match the log's last batch (epoch ${last.partitionLeaderEpoch})`;
          cache = null;
        }
      }
    }
    if (cache === null) {
      cache = new LeaderEpochCache();
      scanEpochs(partitionLog, cache, start);
      cache.truncateFromStart(start);
      dirty = true;
      log.warn("Rebuilt leader epochs of {name} from the log ({reason}): {count} entries", {
        name,
        reason: rebuild,
        count: cache.size,
      });
    }
    const c = new LeaderEpochFileCache(fs, dir, name, cache, dirty);
    await c.flush();
    return c;
  }

  /** A copy of the entries, ascending. */
  get entries(): EpochEntry[] {
    return this.#cache.entries;
  }

  /** The latest epoch, or -1 when there is none. */
  get latestEpoch(): number {
    return this.#cache.latestEpoch;
  }

  /** The latest entry, if any. */
  get latestEntry(): EpochEntry | undefined {
    return this.#cache.latestEntry;
  }

  /** See {@linkcode LeaderEpochCache.endOffsetFor}. */
  endOffsetFor(requestedEpoch: number, logEndOffset: number): EpochEndOffset {
    return this.#cache.endOffsetFor(requestedEpoch, logEndOffset);
  }

  /** See {@linkcode LeaderEpochCache.assign}; a change is written in the background. */
  assign(epoch: number, startOffset: number): boolean {
    this.#checkOpen();
    const changed = this.#cache.assign(epoch, startOffset);
    if (changed) {
      log.debug("Leader epoch {epoch} of {name} starts at offset {offset}", {
        epoch,
        name: this.#name,
        offset: startOffset,
      });
      this.#changed();
    }
    return changed;
  }

  /** See {@linkcode LeaderEpochCache.truncateFromEnd}; call after the log is truncated. */
  truncateFromEnd(endOffset: number): boolean {
    this.#checkOpen();
    const changed = this.#cache.truncateFromEnd(endOffset);
    if (changed) this.#changed();
    return changed;
  }

  /** Removes every entry (the log was emptied). */
  clear(): boolean {
    this.#checkOpen();
    const changed = this.#cache.clear();
    if (changed) this.#changed();
    return changed;
  }

  /** See {@linkcode LeaderEpochCache.truncateFromStart}; call after the log start moves. */
  truncateFromStart(startOffset: number): boolean {
    this.#checkOpen();
    const changed = this.#cache.truncateFromStart(startOffset);
    if (changed) this.#changed();
    return changed;
  }

  /**
   * Resolves once the file holds every change made before the call.
   *
   * @throws the write's error if writing the file failed
   */
  async flush(): Promise<void> {
    const target = this.#version;
    while (this.#persisted < target) {
      this.#flushing ??= this.#writeLoop();
      await this.#flushing;
      if (this.#persisted < target && this.#failure !== null) throw this.#failure;
    }
  }

  /** Writes pending changes and refuses further ones. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new TypeError(`Cannot change the leader epochs of "${this.#name}": they are closed`);
    }
  }

  #changed(): void {
    this.#version++;
    this.#flushing ??= this.#writeLoop();
  }

  async #writeLoop(): Promise<void> {
    try {
      while (this.#persisted < this.#version) {
        const version = this.#version;
        await writeLeaderEpochCheckpoint(this.#fs, this.#dir, this.#cache.entries);
        this.#persisted = version;
        this.#failure = null;
      }
    } catch (err) {
      this.#failure = err;
      log.error("Cannot write the leader epoch checkpoint of {name}: {error}", {
        name: this.#name,
        error: err,
      });
    } finally {
      this.#flushing = null;
    }
  }
}

/** The header of the log's last batch. */
function lastBatchHeader(partitionLog: PartitionLog): BatchHeader | null {
  const { records } = partitionLog.read(partitionLog.logEndOffset - 1, 0, { minOneMessage: true });
  return records.length === 0 ? null : readBatchHeader(records);
}

/**
 * Assigns, from `fromOffset` to the log end, every batch epoch newer than the cache's
 * latest at the batch's base offset (Kafka's segment recovery rule).
 */
function scanEpochs(
  partitionLog: PartitionLog,
  cache: LeaderEpochCache,
  fromOffset: number,
): boolean {
  let changed = false;
  let offset = Math.max(fromOffset, partitionLog.logStartOffset);
  while (offset < partitionLog.logEndOffset) {
    const { records } = partitionLog.read(offset, SCAN_CHUNK_BYTES, { minOneMessage: true });
    if (records.length === 0) break;
    let pos = 0;
    while (pos < records.length) {
      const h = readBatchHeader(records, pos);
      if (h.partitionLeaderEpoch >= 0 && h.partitionLeaderEpoch > cache.latestEpoch) {
        changed = cache.assign(h.partitionLeaderEpoch, h.baseOffset) || changed;
      }
      offset = h.baseOffset + h.lastOffsetDelta + 1;
      pos += h.sizeInBytes;
    }
  }
  return changed;
}
