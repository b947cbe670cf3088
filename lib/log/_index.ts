/**
 * Sparse in-memory indexes of one segment, and their on-disk encoding (big-endian, as
 * Kafka's): `.index` holds (relative offset u32, file position u32), `.timeindex` holds
 * (timestamp i64, relative offset u32).
 */

/** Sparse offset → file position map; entries strictly increase in both fields. */
export class OffsetIndex {
  #rel = new Uint32Array(16);
  #pos = new Uint32Array(16);
  #n = 0;

  get length(): number {
    return this.#n;
  }

  /** Appends an entry; callers guarantee both fields grow. */
  add(relOffset: number, position: number): void {
    if (this.#n === this.#rel.length) {
      const rel = new Uint32Array(this.#n * 2);
      rel.set(this.#rel);
      this.#rel = rel;
      const pos = new Uint32Array(this.#n * 2);
      pos.set(this.#pos);
      this.#pos = pos;
    }
    this.#rel[this.#n] = relOffset;
    this.#pos[this.#n] = position;
    this.#n++;
  }

  relOffsetAt(i: number): number {
    return this.#rel[i]!;
  }

  positionAt(i: number): number {
    return this.#pos[i]!;
  }

  /** Position of the last entry whose relative offset is <= `relOffset`, else 0. */
  lookup(relOffset: number): number {
    let lo = 0;
    let hi = this.#n - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#rel[mid]! <= relOffset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? 0 : this.#pos[found]!;
  }

  /** The largest entry position that is <= `position`, else 0. */
  floorPosition(position: number): number {
    let lo = 0;
    let hi = this.#n - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#pos[mid]! <= position) {
        found = this.#pos[mid]!;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Drops every entry at or after `position`. */
  truncateToPosition(position: number): void {
    while (this.#n > 0 && this.#pos[this.#n - 1]! >= position) this.#n--;
  }

  clear(): void {
    this.#n = 0;
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.#n * 8);
    const v = new DataView(out.buffer);
    for (let i = 0; i < this.#n; i++) {
      v.setUint32(i * 8, this.#rel[i]!);
      v.setUint32(i * 8 + 4, this.#pos[i]!);
    }
    return out;
  }

  /**
   * Decodes an `.index` file; null unless it is well formed for a log of `logSize` bytes
   * (whole entries, both fields strictly increasing, positions inside the log).
   */
  static decode(bytes: Uint8Array, logSize: number): OffsetIndex | null {
    if (bytes.length % 8 !== 0) return null;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const index = new OffsetIndex();
    let prevRel = -1;
    let prevPos = -1;
    for (let p = 0; p < bytes.length; p += 8) {
      const rel = v.getUint32(p);
      const pos = v.getUint32(p + 4);
      if (rel <= prevRel || pos <= prevPos || pos >= logSize) return null;
      index.add(rel, pos);
      prevRel = rel;
      prevPos = pos;
    }
    return index;
  }
}

/**
 * Sparse timestamp index: entry (T, r) says that T is the largest timestamp of the
 * segment's batches before and including the batch at relative offset r, and that
 * batch is the first to carry T (Kafka's maxTimestampSoFar / offsetOfMaxTimestampSoFar).
 * Both fields strictly increase.
 */
export class TimeIndex {
  #ts = new Float64Array(16);
  #rel = new Uint32Array(16);
  #n = 0;

  get length(): number {
    return this.#n;
  }

  /** Timestamp of the last entry, -Infinity if none. */
  get lastTimestamp(): number {
    return this.#n === 0 ? -Infinity : this.#ts[this.#n - 1]!;
  }

  /** Relative offset of the last entry, -1 if none. */
  get lastRelOffset(): number {
    return this.#n === 0 ? -1 : this.#rel[this.#n - 1]!;
  }

  add(timestamp: number, relOffset: number): void {
    if (this.#n === this.#ts.length) {
      const ts = new Float64Array(this.#n * 2);
      ts.set(this.#ts);
      this.#ts = ts;
      const rel = new Uint32Array(this.#n * 2);
      rel.set(this.#rel);
      this.#rel = rel;
    }
    this.#ts[this.#n] = timestamp;
    this.#rel[this.#n] = relOffset;
    this.#n++;
  }

  /**
   * Relative offset of the last entry whose timestamp is strictly below `timestampMs`
   * (every record before that batch is older than the target), else -1.
   */
  lookupBefore(timestampMs: number): number {
    let lo = 0;
    let hi = this.#n - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ts[mid]! < timestampMs) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? -1 : this.#rel[found]!;
  }

  clear(): void {
    this.#n = 0;
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.#n * 12);
    const v = new DataView(out.buffer);
    for (let i = 0; i < this.#n; i++) {
      v.setBigInt64(i * 12, BigInt(this.#ts[i]!));
      v.setUint32(i * 12 + 8, this.#rel[i]!);
    }
    return out;
  }

  /** Decodes a `.timeindex` file; null unless whole entries with both fields increasing. */
  static decode(bytes: Uint8Array): TimeIndex | null {
    if (bytes.length % 12 !== 0) return null;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const index = new TimeIndex();
    let prevTs = -Infinity;
    let prevRel = -1;
    for (let p = 0; p < bytes.length; p += 12) {
      const ts = Number(v.getBigInt64(p));
      const rel = v.getUint32(p + 8);
      if (ts <= prevTs || rel <= prevRel) return null;
      index.add(ts, rel);
      prevTs = ts;
      prevRel = rel;
    }
    return index;
  }
}
