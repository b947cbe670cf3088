/**
 * Durable Raft storage on the node's file system (`DiskStorageOptions.fs`, the local one by
 * default; DESIGN §3):
 *
 * - `DIR/hardstate`: two 64-byte slots, each `u64 seq | u64 term | u32 vote | u64 commit |
 *   u32 crc32c`; a write goes to the older slot and is fdatasync'ed, so a torn write
 *   leaves the other slot intact. Recovery takes the valid slot with the higher seq.
 * - `DIR/log/<first-index, 20 digits>.seg`: entries framed `u32 length | u32 crc32c |
 *   entry`. On open, the first torn or corrupt frame and everything after it (including
 *   later segments) is truncated away, with a warning.
 * - `DIR/snapshot-<index>-<term>`: `u32 crc32c | snapshot`, written to a temporary file,
 *   fsynced, renamed, then the directory fsynced. Older snapshots are removed afterwards.
 *
 * Writes go to the page cache with synchronous calls (about 1 µs each); durability comes
 * from one {@linkcode DiskStorage.sync} per Ready (fdatasync of every dirty file, in
 * parallel). Nothing is "persisted" for the Raft core until `sync()` resolved.
 */
import { denoFs, ensureDir, type FileHandle, type FileSystem, syncDir } from "../runtime/fs.ts";
import { crc32c } from "../util/crc32c.ts";
import { assert } from "../util/assert.ts";
import {
  ByteReader,
  ByteWriter,
  readEntry,
  readSnapshot,
  writeEntry,
  writeSnapshot,
} from "./codec.ts";
import type { Entry, HardState, Snapshot } from "./messages.ts";
import type { RaftLogger } from "./core.ts";

/** State recovered from disk: exactly what was durable. */
export interface RecoveredState {
  readonly hardState: HardState | undefined;
  readonly snapshot: Snapshot | undefined;
  /** Contiguous entries following the snapshot (or starting at index 1). */
  readonly entries: Entry[];
}

/** Options for {@linkcode DiskStorage.open}. */
export interface DiskStorageOptions {
  /** Roll to a new segment file past this size. @default 64 MiB */
  segmentBytes?: number;
  logger?: RaftLogger;
  /** Where the files live (an in-memory disk in simulations). @default denoFs */
  fs?: FileSystem;
}

interface Segment {
  first: number;
  path: string;
  /** Byte position of each entry's frame; entry `first + i` starts at `positions[i]`. */
  positions: number[];
  size: number;
}

const HS_SLOT = 64;
const HS_BODY = 28;
const FRAME_HEADER = 8;
const silent: RaftLogger = { debug() {}, info() {}, warn() {} };

function segmentName(first: number): string {
  return `${String(first).padStart(20, "0")}.seg`;
}

/** Raft log segments, hard state and snapshots in one directory. */
export class DiskStorage {
  readonly dir: string;
  readonly #logDir: string;
  readonly #segmentBytes: number;
  readonly #logger: RaftLogger;
  readonly #fs: FileSystem;
  #segments: Segment[] = [];
  #active: FileHandle | undefined;
  #hsFile: FileHandle;
  #hsSeq: number;
  #dirty = new Set<FileHandle>();
  /** Files replaced as the active segment with writes not yet synced: closed after sync. */
  #retired: FileHandle[] = [];
  #hsDirty = false;
  #logDirDirty = false;
  #lastIndex: number;
  #snapshotIndex: number;
  #closed = false;
  readonly recovered: RecoveredState;
  readonly #writer = new ByteWriter(4096);

  private constructor(
    dir: string,
    options: DiskStorageOptions,
    hsFile: FileHandle,
    hsSeq: number,
    recovered: RecoveredState,
    segments: Segment[],
  ) {
    this.dir = dir;
    this.#logDir = `${dir}/log`;
    this.#segmentBytes = options.segmentBytes ?? 64 << 20;
    this.#logger = options.logger ?? silent;
    this.#fs = options.fs ?? denoFs;
    this.#hsFile = hsFile;
    this.#hsSeq = hsSeq;
    this.recovered = recovered;
    this.#segments = segments;
    this.#snapshotIndex = recovered.snapshot?.index ?? 0;
    const last = recovered.entries[recovered.entries.length - 1];
    this.#lastIndex = last?.index ?? this.#snapshotIndex;
  }

