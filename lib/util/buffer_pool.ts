/**
 * Reusable large byte buffers. A fresh multi-megabyte `Uint8Array` costs a page fault and
 * a zero-fill per 4 KiB page the first time it is touched, and an unmap when it is
 * collected: on the fetch path that was a fifth of the broker's CPU. Buffers handed back
 * with {@linkcode BufferPool.release} are reused as they are (not zeroed: callers
 * overwrite every byte they use).
 *
 * Sizes are rounded up to a power of two; at most `maxPooledBytes` wait in the pool, the
 * rest is left to the garbage collector.
 */

/** Requests smaller than this are plain allocations (cheap, and not worth tracking). */
export const POOL_MIN_BYTES = 128 * 1024;

export class BufferPool {
  readonly #maxPooledBytes: number;
  /** Free buffers by size class (log2 of their size). */
  readonly #free = new Map<number, ArrayBuffer[]>();
  /** Buffers this pool made that are lent out now. */
  readonly #lent = new WeakSet<ArrayBuffer>();
  #pooledBytes = 0;

  constructor(maxPooledBytes = 64 * 1024 * 1024) {
    this.#maxPooledBytes = maxPooledBytes;
  }

  /** Bytes waiting in the pool. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /**
   * A buffer of exactly `size` bytes whose contents are undefined (a reused buffer keeps
   * what it held). Hand it back with {@linkcode release} once nothing refers to it.
   */
  acquire(size: number): Uint8Array {
    if (size < POOL_MIN_BYTES) return new Uint8Array(size);
    const sizeClass = Math.ceil(Math.log2(size));
    let buffer = this.#free.get(sizeClass)?.pop();
    if (buffer === undefined) buffer = new ArrayBuffer(2 ** sizeClass);
    else this.#pooledBytes -= buffer.byteLength;
    this.#lent.add(buffer);
    return new Uint8Array(buffer, 0, size);
  }

  /**
   * Takes back a buffer from {@linkcode acquire}; anything else (a small or foreign
   * array, or one already released) is ignored. The caller must not use it afterwards.
   */
  release(bytes: Uint8Array): void {
    const buffer = bytes.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#lent.has(buffer)) return;
    this.#lent.delete(buffer);
    if (this.#pooledBytes + buffer.byteLength > this.#maxPooledBytes) return;
    const sizeClass = Math.log2(buffer.byteLength);
    let list = this.#free.get(sizeClass);
    if (list === undefined) this.#free.set(sizeClass, list = []);
    list.push(buffer);
    this.#pooledBytes += buffer.byteLength;
  }
}
