/**
 * Compact binary encoding of Raft values for the wire and the disk (big-endian):
 *
 * - u64 fields are JS numbers (safe integers), written as two u32 halves;
 * - Entry: `u64 index | u64 term | u8 type | u32 len | data`;
 * - Snapshot: `u64 index | u64 term | u32 len | conf (JSON) | u32 len | data`;
 * - Message: `u8 type | u32 from | u32 to | u64 term | u64 logTerm | u64 index |
 *   u64 commit | u64 rejectHint | u8 flags (1 reject, 2 force, 4 snapshot) |
 *   u32 count | entries | [snapshot]`;
 * - HardState: `u64 term | u32 vote | u64 commit`.
 *
 * Decoders throw `SyntaxError` on short or malformed input, never read past the end and
 * never allocate more than the input holds.
 */
import {
  type ConfState,
  decodeConfState,
  encodeConfState,
  type Entry,
  type EntryType,
  type HardState,
  type Message,
  MessageType,
  type Snapshot,
} from "./messages.ts";

const TWO32 = 0x1_0000_0000;

/** Growable big-endian byte writer. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(initialSize = 256) {
    this.#buf = new Uint8Array(initialSize);
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = v;
  }
  u32(v: number): void {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, v >>> 0);
    this.#pos += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`Cannot encode u64: ${v}`);
    this.#ensure(8);
    this.#view.setUint32(this.#pos, Math.floor(v / TWO32));
    this.#view.setUint32(this.#pos + 4, v >>> 0);
    this.#pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }
  /** Overwrites a u32 at `position` (for length prefixes written after the fact). */
  patchU32(position: number, v: number): void {
    this.#view.setUint32(position, v >>> 0);
  }
  /** The bytes written so far (a view, valid until the next write). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }
  /** The bytes written so far, no longer shared with the writer (copied unless full). */
  finish(): Uint8Array {
    const out = this.#pos === this.#buf.length ? this.#buf : this.#buf.slice(0, this.#pos);
    this.#buf = new Uint8Array(0);
    this.#view = new DataView(this.#buf.buffer);
    this.#pos = 0;
    return out;
  }
  reset(): void {
    this.#pos = 0;
  }
}

/** Big-endian byte reader that throws `SyntaxError` on short input. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #pos: number;

  constructor(buf: Uint8Array, position = 0) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = position;
  }

  get position(): number {
    return this.#pos;
  }
  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  #need(n: number, what: string): void {
    if (this.#pos + n > this.#buf.length) {
      throw new SyntaxError(`Cannot decode ${what}: ${n} bytes needed, ${this.remaining} left`);
    }
  }
  u8(what = "u8"): number {
    this.#need(1, what);
    return this.#buf[this.#pos++]!;
  }
  u32(what = "u32"): number {
    this.#need(4, what);
    const v = this.#view.getUint32(this.#pos);
    this.#pos += 4;
    return v;
  }
  u64(what = "u64"): number {
    this.#need(8, what);
    const hi = this.#view.getUint32(this.#pos);
    const lo = this.#view.getUint32(this.#pos + 4);
    this.#pos += 8;
    if (hi >= 0x20_0000) throw new SyntaxError(`Cannot decode ${what}: exceeds 2^53`);
    return hi * TWO32 + lo;
  }
  /** `n` bytes, copied (so the source buffer can be reused). */
  bytes(n: number, what = "bytes"): Uint8Array {
    this.#need(n, what);
    const out = this.#buf.slice(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
}

export function writeEntry(w: ByteWriter, e: Entry): void {
  w.u64(e.index);
  w.u64(e.term);
  w.u8(e.type);
  w.u32(e.data.length);
  w.bytes(e.data);
}

export function readEntry(r: ByteReader): Entry {
  const index = r.u64("entry index");
  const term = r.u64("entry term");
  const type = r.u8("entry type");
  if (type !== 0 && type !== 1) throw new SyntaxError(`Cannot decode entry: unknown type ${type}`);
  const len = r.u32("entry length");
  const data = r.bytes(len, "entry data");
  return { index, term, type: type as EntryType, data };
}

