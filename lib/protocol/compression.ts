/**
 * The record-batch compression codecs, as Kafka frames them: gzip; snappy in the
 * xerial/snappy-java framing Kafka's Java client writes (raw snappy, which some clients
 * send, is read too); lz4 in the LZ4 frame format; zstd frames. The broker stores batches
 * as producers sent them and needs these only where it must see records inside a
 * compressed batch: the key check of compacted topics and the log cleaner, which
 * recompresses a rewritten batch with its original codec.
 *
 * gzip and zstd come from Deno's `node:zlib`; snappy and lz4 from the napi-rs modules
 * `snappy` and `lz4-napi` (Node-API, like the CRC32C module).
 */
import { Buffer } from "node:buffer";
import { gunzipSync, gzipSync, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { compressFrameSync as lz4FrameCompress, decompressFrameSync } from "lz4-napi";
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from "snappy";
import { ProtocolDecodeError } from "./bytes.ts";
import { Compression } from "./record_batch.ts";

/** `\x82SNAPPY\x00`: the snappy-java stream header. */
const XERIAL_MAGIC = [0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00];
/** Magic, version 1, minimum compatible version 1. */
const XERIAL_HEADER = 16;
/** snappy-java's default block size. */
const XERIAL_BLOCK = 32 * 1024;

function isXerial(data: Uint8Array): boolean {
  if (data.length < XERIAL_HEADER) return false;
  for (let i = 0; i < XERIAL_MAGIC.length; i++) if (data[i] !== XERIAL_MAGIC[i]) return false;
  return true;
}

/** A Buffer view of `data` (no copy), for the Node-API codecs. */
function buf(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** A plain Uint8Array view of a codec's output (a Buffer, usually), without copying. */
function asBytes(b: Uint8Array | string): Uint8Array {
  if (typeof b === "string") throw new ProtocolDecodeError("A codec returned text, not bytes");
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function snappyDecompress(data: Uint8Array): Uint8Array {
  if (!isXerial(data)) return asBytes(snappyUncompress(buf(data), { asBuffer: true }));
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const parts: Uint8Array[] = [];
  let total = 0;
  let pos = XERIAL_HEADER;
  while (pos < data.length) {
    if (pos + 4 > data.length) throw new ProtocolDecodeError("Truncated snappy-java block length");
    const len = view.getInt32(pos);
    pos += 4;
    if (len < 0 || pos + len > data.length) {
      throw new ProtocolDecodeError(`Bad snappy-java block of ${len} bytes`);
    }
    const block = asBytes(snappyUncompress(buf(data.subarray(pos, pos + len)), { asBuffer: true }));
    parts.push(block);
    total += block.length;
    pos += len;
  }
  return concat(parts, total);
}

function snappyCompressXerial(data: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  const header = new Uint8Array(XERIAL_HEADER);
  header.set(XERIAL_MAGIC);
  const hv = new DataView(header.buffer);
  hv.setInt32(8, 1);
  hv.setInt32(12, 1);
  parts.push(header);
  let total = XERIAL_HEADER;
  for (let pos = 0; pos < data.length || pos === 0; pos += XERIAL_BLOCK) {
    const block = asBytes(snappyCompress(buf(data.subarray(pos, pos + XERIAL_BLOCK))));
    const len = new Uint8Array(4);
    new DataView(len.buffer).setInt32(0, block.length);
    parts.push(len, block);
    total += 4 + block.length;
    if (data.length === 0) break;
  }
  return concat(parts, total);
}

/**
 * The records section of a batch compressed with `codec` (Kafka's codec id), uncompressed.
 *
 * @throws {ProtocolDecodeError} for an unknown codec or bytes the codec cannot read
 */
export function decompress(codec: number, data: Uint8Array): Uint8Array {
  try {
    switch (codec) {
      case Compression.NONE:
        return data;
      case Compression.GZIP:
        return asBytes(gunzipSync(data));
      case Compression.SNAPPY:
        return snappyDecompress(data);
      case Compression.LZ4:
        return asBytes(decompressFrameSync(buf(data)));
      case Compression.ZSTD:
        return asBytes(zstdDecompressSync(data));
    }
  } catch (err) {
    if (err instanceof ProtocolDecodeError) throw err;
    throw new ProtocolDecodeError(
      `Cannot decompress a ${codecName(codec)} batch: ${(err as Error).message}`,
      { cause: err },
    );
  }
  throw new ProtocolDecodeError(`Unknown compression codec ${codec}`);
}

/** `data` compressed with `codec`, framed as Kafka's Java client frames it. */
export function compress(codec: number, data: Uint8Array): Uint8Array {
  switch (codec) {
    case Compression.NONE:
      return data;
    case Compression.GZIP:
      return asBytes(gzipSync(data));
    case Compression.SNAPPY:
      return snappyCompressXerial(data);
    case Compression.LZ4:
      return asBytes(lz4FrameCompress(buf(data)));
    case Compression.ZSTD:
      return asBytes(zstdCompressSync(data));
  }
  throw new RangeError(`Unknown compression codec ${codec}`);
}

/** Kafka's name of a codec id. */
export function codecName(codec: number): string {
  return ["none", "gzip", "snappy", "lz4", "zstd"][codec] ?? `codec ${codec}`;
}
