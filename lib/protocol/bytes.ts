/**
 * Wire primitives: {@linkcode ByteReader} and {@linkcode ByteWriter} for Kafka's
 * big-endian integers, varints, strings, bytes, UUIDs and their compact (flexible)
 * forms. Every length read from the wire is checked against the remaining bytes before
 * anything is allocated, and every decode failure is a {@linkcode ProtocolDecodeError}.
 *
 * @module
 */

/** A frame or value could not be decoded: truncated, malformed or with trailing bytes. */
export class ProtocolDecodeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolDecodeError";
  }
}

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** The all-zero UUID as Kafka prints it (`Uuid.ZERO_UUID.toString()`). */
export const ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA";

/**
 * Formats 16 bytes as Kafka does (`Uuid.toString`): URL-safe base64 without padding,
 * 22 characters.
 */
export function uuidToString(bytes: Uint8Array, offset = 0): string {
  let out = "";
  let i = offset;
  // 15 bytes → 20 chars, then the last byte → 2 chars.
  for (let k = 0; k < 5; k++, i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const last = bytes[i]!;
  return out + B64[last >> 2]! + B64[(last & 3) << 4]!;
}

/**
 * Parses Kafka's 22-character UUID text into 16 bytes.
 *
 * @throws {TypeError} If `text` is not a canonical 22-character URL-safe base64 UUID.
 */
export function uuidToBytes(
  text: string,
  out: Uint8Array = new Uint8Array(16),
  offset = 0,
): Uint8Array {
  if (text.length !== 22) {
    throw new TypeError(`Cannot parse UUID "${text}": expected 22 characters`);
  }
  const v = (j: number): number => {
    const c = text.charCodeAt(j);
    const d = c < 128 ? B64_INDEX[c]! : -1;
    if (d < 0) throw new TypeError(`Cannot parse UUID "${text}": bad character at ${j}`);
    return d;
  };
  let o = offset;
  for (let j = 0; j < 20; j += 4) {
    const n = (v(j) << 18) | (v(j + 1) << 12) | (v(j + 2) << 6) | v(j + 3);
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 255;
    out[o++] = n & 255;
  }
  const a = v(20);
  const b = v(21);
  if ((b & 15) !== 0) throw new TypeError(`Cannot parse UUID "${text}": not canonical`);
  out[o] = (a << 2) | (b >> 4);
  return out;
}

/**
 * Reads Kafka primitives from a byte array. Throws {@linkcode ProtocolDecodeError} on
 * any short read; byte and record fields are returned as zero-copy subarrays.
 */
export class ByteReader {
  #buf: Uint8Array;
  #view: DataView;
  #pos: number;
  #end: number;

  /** Reads `buf` from `offset` (default 0) to its end. */
  constructor(buf: Uint8Array, offset = 0) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = offset;
    this.#end = buf.byteLength;
  }

  /** The current read position within the buffer. */
  get offset(): number {
    return this.#pos;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number): number {
    const p = this.#pos;
    if (n > this.#end - p) {
      throw new ProtocolDecodeError(
        `Cannot read ${n} bytes at offset ${p}: only ${this.#end - p} remain`,
      );
    }
    this.#pos = p + n;
    return p;
  }

  int8(): number {
    return this.#view.getInt8(this.#need(1));
  }
  uint8(): number {
    return this.#buf[this.#need(1)]!;
  }
  bool(): boolean {
    return this.#buf[this.#need(1)]! !== 0;
  }
  int16(): number {
    return this.#view.getInt16(this.#need(2));
  }
  uint16(): number {
    return this.#view.getUint16(this.#need(2));
  }
  int32(): number {
    return this.#view.getInt32(this.#need(4));
  }
  uint32(): number {
    return this.#view.getUint32(this.#need(4));
  }
  int64(): bigint {
    return this.#view.getBigInt64(this.#need(8));
  }
  float64(): number {
    return this.#view.getFloat64(this.#need(8));
  }

  /** An unsigned varint of at most 5 bytes (values up to 2^32 - 1). */
  uvarint(): number {
    let result = 0;
    let shift = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.#buf[this.#need(1)]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
      shift += 7;
    }
    throw new ProtocolDecodeError(`Cannot read varint at offset ${this.#pos}: longer than 32 bits`);
  }

  /** A zigzag-encoded signed varint (32 bits). */
  varint(): number {
    const u = this.uvarint();
    return (u & 1) === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** An unsigned varlong of at most 10 bytes, as a bigint. */
  uvarlong(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      const b = this.#buf[this.#need(1)]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffffffffffffn) break;
        return result;
      }
      shift += 7n;
    }
    throw new ProtocolDecodeError(
      `Cannot read varlong at offset ${this.#pos}: longer than 64 bits`,
    );
  }

  /** A zigzag-encoded signed varlong (64 bits). */
  varlong(): bigint {
    const u = this.uvarlong();
    return (u & 1n) === 0n ? u >> 1n : -((u + 1n) >> 1n);
  }

  /** A 16-byte UUID in Kafka's text form. */
  uuid(): string {
    return uuidToString(this.#buf, this.#need(16));
  }

  /** `n` raw bytes as a zero-copy subarray. */
  raw(n: number): Uint8Array {
    if (n < 0) throw new ProtocolDecodeError(`Cannot read ${n} bytes: negative length`);
    const p = this.#need(n);
    return this.#buf.subarray(p, p + n);
  }

  /** `n` bytes of UTF-8. */
  utf8(n: number): string {
    if (n < 0) throw new ProtocolDecodeError(`Cannot read string of length ${n}`);
    const p = this.#need(n);
    const buf = this.#buf;
    if (n < 32) {
      // Short ASCII strings (topic names, client ids) are faster by hand.
      let s = "";
      for (let i = p; i < p + n; i++) {
        const c = buf[i]!;
        if (c >= 0x80) return textDecoder.decode(buf.subarray(p, p + n));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return textDecoder.decode(buf.subarray(p, p + n));
  }

  /** A length-checked count read from the wire: `n` items of at least `minSize` bytes each. */
  checkCount(n: number, minSize: number, what: string): number {
    if (n < 0) throw new ProtocolDecodeError(`Cannot read ${what}: negative length ${n}`);
    if (n * (minSize > 0 ? minSize : 1) > this.#end - this.#pos) {
      throw new ProtocolDecodeError(
        `Cannot read ${what} of ${n} items at offset ${this.#pos}: only ${
          this.#end - this.#pos
        } bytes remain`,
      );
    }
    return n;
  }

  /** int16 length + UTF-8; null for length -1 (when `nullable`). */
  string(nullable: boolean): string | null {
    const n = this.int16();
    if (n === -1 && nullable) return null;
    if (n < 0) throw new ProtocolDecodeError(`Cannot read string: length ${n}`);
    return this.utf8(n);
  }

  /** Unsigned varint length + 1, then UTF-8; null for 0 (when `nullable`). */
  compactString(nullable: boolean): string | null {
    const n = this.uvarint() - 1;
    if (n === -1) {
      if (nullable) return null;
      throw new ProtocolDecodeError(`Cannot read string: null where not nullable`);
    }
    return this.utf8(n);
  }

  /** int32 length + bytes; null for -1 (when `nullable`). Zero-copy. */
  bytes(nullable: boolean): Uint8Array | null {
    const n = this.int32();
    if (n === -1 && nullable) return null;
    if (n < 0) throw new ProtocolDecodeError(`Cannot read bytes: length ${n}`);
    return this.raw(n);
  }

  /** Unsigned varint length + 1, then bytes; null for 0 (when `nullable`). Zero-copy. */
  compactBytes(nullable: boolean): Uint8Array | null {
    const n = this.uvarint() - 1;
    if (n === -1) {
      if (nullable) return null;
      throw new ProtocolDecodeError(`Cannot read bytes: null where not nullable`);
    }
    return this.raw(n);
  }
}

/**
 * Bytes an encoder copies straight into its output when it finishes, rather than holding
 * them in memory first: e.g. record batches located in a log file, read once into the
 * response frame.
 */
export interface BytesSource {
  readonly byteLength: number;
  /** Fills `target` (exactly `byteLength` long). */
  copyTo(target: Uint8Array): void;
}

/** Byte arrays at least this long are kept by reference until {@linkcode ByteWriter.finish}. */
const LARGE = 1024;

/**
 * Writes Kafka primitives. Small values go into growing scratch chunks; large byte arrays
 * (record batches) are kept by reference, so {@linkcode ByteWriter.finish} copies every
 * byte exactly once into the exact-sized result.
 */
export class ByteWriter {
  #chunks: (Uint8Array | BytesSource)[] = [];
  #chunkBytes = 0;
  #buf: Uint8Array;
  #view: DataView;
  #start = 0;
  #pos = 0;

  /** @param initialSize The first scratch chunk's size. */
  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#chunkBytes + this.#pos - this.#start;
  }

  #flush(): void {
    if (this.#pos > this.#start) {
      this.#chunks.push(this.#buf.subarray(this.#start, this.#pos));
      this.#chunkBytes += this.#pos - this.#start;
      this.#start = this.#pos;
    }
  }

  #ensure(n: number): number {
    if (this.#pos + n > this.#buf.byteLength) {
      this.#flush();
      const size = Math.max(n, this.#buf.byteLength * 2, 256);
      this.#buf = new Uint8Array(size);
      this.#view = new DataView(this.#buf.buffer);
      this.#start = 0;
      this.#pos = 0;
    }
    const p = this.#pos;
    this.#pos = p + n;
    return p;
  }

  int8(v: number): void {
    const p = this.#ensure(1);
    this.#view.setInt8(p, v);
  }
  uint8(v: number): void {
    const p = this.#ensure(1);
    this.#buf[p] = v;
  }
  bool(v: boolean): void {
    const p = this.#ensure(1);
    this.#buf[p] = v ? 1 : 0;
  }
  int16(v: number): void {
    const p = this.#ensure(2);
    this.#view.setInt16(p, v);
  }
  uint16(v: number): void {
    const p = this.#ensure(2);
    this.#view.setUint16(p, v);
  }
  int32(v: number): void {
    const p = this.#ensure(4);
    this.#view.setInt32(p, v);
  }
  uint32(v: number): void {
    const p = this.#ensure(4);
    this.#view.setUint32(p, v);
  }
  int64(v: bigint): void {
    const p = this.#ensure(8);
    this.#view.setBigInt64(p, v);
  }
  float64(v: number): void {
    const p = this.#ensure(8);
    this.#view.setFloat64(p, v);
  }

  /** An unsigned varint (0 ≤ v < 2^32). */
  uvarint(v: number): void {
    if (v < 0 || v > 0xffffffff || !Number.isInteger(v)) {
      throw new RangeError(`Cannot write unsigned varint ${v}: out of range`);
    }
    while (v >= 0x80) {
      const p = this.#ensure(1);
      this.#buf[p] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    const p = this.#ensure(1);
    this.#buf[p] = v;
  }

  /** A zigzag-encoded signed varint (32 bits). */
  varint(v: number): void {
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  /** An unsigned varlong (0 ≤ v < 2^64). */
  uvarlong(v: bigint): void {
    if (v < 0n || v > 0xffffffffffffffffn) {
      throw new RangeError(`Cannot write unsigned varlong ${v}: out of range`);
    }
    while (v >= 0x80n) {
      const p = this.#ensure(1);
      this.#buf[p] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    const p = this.#ensure(1);
    this.#buf[p] = Number(v);
  }

  /** A zigzag-encoded signed varlong (64 bits). */
  varlong(v: bigint): void {
    this.uvarlong(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }

  /** A UUID from Kafka's 22-character text form. */
  uuid(v: string): void {
    const p = this.#ensure(16);
    uuidToBytes(v, this.#buf, p);
  }

  /**
   * Raw bytes, without a length. Large arrays are kept by reference, not copied; a
   * {@linkcode BytesSource} is asked for its bytes only in {@linkcode finish}.
   */
  raw(b: Uint8Array | BytesSource): void {
    if (!(b instanceof Uint8Array) || b.byteLength >= LARGE) {
      this.#flush();
      this.#chunks.push(b);
      this.#chunkBytes += b.byteLength;
      return;
    }
    const p = this.#ensure(b.byteLength);
    this.#buf.set(b, p);
  }

  /** int16 length + UTF-8, or -1 for null. */
  string(v: string | null): void {
    if (v === null) return this.int16(-1);
    const b = utf8Bytes(v);
    if (b === null) {
      this.int16(v.length);
      this.#ascii(v);
    } else {
      if (b.byteLength > 0x7fff) {
        throw new RangeError(`Cannot write string of ${b.byteLength} bytes: longer than 32767`);
      }
      this.int16(b.byteLength);
      this.raw(b);
    }
  }

  /** Unsigned varint length + 1, then UTF-8; 0 for null. */
  compactString(v: string | null): void {
    if (v === null) return this.uvarint(0);
    const b = utf8Bytes(v);
    if (b === null) {
      this.uvarint(v.length + 1);
      this.#ascii(v);
    } else {
      this.uvarint(b.byteLength + 1);
      this.raw(b);
    }
  }

  #ascii(v: string): void {
    const p = this.#ensure(v.length);
    const buf = this.#buf;
    for (let i = 0; i < v.length; i++) buf[p + i] = v.charCodeAt(i);
  }

  /** int32 length + bytes, or -1 for null. */
  bytes(v: Uint8Array | BytesSource | null): void {
    if (v === null) return this.int32(-1);
    this.int32(v.byteLength);
    this.raw(v);
  }

  /** Unsigned varint length + 1, then bytes; 0 for null. */
  compactBytes(v: Uint8Array | BytesSource | null): void {
    if (v === null) return this.uvarint(0);
    this.uvarint(v.byteLength + 1);
    this.raw(v);
  }

  /**
   * All bytes written, in one exact-sized array (each byte copied once), from `alloc`
   * when given (e.g. a pool of reusable buffers; every byte of it is overwritten).
   */
  finish(alloc?: (size: number) => Uint8Array): Uint8Array {
    this.#flush();
    const chunks = this.#chunks;
    if (chunks.length === 1) {
      // Our own scratch chunk: hand it out without copying (never a caller's array).
      const only = chunks[0]!;
      if (only instanceof Uint8Array && only.buffer === this.#buf.buffer && only.byteOffset === 0) {
        return only;
      }
    }
    const out = alloc ? alloc(this.#chunkBytes) : new Uint8Array(this.#chunkBytes);
    let o = 0;
    for (const c of chunks) {
      if (c instanceof Uint8Array) out.set(c, o);
      else c.copyTo(out.subarray(o, o + c.byteLength));
      o += c.byteLength;
    }
    return out;
  }
}

/** UTF-8 bytes of `v`, or null if `v` is short ASCII (written directly, no allocation). */
function utf8Bytes(v: string): Uint8Array | null {
  if (v.length < 256) {
    let ascii = true;
    for (let i = 0; i < v.length; i++) {
      if (v.charCodeAt(i) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return null;
  }
  return textEncoder.encode(v);
}
