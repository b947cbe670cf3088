/**
 * Durable, append-only journal of metadata records for a node that is its own (one-node)
 * metadata quorum. Frames are `u32 length | u32 crc32c(payload) | payload (JSON)`; every
 * append is fsynced before it returns, and a torn or corrupt tail is truncated on open.
 */
import { crc32c } from "../util/crc32c.ts";
import { getLogger } from "../util/log.ts";
import type { MetadataRecord } from "./records.ts";

const FRAME_HEADER = 8;
const log = getLogger(["tidelog", "metadata"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The journal file and the records it held when opened. */
export class RecordJournal {
  #file: Deno.FsFile;
  #size: number;

  private constructor(file: Deno.FsFile, size: number) {
    this.#file = file;
    this.#size = size;
  }

  /** Opens `path`, returning the journal and every intact record in it. */
  static async open(path: string): Promise<{ journal: RecordJournal; records: MetadataRecord[] }> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      bytes = new Uint8Array(0);
    }
    const records: MetadataRecord[] = [];
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = 0;
    while (pos + FRAME_HEADER <= bytes.length) {
      const len = view.getUint32(pos);
      const crc = view.getUint32(pos + 4);
      const end = pos + FRAME_HEADER + len;
      if (end > bytes.length) break;
      const payload = bytes.subarray(pos + FRAME_HEADER, end);
      if (crc32c(payload) !== crc) break;
      records.push(JSON.parse(decoder.decode(payload)) as MetadataRecord);
      pos = end;
    }
    const file = await Deno.open(path, { read: true, write: true, create: true });
    if (pos < bytes.length) {
      log.warn(
        "Truncated metadata journal {path} from {size} to {pos} bytes (torn or corrupt tail)",
        {
          path,
          size: bytes.length,
          pos,
        },
      );
      await file.truncate(pos);
      await file.syncData();
    }
    return { journal: new RecordJournal(file, pos), records };
  }

  /** Appends `records` and fsyncs them. */
  async append(records: readonly MetadataRecord[]): Promise<void> {
    const frames = records.map((r) => {
      const payload = encoder.encode(JSON.stringify(r));
      const frame = new Uint8Array(FRAME_HEADER + payload.length);
      const view = new DataView(frame.buffer);
      view.setUint32(0, payload.length);
      view.setUint32(4, crc32c(payload));
      frame.set(payload, FRAME_HEADER);
      return frame;
    });
    const total = frames.reduce((n, f) => n + f.length, 0);
    const buf = new Uint8Array(total);
    let pos = 0;
    for (const f of frames) {
      buf.set(f, pos);
      pos += f.length;
    }
    await this.#file.seek(this.#size, Deno.SeekMode.Start);
    let written = 0;
    while (written < buf.length) written += await this.#file.write(buf.subarray(written));
    await this.#file.syncData();
    this.#size += total;
  }

  close(): void {
    this.#file.close();
  }
}
