/**
 * Reader for the metadata journal of format-1 data directories (`metadata/records.log`,
 * from before metadata moved into the Raft log). Frames are
 * `u32 length | u32 crc32c(payload) | payload (JSON)`; reading stops at the first torn or
 * corrupt frame, which was never acknowledged (every append was fsynced before it
 * returned). Used once, to migrate such a directory.
 */
import type { FileSystem } from "../runtime/fs.ts";
import { crc32c } from "../util/crc32c.ts";
import type { MetadataRecord } from "./records.ts";

const FRAME_HEADER = 8;

/** Every intact record of the journal at `path` on `fs`, in order. */
export async function readRecordJournal(fs: FileSystem, path: string): Promise<MetadataRecord[]> {
  const bytes = await fs.readFile(path);
  const decoder = new TextDecoder();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: MetadataRecord[] = [];
  let pos = 0;
  while (pos + FRAME_HEADER <= bytes.length) {
    const len = view.getUint32(pos);
    const end = pos + FRAME_HEADER + len;
    if (end > bytes.length) break;
    const payload = bytes.subarray(pos + FRAME_HEADER, end);
    if (crc32c(payload) !== view.getUint32(pos + 4)) break;
    records.push(JSON.parse(decoder.decode(payload)) as MetadataRecord);
    pos = end;
  }
  return records;
}
