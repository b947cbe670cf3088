/**
 * The cleaner's key → latest offset map, in a fixed budget of memory (Kafka's
 * SkimpyOffsetMap): keys are stored as a 64-bit hash (two independent 32-bit hashes), so
 * each entry costs 16 bytes whatever the key's size, in an open-addressing table that
 * counts as full at 90 % load. Two keys with the same 64-bit hash would be taken for one
 * (the older record of the pair could be cleaned away); Kafka accepts the same risk with
 * MD5.
 */

const ENTRY_BYTES = 16;
const MAX_LOAD = 0.9;

/** FNV-1a over the key. */
function fnv1a(key: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A murmur3-style 32-bit hash with its own seed, independent of FNV-1a. */
function murmur(key: Uint8Array): number {
  let h = 0x9747b28c;
  const n = key.length;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = n & 3;
  if (tail > 0) {
    let k = 0;
    if (tail === 3) k ^= key[i + 2]! << 16;
    if (tail >= 2) k ^= key[i + 1]! << 8;
    k ^= key[i]!;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class OffsetMap {
  readonly #slots: number;
  readonly #h1: Uint32Array;
  readonly #h2: Uint32Array;
  /** The offset stored in a slot; -1: empty. */
  readonly #offsets: Float64Array;
  #size = 0;
  #latest = -1;

  /** A map using about `bytes` of memory (at least 16 slots). */
  constructor(bytes: number) {
    this.#slots = Math.max(16, Math.floor(bytes / ENTRY_BYTES));
    this.#h1 = new Uint32Array(this.#slots);
    this.#h2 = new Uint32Array(this.#slots);
    this.#offsets = new Float64Array(this.#slots).fill(-1);
  }

  /** Keys stored. */
  get size(): number {
    return this.#size;
  }

  /** Keys the map can take before it counts as full. */
  get capacity(): number {
    return Math.floor(this.#slots * MAX_LOAD);
  }

  /** Whether another new key could not be added. */
  get full(): boolean {
    return this.#size >= this.capacity;
  }

  /** The largest offset put so far; -1 when none. */
  get latestOffset(): number {
    return this.#latest;
  }

  #find(a: number, b: number): number {
    let i = (a ^ Math.imul(b, 0x9e3779b1)) >>> 0;
    i %= this.#slots;
    for (;;) {
      if (this.#offsets[i] === -1 || (this.#h1[i] === a && this.#h2[i] === b)) return i;
      i = i + 1 === this.#slots ? 0 : i + 1;
    }
  }

  /**
   * Records `offset` as the latest of `key` (offsets are put in increasing order).
   * @throws {RangeError} if the key is new and the map is full
   */
  put(key: Uint8Array, offset: number): void {
    const a = fnv1a(key);
    const b = murmur(key);
    const i = this.#find(a, b);
    if (this.#offsets[i] === -1) {
      if (this.full) throw new RangeError("The offset map is full");
      this.#h1[i] = a;
      this.#h2[i] = b;
      this.#size++;
    }
    this.#offsets[i] = offset;
    if (offset > this.#latest) this.#latest = offset;
  }

  /** Whether `key` could be put now without overflowing. */
  canPut(key: Uint8Array): boolean {
    return !this.full || this.get(key) >= 0;
  }

  /** The latest offset of `key`, or -1. */
  get(key: Uint8Array): number {
    return this.#offsets[this.#find(fnv1a(key), murmur(key))]!;
  }
}
