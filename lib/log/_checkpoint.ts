/**
 * Small checkpoint files holding one number (`log-start-offset`, `recovery-point`,
 * `log-incarnation`), replaced atomically: write a temp file, fsync it, rename it over,
 * fsync the directory. Format: a version line "0" and the number, in decimal.
 */
import { type FileSystem, syncDir } from "../runtime/fs.ts";

/** Atomically replaces `dir/name` with `value`. */
export async function writeCheckpoint(
  fs: FileSystem,
  dir: string,
  name: string,
  value: number,
): Promise<void> {
  const tmp = `${dir}/${name}.tmp`;
  const bytes = new TextEncoder().encode(`0\n${value}\n`);
  const f = await fs.open(tmp, { write: true, create: true, truncate: true });
  try {
    let done = 0;
    while (done < bytes.length) done += await f.write(bytes.subarray(done));
    await f.syncData();
  } finally {
    f.close();
  }
  await fs.rename(tmp, `${dir}/${name}`);
  await syncDir(fs, dir);
}

/**
 * Reads `dir/name`: the offset, null if the file is absent, or "invalid" if it cannot
 * be parsed (the caller falls back to the safe choice and logs it).
 */
export function readCheckpoint(
  fs: FileSystem,
  dir: string,
  name: string,
): number | null | "invalid" {
  let text: string;
  try {
    text = fs.readTextFileSync(`${dir}/${name}`);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const match = /^0\n(\d{1,16})\n$/.exec(text);
  if (match === null) return "invalid";
  const value = Number(match[1]);
  return Number.isSafeInteger(value) ? value : "invalid";
}