  /** Opens (creating if needed) the storage in `dir` and recovers its durable state. */
  static async open(dir: string, options: DiskStorageOptions = {}): Promise<DiskStorage> {
    const logger = options.logger ?? silent;
    const fs = options.fs ?? denoFs;
    await ensureDir(fs, `${dir}/log`);
    // Hard state.
    const hsPath = `${dir}/hardstate`;
    let hardState: HardState | undefined;
    let hsSeq = 0;
    let created = false;
    try {
      const bytes = await fs.readFile(hsPath);
      for (let slot = 0; slot < 2; slot++) {
        const b = bytes.subarray(slot * HS_SLOT, slot * HS_SLOT + HS_BODY + 4);
        if (b.length < HS_BODY + 4) continue;
        const r = new ByteReader(b);
        const crc = new DataView(b.buffer, b.byteOffset + HS_BODY, 4).getUint32(0);
        if (crc !== crc32c(b.subarray(0, HS_BODY))) continue;
        const seq = r.u64();
        if (seq === 0) continue;
        const hs = { term: r.u64(), vote: r.u32(), commit: r.u64() };
        if (seq > hsSeq) {
          hsSeq = seq;
          hardState = hs;
        }
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      created = true;
    }
    const hsFile = await fs.open(hsPath, { read: true, write: true, create: true });
    if (created) {
      await hsFile.write(new Uint8Array(2 * HS_SLOT));
      await hsFile.sync();
    }
    // Snapshots: the newest valid one wins; the rest (and temporaries) are removed.
    let snapshot: Snapshot | undefined;
    const snapNames: { name: string; index: number }[] = [];
    for await (const e of fs.readDir(dir)) {
      const m = /^snapshot-(\d+)-(\d+)$/.exec(e.name);
      if (m !== null) snapNames.push({ name: e.name, index: Number(m[1]) });
      else if (e.name.endsWith(".tmp")) await fs.remove(`${dir}/${e.name}`);
    }
    snapNames.sort((a, b) => b.index - a.index);
    for (const s of snapNames) {
      if (snapshot !== undefined) {
        await fs.remove(`${dir}/${s.name}`);
        continue;
      }
      const bytes = await fs.readFile(`${dir}/${s.name}`);
      try {
        const r = new ByteReader(bytes);
        const crc = r.u32();
        if (crc !== crc32c(bytes.subarray(4))) throw new SyntaxError("checksum mismatch");
        snapshot = readSnapshot(r);
      } catch (err) {
        logger.warn("Ignoring corrupt snapshot {name}: {error}", {
          name: s.name,
          error: String(err),
        });
        await fs.remove(`${dir}/${s.name}`);
      }
    }
    // Segments.
    const { entries, segments } = await DiskStorage.#recoverSegments(fs, `${dir}/log`, logger);
    // Keep log entries after the snapshot only if the log continues from it.
    let kept: Entry[] = entries;
    if (snapshot !== undefined) {
      const at = entries.find((e) => e.index === snapshot!.index);
      const first = entries[0];
      const continues = (at !== undefined && at.term === snapshot.term) ||
        (first !== undefined && first.index === snapshot.index + 1);
      kept = continues ? entries.filter((e) => e.index > snapshot!.index) : [];
    } else if (entries.length > 0 && entries[0]!.index !== 1) {
      logger.warn("Raft log starts at {first} without a snapshot: ignoring it", {
        first: entries[0]!.index,
      });
      kept = [];
    }
    const storage = new DiskStorage(dir, options, hsFile, hsSeq, {
      hardState,
      snapshot,
      entries: kept,
    }, segments);
    if (kept.length === 0 && segments.length > 0) {
      await storage.#removeSegmentsFrom(0);
      await syncDir(fs, `${dir}/log`);
    } else if (
      kept.length > 0 && kept[kept.length - 1]!.index < entries[entries.length - 1]!.index
    ) {
      storage.#truncateFrom(kept[kept.length - 1]!.index + 1);
    }
    // The hard state's name in DIR (the directories themselves: ensureDir).
    if (created) await syncDir(fs, dir);
    storage.#openTail();
    return storage;
  }

  static async #recoverSegments(
    fs: FileSystem,
    logDir: string,
    logger: RaftLogger,
  ): Promise<{ entries: Entry[]; segments: Segment[] }> {
    const names: { name: string; first: number }[] = [];
    for await (const e of fs.readDir(logDir)) {
      const m = /^(\d{20})\.seg$/.exec(e.name);
      if (m !== null) names.push({ name: e.name, first: Number(m[1]) });
    }
    names.sort((a, b) => a.first - b.first);
    const entries: Entry[] = [];
    const segments: Segment[] = [];
    let torn = false;
    for (const { name, first } of names) {
      const path = `${logDir}/${name}`;
      if (torn || (entries.length > 0 && first !== entries[entries.length - 1]!.index + 1)) {
        logger.warn("Removing Raft log segment {name} after a torn or missing tail", { name });
        await fs.remove(path);
        torn = true;
        continue;
      }
      const bytes = await fs.readFile(path);
      const seg: Segment = { first, path, positions: [], size: 0 };
      let pos = 0;
      let expected = first;
      while (pos < bytes.length) {
        if (pos + FRAME_HEADER > bytes.length) break;
        const view = new DataView(bytes.buffer, bytes.byteOffset + pos, FRAME_HEADER);
        const len = view.getUint32(0);
        const crc = view.getUint32(4);
        if (len > bytes.length - pos - FRAME_HEADER) break;
        const payload = bytes.subarray(pos + FRAME_HEADER, pos + FRAME_HEADER + len);
        if (crc32c(payload) !== crc) break;
        let e: Entry;
        try {
          const r = new ByteReader(payload);
          e = readEntry(r);
          if (r.remaining !== 0) break;
        } catch {
          break;
        }
        if (e.index !== expected) break;
        // Terms never decrease along a log: a lower one is a stale frame that survived an
        // unsynced truncation.
        const prev = entries[entries.length - 1];
        if (prev !== undefined && e.term < prev.term) break;
        entries.push(e);
        seg.positions.push(pos);
        pos += FRAME_HEADER + len;
        expected++;
      }
      if (pos < bytes.length) {
        logger.warn("Truncating torn Raft log tail in {name} at byte {pos} of {size}", {
          name,
          pos,
          size: bytes.length,
        });
        const f = await fs.open(path, { write: true });
        try {
          await f.truncate(pos);
          await f.sync();
        } finally {
          f.close();
        }
        torn = true;
      }
      seg.size = pos;
      if (seg.positions.length === 0) {
        await fs.remove(path);
        continue;
      }
      segments.push(seg);
    }
    return { entries, segments };
  }