export function writeSnapshot(w: ByteWriter, s: Snapshot): void {
  w.u64(s.index);
  w.u64(s.term);
  const conf = encodeConfState(s.conf);
  w.u32(conf.length);
  w.bytes(conf);
  w.u32(s.data.length);
  w.bytes(s.data);
}

export function readSnapshot(r: ByteReader): Snapshot {
  const index = r.u64("snapshot index");
  const term = r.u64("snapshot term");
  let conf: ConfState;
  const confBytes = r.bytes(r.u32("conf length"), "conf");
  try {
    conf = decodeConfState(confBytes);
  } catch (err) {
    throw new SyntaxError(`Cannot decode snapshot conf: ${(err as Error).message}`);
  }
  const data = r.bytes(r.u32("snapshot data length"), "snapshot data");
  return { index, term, conf, data };
}

const FLAG_REJECT = 1;
const FLAG_FORCE = 2;
const FLAG_SNAPSHOT = 4;
const MAX_TYPE = MessageType.TimeoutNow;

export function writeMessage(w: ByteWriter, m: Message): void {
  w.u8(m.type);
  w.u32(m.from);
  w.u32(m.to);
  w.u64(m.term);
  w.u64(m.logTerm);
  w.u64(m.index);
  w.u64(m.commit);
  w.u64(m.rejectHint);
  w.u8(
    (m.reject ? FLAG_REJECT : 0) | (m.force ? FLAG_FORCE : 0) |
      (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0),
  );
  w.u32(m.entries.length);
  for (const e of m.entries) writeEntry(w, e);
  if (m.snapshot !== undefined) writeSnapshot(w, m.snapshot);
}

export function readMessage(r: ByteReader): Message {
  const type = r.u8("message type");
  if (type < 1 || type > MAX_TYPE) {
    throw new SyntaxError(`Cannot decode message: unknown type ${type}`);
  }
  const from = r.u32("from");
  const to = r.u32("to");
  const term = r.u64("term");
  const logTerm = r.u64("logTerm");
  const index = r.u64("index");
  const commit = r.u64("commit");
  const rejectHint = r.u64("rejectHint");
  const flags = r.u8("flags");
  const count = r.u32("entry count");
  // Each entry takes at least 21 bytes: refuse counts the input cannot hold.
  if (count * 21 > r.remaining) {
    throw new SyntaxError(`Cannot decode message: ${count} entries do not fit`);
  }
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntry(r));
  const snapshot = (flags & FLAG_SNAPSHOT) !== 0 ? readSnapshot(r) : undefined;
  const m: Message = {
    type: type as MessageType,
    from,
    to,
    term,
    logTerm,
    index,
    commit,
    rejectHint,
    reject: (flags & FLAG_REJECT) !== 0,
    force: (flags & FLAG_FORCE) !== 0,
    entries,
    ...(snapshot !== undefined ? { snapshot } : {}),
  };
  return m;
}

/** Exact encoded size of `m` without its snapshot (which is sized when written). */
export function messageSize(m: Message): number {
  let n = 54;
  for (const e of m.entries) n += 21 + e.data.length;
  return n;
}

/** Encodes one message to a fresh buffer. */
export function encodeMessage(m: Message): Uint8Array {
  const w = new ByteWriter(messageSize(m));
  writeMessage(w, m);
  return w.finish();
}

/** Decodes exactly one message; trailing bytes are an error. */
export function decodeMessage(buf: Uint8Array): Message {
  const r = new ByteReader(buf);
  const m = readMessage(r);
  if (r.remaining !== 0) throw new SyntaxError(`Cannot decode message: ${r.remaining} extra bytes`);
  return m;
}

export function writeHardState(w: ByteWriter, hs: HardState): void {
  w.u64(hs.term);
  w.u32(hs.vote);
  w.u64(hs.commit);
}

export function readHardState(r: ByteReader): HardState {
  return { term: r.u64("term"), vote: r.u32("vote"), commit: r.u64("commit") };
}
