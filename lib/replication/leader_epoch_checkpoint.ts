/**
 * The `leader-epoch-checkpoint` file of a partition directory, in Kafka's text format: a
 * version line "0", a count line, then one "epoch startOffset" line per entry. Replaced
 * atomically: write a temp file, fsync it, rename it over, fsync the directory.
 */
import { type FileSystem, syncDir } from "../runtime/fs.ts";
import { checkEpochEntries, type EpochEntry } from "./leader_epoch_cache.ts";

/** The file's name inside the partition directory (DESIGN §3). */
export const LEADER_EPOCH_CHECKPOINT_FILE = "leader-epoch-checkpoint";

/** Encodes `entries` in Kafka's checkpoint format. */
export function encodeLeaderEpochCheckpoint(entries: readonly EpochEntry[]): string {
  const lines = ["0", String(entries.length)];
  for (const e of entries) lines.push(`${e.epoch} ${e.startOffset}`);
  return lines.join("\n") + "\n";
}

/**
 * Parses a checkpoint's text.
 *
 * @throws {SyntaxError} if it is not version 0, the count does not match, a line is not
 * two decimal numbers, or the entries do not increase
 */
export function parseLeaderEpochCheckpoint(text: string): EpochEntry[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines[0] !== "0") {
    throw new SyntaxError(`Cannot parse leader epoch checkpoint: version is not 0`);
  }
  const count = /^\d{1,9}$/.test(lines[1] ?? "") ? Number(lines[1]) : NaN;
  if (!(count === lines.length - 2)) {
    throw new SyntaxError(
      `Cannot parse leader epoch checkpoint: count line says ${lines[1]}, ${
        lines.length - 2
      } entries follow`,
    );
  }
  const entries: EpochEntry[] = [];
  for (const line of lines.slice(2)) {
    const m = /^(\d{1,10}) (\d{1,16})$/.exec(line);
    if (m === null) {
      throw new SyntaxError(`Cannot parse leader epoch checkpoint line "${line}"`);
    }
    entries.push({ epoch: Number(m[1]), startOffset: Number(m[2]) });
  }
  try {
    checkEpochEntries(entries);
  } catch (err) {
    throw new SyntaxError(`Cannot parse leader epoch checkpoint: ${(err as Error).message}`);
  }
  return entries;
}

/**
 * Reads `dir/leader-epoch-checkpoint`: its entries, null if the file is absent, or
 * "invalid" if it cannot be parsed.
 */
export async function readLeaderEpochCheckpoint(
  fs: FileSystem,
  dir: string,
): Promise<EpochEntry[] | null | "invalid"> {
  let text: string;
  try {
    text = await fs.readTextFile(`${dir}/${LEADER_EPOCH_CHECKPOINT_FILE}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    return parseLeaderEpochCheckpoint(text);
  } catch (err) {
    if (err instanceof SyntaxError) return "invalid";
    throw err;
  }
}

/** Atomically replaces `dir/leader-epoch-checkpoint` with `entries`, durably. */
export async function writeLeaderEpochCheckpoint(
  fs: FileSystem,
  dir: string,
  entries: readonly EpochEntry[],
): Promise<void> {
  const path = `${dir}/${LEADER_EPOCH_CHECKPOINT_FILE}`;
  const tmp = `${path}.tmp`;
  const bytes = new TextEncoder().encode(encodeLeaderEpochCheckpoint(entries));
  {
    using f = await fs.open(tmp, { write: true, create: true, truncate: true });
    let done = 0;
    while (done < bytes.length) done += await f.write(bytes.subarray(done));
    await f.syncData();
  }
  await fs.rename(tmp, path);
  await syncDir(fs, dir);
}