  get lastIndex(): number {
    return this.#lastIndex;
  }

  /**
   * Writes `entries` (contiguous), first removing any stored entries at or after
   * `entries[0].index`. Not durable until {@linkcode DiskStorage.sync}.
   */
  append(entries: readonly Entry[]): void {
    this.#assertOpen();
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first > this.#snapshotIndex, `Cannot append ${first} at or below the snapshot`);
    assert(first <= this.#lastIndex + 1, `Cannot append ${first}: gap after ${this.#lastIndex}`);
    if (first <= this.#lastIndex) this.#truncateFrom(first);
    for (const e of entries) {
      let seg = this.#segments[this.#segments.length - 1];
      if (seg === undefined || this.#active === undefined || seg.size >= this.#segmentBytes) {
        seg = this.#newSegment(e.index);
      }
      const w = this.#writer;
      w.reset();
      w.u32(0);
      w.u32(0);
      writeEntry(w, e);
      const frame = w.view();
      const payload = frame.subarray(FRAME_HEADER);
      w.patchU32(0, payload.length);
      w.patchU32(4, crc32c(payload));
      writeAll(this.#active!, frame);
      seg.positions.push(seg.size);
      seg.size += frame.length;
      this.#lastIndex = e.index;
    }
    this.#dirty.add(this.#active!);
  }

  /** Records the hard state in the older slot. Not durable until `sync()`. */
  setHardState(hs: HardState): void {
    this.#assertOpen();
    const seq = ++this.#hsSeq;
    const w = new ByteWriter(HS_BODY + 4);
    w.u64(seq);
    w.u64(hs.term);
    w.u32(hs.vote);
    w.u64(hs.commit);
    w.u32(crc32c(w.view()));
    this.#hsFile.seekSync((seq % 2) * HS_SLOT, Deno.SeekMode.Start);
    writeAll(this.#hsFile, w.view());
    this.#hsDirty = true;
  }

  /** Makes every write so far durable (fdatasync of each dirty file, directory too). */
  async sync(): Promise<void> {
    this.#assertOpen();
    const work: Promise<void>[] = [];
    for (const f of this.#dirty) work.push(f.syncData());
    this.#dirty.clear();
    if (this.#hsDirty) {
      this.#hsDirty = false;
      work.push(this.#hsFile.syncData());
    }
    if (this.#logDirDirty) {
      this.#logDirDirty = false;
      work.push(syncDir(this.#fs, this.#logDir));
    }
    await Promise.all(work);
    for (const f of this.#retired.splice(0)) f.close();
  }

  /**
   * Stores `s` durably (tmp, fsync, rename, directory fsync), removes older snapshots,
   * and drops log entries it covers: all of them if the log does not continue from it
   * (a snapshot installed from the leader), else whole segments up to it.
   */
  async saveSnapshot(s: Snapshot, logContinues: boolean): Promise<void> {
    this.#assertOpen();
    const w = new ByteWriter(64 + s.data.length);
    w.u32(0);
    writeSnapshot(w, s);
    const bytes = w.finish();
    new DataView(bytes.buffer).setUint32(0, crc32c(bytes.subarray(4)));
    const name = `snapshot-${s.index}-${s.term}`;
    const tmp = `${this.dir}/${name}.tmp`;
    const f = await this.#fs.open(tmp, { write: true, create: true, truncate: true });
    try {
      await writeAllAsync(f, bytes);
      await f.sync();
    } finally {
      f.close();
    }
    await this.#fs.rename(tmp, `${this.dir}/${name}`);
    await syncDir(this.#fs, this.dir);
    this.#snapshotIndex = s.index;
    for await (const e of this.#fs.readDir(this.dir)) {
      const m = /^snapshot-(\d+)-(\d+)$/.exec(e.name);
      if (m !== null && Number(m[1]) < s.index) await this.#fs.remove(`${this.dir}/${e.name}`);
    }
    if (!logContinues || s.index >= this.#lastIndex) {
      await this.#removeSegmentsFrom(0);
      this.#lastIndex = s.index;
    } else {
      // Remove whole segments whose entries all lie at or below the snapshot.
      let k = 0;
      while (k + 1 < this.#segments.length && this.#segments[k + 1]!.first <= s.index + 1) k++;
      for (const seg of this.#segments.splice(0, k)) await this.#fs.remove(seg.path);
    }
    await syncDir(this.#fs, this.#logDir);
  }

  /** Closes the files (pending writes stay in the page cache, not necessarily durable). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#retired.splice(0)) f.close();
    this.#active?.close();
    this.#active = undefined;
    this.#hsFile.close();
  }

  // ---- internals --------------------------------------------------------------------

  #assertOpen(): void {
    assert(!this.#closed, "Raft storage is closed");
  }

  /** Continues appending to the last recovered segment. */
  #openTail(): void {
    const seg = this.#segments[this.#segments.length - 1];
    if (seg === undefined || this.#active !== undefined) return;
    const f = this.#fs.openSync(seg.path, { write: true });
    f.seekSync(seg.size, Deno.SeekMode.Start);
    this.#active = f;
  }

  #retireActive(): void {
    const f = this.#active;
    this.#active = undefined;
    if (f === undefined) return;
    if (this.#dirty.has(f)) this.#retired.push(f);
    else f.close();
  }

  #newSegment(first: number): Segment {
    this.#retireActive();
    const seg: Segment = {
      first,
      path: `${this.#logDir}/${segmentName(first)}`,
      positions: [],
      size: 0,
    };
    this.#active = this.#fs.openSync(seg.path, { write: true, create: true, truncate: true });
    this.#segments.push(seg);
    this.#logDirDirty = true;
    return seg;
  }

  /** Removes stored entries at and after `index` (which must be stored). */
  #truncateFrom(index: number): void {
    let k = this.#segments.length - 1;
    while (k >= 0 && this.#segments[k]!.first > index) k--;
    for (const seg of this.#segments.splice(k + 1)) {
      this.#fs.removeSync(seg.path);
      this.#logDirDirty = true;
    }
    this.#retireActive();
    const seg = this.#segments[k];
    if (seg === undefined) {
      this.#lastIndex = index - 1;
      return;
    }
    const offset = index - seg.first;
    if (offset === 0) {
      this.#segments.pop();
      this.#fs.removeSync(seg.path);
      this.#logDirDirty = true;
    } else {
      const pos = seg.positions[offset];
      if (pos !== undefined) {
        seg.positions.length = offset;
        seg.size = pos;
      }
      const f = this.#fs.openSync(seg.path, { write: true });
      f.truncateSync(seg.size);
      f.seekSync(seg.size, Deno.SeekMode.Start);
      this.#active = f;
      this.#dirty.add(f);
    }
    this.#lastIndex = index - 1;
  }

  async #removeSegmentsFrom(k: number): Promise<void> {
    this.#retireActive();
    for (const seg of this.#segments.splice(k)) await this.#fs.remove(seg.path);
    this.#logDirDirty = true;
  }
}

function writeAll(f: FileHandle, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
}

async function writeAllAsync(f: FileHandle, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await f.write(bytes.subarray(off));
}
