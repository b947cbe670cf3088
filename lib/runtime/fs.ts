/**
 * The file system as the durable parts of a node use it (partition logs, checkpoints,
 * the Raft log and hard state, producer snapshots, the data directory's own files): the
 * subset of Deno's file API they call, so that a simulation can put them on an in-memory
 * disk that loses what was not fsynced when its process crashes. Errors are Deno's
 * (`Deno.errors.NotFound`, `Deno.errors.AlreadyExists`, ...), whichever implementation
 * throws them. {@linkcode denoFs} is the real one.
 */

/** What {@linkcode FileSystem.stat} and {@linkcode FileHandle.stat} report. */
export interface FileInfo {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly size: number;
}

/** One entry of a directory listing. */
export interface DirEntry {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
}

/** An open file (the part of `Deno.FsFile` we use). */
export interface FileHandle extends Disposable {
  read(p: Uint8Array): Promise<number | null>;
  readSync(p: Uint8Array): number | null;
  write(p: Uint8Array): Promise<number>;
  writeSync(p: Uint8Array): number;
  seek(offset: number, whence: Deno.SeekMode): Promise<number>;
  seekSync(offset: number, whence: Deno.SeekMode): number;
  truncate(len?: number): Promise<void>;
  truncateSync(len?: number): void;
  stat(): Promise<FileInfo>;
  statSync(): FileInfo;
  /** fdatasync: the file's data is durable once this resolves. */
  syncData(): Promise<void>;
  /** fsync (on a directory handle: its entries are durable once this resolves). */
  sync(): Promise<void>;
  /** An advisory lock, held until the handle is closed. */
  lock(exclusive?: boolean): Promise<void>;
  close(): void;
}

/** Options of {@linkcode FileSystem.open} (as `Deno.OpenOptions`). */
export interface OpenOptions {
  read?: boolean;
  write?: boolean;
  append?: boolean;
  truncate?: boolean;
  create?: boolean;
  createNew?: boolean;
}

/** The file-system calls the durable parts of a node make. */
export interface FileSystem {
  open(path: string, options?: OpenOptions): Promise<FileHandle>;
  openSync(path: string, options?: OpenOptions): FileHandle;
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  mkdirSync(path: string, options?: { recursive?: boolean }): void;
  readDir(path: string): AsyncIterable<DirEntry>;
  readDirSync(path: string): Iterable<DirEntry>;
  stat(path: string): Promise<FileInfo>;
  statSync(path: string): FileInfo;
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  removeSync(path: string, options?: { recursive?: boolean }): void;
  rename(from: string, to: string): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  readFileSync(path: string): Uint8Array;
  readTextFile(path: string): Promise<string>;
  readTextFileSync(path: string): string;
  /** Creates or replaces the file's contents (not fsynced). */
  writeFile(path: string, data: Uint8Array): Promise<void>;
  writeFileSync(path: string, data: Uint8Array): void;
  writeTextFile(path: string, text: string): Promise<void>;
  writeTextFileSync(path: string, text: string): void;
  /**
   * File descriptors this process has open and may open at most (`ulimit -n`), where the
   * platform tells (Linux); absent or null elsewhere. Every partition keeps its active
   * segment open, so a node refuses to open more partitions than this allows instead of
   * failing part-way (Deno panics when `open` meets EMFILE).
   */
  descriptors?(): { open: number; limit: number } | null;
}

/** Deno's own file system. */
export const denoFs: FileSystem = {
  open: (path, options) => Deno.open(path, options),
  openSync: (path, options) => Deno.openSync(path, options),
  mkdir: (path, options) => Deno.mkdir(path, options),
  mkdirSync: (path, options) => Deno.mkdirSync(path, options),
  readDir: (path) => Deno.readDir(path),
  readDirSync: (path) => Deno.readDirSync(path),
  stat: (path) => Deno.stat(path),
  statSync: (path) => Deno.statSync(path),
  remove: (path, options) => Deno.remove(path, options),
  removeSync: (path, options) => Deno.removeSync(path, options),
  rename: (from, to) => Deno.rename(from, to),
  readFile: (path) => Deno.readFile(path),
  readFileSync: (path) => Deno.readFileSync(path),
  readTextFile: (path) => Deno.readTextFile(path),
  readTextFileSync: (path) => Deno.readTextFileSync(path),
  writeFile: (path, data) => Deno.writeFile(path, data),
  writeFileSync: (path, data) => Deno.writeFileSync(path, data),
  writeTextFile: (path, text) => Deno.writeTextFile(path, text),
  writeTextFileSync: (path, text) => Deno.writeTextFileSync(path, text),
  descriptors: linuxDescriptors,
};

/** Open descriptors and the soft limit, from /proc/self (Linux); null elsewhere. */
function linuxDescriptors(): { open: number; limit: number } | null {
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const m = limits.match(/^Max open files\s+(\d+|unlimited)/m);
    if (!m || m[1] === "unlimited") return null;
    let open = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) open++;
    return { open, limit: Number(m[1]) };
  } catch {
    return null;
  }
}

/** fsyncs a directory, so that entries created, renamed or removed in it are durable. */
export async function syncDir(fs: FileSystem, path: string): Promise<void> {
  using dir = await fs.open(path, { read: true });
  await dir.sync();
}

/**
 * Creates directory `path` and any missing parents, like `mkdir -p`, and makes each
 * directory it created durable (its parent is fsynced after the creation, as Kafka's
 * `Utils.flushDir` does for new log directories): otherwise a power failure can take the
 * new directory, and everything later written and fsynced inside it, away with it.
 * Throws `TypeError` when `path` exists and is not a directory.
 */
export async function ensureDir(fs: FileSystem, path: string): Promise<void> {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  let current = path.startsWith("/") ? "" : ".";
  for (const part of parts) {
    const parent = current === "" ? "/" : current;
    current = current === "" ? `/${part}` : `${current}/${part}`;
    if (part === "..") continue;
    try {
      const st = await fs.stat(current);
      if (!st.isDirectory) {
        throw new TypeError(`Cannot use ${current} as a directory: it is a file`);
      }
      continue;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    try {
      await fs.mkdir(current);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    await syncDir(fs, parent);
  }
}

/** Total and free bytes of the file system holding `path` (DescribeLogDirs v4). */
export async function diskSpace(
  path: string,
): Promise<{ totalBytes: number; usableBytes: number }> {
  const { statfs } = await import("node:fs/promises");
  const s = await statfs(path);
  return { totalBytes: s.blocks * s.bsize, usableBytes: s.bavail * s.bsize };
}
