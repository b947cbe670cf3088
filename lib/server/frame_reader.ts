/**
 * Splits a byte stream into Kafka request frames (`int32 size | size bytes`). The size is
 * checked before anything is allocated for the frame, so a hostile length prefix costs
 * nothing; a stream that ends mid-frame is reported as truncated.
 */

/** The stream broke the framing rules; the connection must be closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Anything with Deno.Conn's read(). */
export interface ByteSource {
  read(p: Uint8Array): Promise<number | null>;
}

const CHUNK = 64 * 1024;
/** apiKey + apiVersion + correlationId: the smallest possible request header. */
const MIN_FRAME = 8;

/** Where large frames of some request types get their memory (see the constructor). */
export interface FrameAllocator {
  /** Whether frames of this API key come from {@linkcode acquire}. */
  pooled(apiKey: number): boolean;
  acquire(size: number): Uint8Array;
}

/** Reads whole frames from a {@linkcode ByteSource}. */
export class FrameReader {
  readonly #source: ByteSource;
  readonly #maxFrameBytes: number;
  readonly #allocator: FrameAllocator | null;
  #buf = new Uint8Array(CHUNK);
  #start = 0;
  #end = 0;

  /**
   * `allocator`: frames of the API keys it names come from its buffers (e.g. a pool the
   * caller gives them back to once the request took effect); others are fresh arrays.
   */
  constructor(source: ByteSource, maxFrameBytes: number, allocator: FrameAllocator | null = null) {
    this.#source = source;
    this.#maxFrameBytes = maxFrameBytes;
    this.#allocator = allocator;
  }

  /** Bytes buffered but not yet returned. */
  get #available(): number {
    return this.#end - this.#start;
  }

  async #fill(): Promise<boolean> {
    if (this.#start > 0 && this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#end === this.#buf.length) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    const n = await this.#source.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /**
   * The next frame's payload (without the size prefix), an array the caller owns (fresh,
   * or from the allocator);
   * null at a clean end of stream. Throws {@linkcode FrameError} on a bad size or a
   * stream that ends inside a frame.
   */
  async next(): Promise<Uint8Array | null> {
    while (this.#available < 4) {
      if (!(await this.#fill())) {
        if (this.#available === 0) return null;
        throw new FrameError(`Stream ended inside a frame size (${this.#available} of 4 bytes)`);
      }
    }
    const b = this.#buf;
    const s = this.#start;
    const size = ((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!) | 0;
    if (size < MIN_FRAME) throw new FrameError(`Invalid frame size ${size}`);
    if (size > this.#maxFrameBytes) {
      throw new FrameError(`Frame size ${size} exceeds the limit of ${this.#maxFrameBytes} bytes`);
    }
    let frame: Uint8Array;
    if (this.#allocator !== null) {
      // The API key (the frame's first two bytes) decides where its memory comes from.
      while (this.#available < 6) {
        if (!(await this.#fill())) {
          throw new FrameError(
            `Stream ended inside a frame (${this.#available - 4} of ${size} bytes)`,
          );
        }
      }
      const p = this.#start + 4;
      const apiKey = (this.#buf[p]! << 8) | this.#buf[p + 1]!;
      frame = this.#allocator.pooled(apiKey) ? this.#allocator.acquire(size) : new Uint8Array(size);
    } else {
      frame = new Uint8Array(size);
    }
    this.#start += 4;
    let have = Math.min(size, this.#available);
    frame.set(this.#buf.subarray(this.#start, this.#start + have));
    this.#start += have;
    // Large frames are read straight into their own array: no second copy.
    while (have < size) {
      const n = await this.#source.read(frame.subarray(have));
      if (n === null) {
        throw new FrameError(`Stream ended inside a frame (${have} of ${size} bytes)`);
      }
      have += n;
    }
    return frame;
  }
}
