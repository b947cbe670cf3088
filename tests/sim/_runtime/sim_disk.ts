/**
 * An in-memory disk with the durability rules of POSIX, strictly read: a file's data is
 * durable once an fsync/fdatasync of it completes, and a directory entry (create, remove,
 * rename) once an fsync of its directory completes. A process crash (kill -9) keeps
 * everything, as the page cache survives it; a power failure keeps the durable state plus,
 * per file and per directory, a random prefix of what happened since (the last data write
 * possibly torn), which is the most a real disk may keep and the least it may lose.
 *
 * Async calls complete after a latency on the scheduler, as events of the calling
 * process, so other events interleave with them; fsync latency and failures are the
 * harness's to set ({@linkcode DiskFaults}). One disk per simulated machine; each process
 * incarnation gets its own {@linkcode FileSystem} view ({@linkcode SimDisk.fsFor}), whose
 * open files and locks die with the process.
 */
import type {
  DirEntry,
  FileHandle,
  FileInfo,
  FileSystem,
  OpenOptions,
} from "../../../lib/runtime/mod.ts";
import type { Random } from "../../../lib/util/random.ts";
import type { SimProcess } from "./scheduler.ts";

type DataOp =
  | { readonly kind: "write"; readonly pos: number; readonly bytes: Uint8Array }
  | { readonly kind: "truncate"; readonly len: number };

type NsOp =
  | { readonly kind: "link"; readonly name: string; readonly node: INode }
  | { readonly kind: "unlink"; readonly name: string };

/** Growable bytes. */
class Bytes {
  buf = new Uint8Array(256);
  size = 0;

  apply(op: DataOp, limit = Infinity): void {
    if (op.kind === "truncate") {
      this.#resize(op.len);
      return;
    }
    const n = Math.min(op.bytes.length, limit);
    const end = op.pos + n;
    if (end > this.size) this.#resize(end);
    this.buf.set(n === op.bytes.length ? op.bytes : op.bytes.subarray(0, n), op.pos);
  }

  #resize(len: number): void {
    if (len > this.buf.length) {
      let cap = this.buf.length;
      while (cap < len) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.size));
      this.buf = next;
    } else if (len < this.size) {
      this.buf.fill(0, len, this.size);
    }
    this.size = len;
  }

  copy(): Bytes {
    const b = new Bytes();
    b.buf = this.buf.slice(0, Math.max(256, this.size));
    b.size = this.size;
    return b;
  }
}

let nextInode = 1;

/** A file or a directory. */
class INode {
  readonly id = nextInode++;
  readonly kind: "file" | "dir";
  /** Files: what reads see now, and what survives a power failure. */
  data = new Bytes();
  durable = new Bytes();
  pending: DataOp[] = [];
  /** Directories: entries now, durable entries, and changes not yet fsynced. */
  entries = new Map<string, INode>();
  durableEntries = new Map<string, INode>();
  pendingNs: NsOp[] = [];

  constructor(kind: "file" | "dir") {
    this.kind = kind;
  }
}

/** Fault settings the harness changes while a run goes on. */
export interface DiskFaults {
  /** Milliseconds an fsync takes. */
  fsyncLatencyMs: () => number;
  /** Whether this fsync fails (EIO). */
  fsyncFails: () => boolean;
}

/** Milliseconds any other async call takes. */
const IO_LATENCY_MS = 0.03;

function notFound(what: string, path: string): Error {
  return new Deno.errors.NotFound(`No such file or directory (os error 2): ${what} '${path}'`);
}

function split(path: string): string[] {
  if (!path.startsWith("/")) throw new TypeError(`Simulated paths are absolute: ${path}`);
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts;
}

/** One machine's disk. */
export class SimDisk {
  readonly name: string;
  #root = new INode("dir");
  faults: DiskFaults = { fsyncLatencyMs: () => 0.2, fsyncFails: () => false };
  /** Inodes locked, by the process holding the lock. */
  readonly #locks = new Map<INode, SimProcess>();
  /** Bumped on power failure: handles of earlier generations are void. */
  #generation = 0;
  /** fsyncs completed (for the trace). */
  syncs = 0;

  constructor(name: string) {
    this.name = name;
  }

  /** A file-system view for one process incarnation. */
  fsFor(proc: SimProcess): FileSystem {
    return new SimFs(this, proc);
  }

  /**
   * Power failure: the disk keeps what was durable plus, for each file and directory, a
   * random prefix of the later changes (the last write possibly cut short).
   */
  powerLoss(random: Random): void {
    this.#generation++;
    this.#locks.clear();
    const visit = (dir: INode): void => {
      const kept = random.int(0, dir.pendingNs.length);
      const entries = new Map(dir.durableEntries);
      for (const op of dir.pendingNs.slice(0, kept)) {
        if (op.kind === "link") entries.set(op.name, op.node);
        else entries.delete(op.name);
      }
      dir.entries = entries;
      dir.durableEntries = new Map(entries);
      dir.pendingNs = [];
      for (const child of entries.values()) {
        if (child.kind === "dir") visit(child);
        else crashFile(child, random);
      }
    };
    visit(this.#root);
  }

  get generation(): number {
    return this.#generation;
  }

  // ---- namespace --------------------------------------------------------------------

  lookup(path: string): INode | undefined {
    let node: INode | undefined = this.#root;
    for (const part of split(path)) {
      if (node === undefined || node.kind !== "dir") return undefined;
      node = node.entries.get(part);
    }
    return node;
  }

  /** The parent directory of `path` and the last name; throws NotFound/NotADirectory. */
  parentOf(path: string, what: string): { dir: INode; name: string } {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) throw new Deno.errors.AlreadyExists(`${what} '/': is the root`);
    let dir: INode = this.#root;
    for (const part of parts) {
      const next = dir.entries.get(part);
      if (next === undefined) throw notFound(what, path);
      if (next.kind !== "dir") {
        throw new Deno.errors.NotADirectory(`Not a directory (os error 20): ${what} '${path}'`);
      }
      dir = next;
    }
    return { dir, name };
  }

  link(dir: INode, name: string, node: INode): void {
    dir.entries.set(name, node);
    dir.pendingNs.push({ kind: "link", name, node });
  }

  unlink(dir: INode, name: string): void {
    dir.entries.delete(name);
    dir.pendingNs.push({ kind: "unlink", name });
  }

  lock(node: INode, proc: SimProcess): boolean {
    const holder = this.#locks.get(node);
    if (holder !== undefined && holder !== proc && holder.state !== "dead") return false;
    this.#locks.set(node, proc);
    return true;
  }

  unlock(node: INode, proc: SimProcess): void {
    if (this.#locks.get(node) === proc) this.#locks.delete(node);
  }
}

function crashFile(file: INode, random: Random): void {
  const kept = random.int(0, file.pending.length);
  const data = file.durable.copy();
  file.pending.slice(0, kept).forEach((op, i) => {
    const torn = i === kept - 1 && op.kind === "write" && random.chance(0.5);
    data.apply(op, torn ? random.int(0, op.bytes.length) : Infinity);
  });
  file.data = data;
  file.durable = data.copy();
  file.pending = [];
}

function fsyncFile(file: INode, upTo: number): void {
  for (const op of file.pending.slice(0, upTo)) file.durable.apply(op);
  file.pending = file.pending.slice(upTo);
}

function fsyncDir(dir: INode, upTo: number): void {
  for (const op of dir.pendingNs.slice(0, upTo)) {
    if (op.kind === "link") dir.durableEntries.set(op.name, op.node);
    else dir.durableEntries.delete(op.name);
  }
  dir.pendingNs = dir.pendingNs.slice(upTo);
}

function info(node: INode): FileInfo {
  return {
    isFile: node.kind === "file",
    isDirectory: node.kind === "dir",
    size: node.kind === "file" ? node.data.size : 0,
  };
}

/** One process's view of a {@linkcode SimDisk}. */
class SimFs implements FileSystem {
  readonly #disk: SimDisk;
  readonly #proc: SimProcess;
  readonly #generation: number;

  constructor(disk: SimDisk, proc: SimProcess) {
    this.#disk = disk;
    this.#proc = proc;
    this.#generation = disk.generation;
  }

  /** Completes `fn`'s result after `latencyMs`, as an event of this process. */
  later<T>(fn: () => T, latencyMs = IO_LATENCY_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#proc.schedule(latencyMs, () => {
        if (this.#disk.generation !== this.#generation) return; // the machine lost power
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  get disk(): SimDisk {
    return this.#disk;
  }

  get proc(): SimProcess {
    return this.#proc;
  }

  openSync(path: string, options: OpenOptions = { read: true }): FileHandle {
    const d = this.#disk;
    let node = d.lookup(path);
    if (node !== undefined && options.createNew) {
      throw new Deno.errors.AlreadyExists(`File exists (os error 17): open '${path}'`);
    }
    if (node === undefined) {
      if (!options.create && !options.createNew) throw notFound("open", path);
      const { dir, name } = d.parentOf(path, "open");
      node = new INode("file");
      d.link(dir, name, node);
    }
    const writable = !!(options.write || options.append);
    if (node.kind === "dir" && writable) {
      throw new Deno.errors.IsADirectory(`Is a directory (os error 21): open '${path}'`);
    }
    const handle = new SimFile(this, node, writable, !!options.append);
    if (options.truncate && writable && node.kind === "file") handle.truncateSync(0);
    return handle;
  }

  open(path: string, options?: OpenOptions): Promise<FileHandle> {
    return this.later(() => this.openSync(path, options));
  }

  mkdirSync(path: string, options: { recursive?: boolean } = {}): void {
    const d = this.#disk;
    if (options.recursive) {
      let prefix = "";
      for (const part of split(path)) {
        prefix += `/${part}`;
        const node = d.lookup(prefix);
        if (node === undefined) {
          const { dir, name } = d.parentOf(prefix, "mkdir");
          d.link(dir, name, new INode("dir"));
        } else if (node.kind !== "dir") {
          throw new Deno.errors.NotADirectory(`Not a directory (os error 20): mkdir '${path}'`);
        }
      }
      return;
    }
    if (d.lookup(path) !== undefined) {
      throw new Deno.errors.AlreadyExists(`File exists (os error 17): mkdir '${path}'`);
    }
    const { dir, name } = d.parentOf(path, "mkdir");
    d.link(dir, name, new INode("dir"));
  }

  mkdir(path: string, options?: { recursive?: boolean }): Promise<void> {
    return this.later(() => this.mkdirSync(path, options));
  }

  readDirSync(path: string): Iterable<DirEntry> {
    const node = this.#disk.lookup(path);
    if (node === undefined) throw notFound("readdir", path);
    if (node.kind !== "dir") {
      throw new Deno.errors.NotADirectory(`Not a directory (os error 20): readdir '${path}'`);
    }
    return [...node.entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map((
      [name, n],
    ) => ({ name, isFile: n.kind === "file", isDirectory: n.kind === "dir" }));
  }

  readDir(path: string): AsyncIterable<DirEntry> {
    const listing = this.later(() => [...this.readDirSync(path)]);
    return {
      async *[Symbol.asyncIterator]() {
        for (const e of await listing) yield e;
      },
    };
  }

  statSync(path: string): FileInfo {
    const node = this.#disk.lookup(path);
    if (node === undefined) throw notFound("stat", path);
    return info(node);
  }

  stat(path: string): Promise<FileInfo> {
    return this.later(() => this.statSync(path));
  }

  removeSync(path: string, options: { recursive?: boolean } = {}): void {
    const d = this.#disk;
    const node = d.lookup(path);
    if (node === undefined) throw notFound("remove", path);
    if (node.kind === "dir" && node.entries.size > 0 && !options.recursive) {
      throw new Error(`Directory not empty (os error 39): remove '${path}'`);
    }
    const { dir, name } = d.parentOf(path, "remove");
    d.unlink(dir, name);
  }

  remove(path: string, options?: { recursive?: boolean }): Promise<void> {
    return this.later(() => this.removeSync(path, options));
  }

  rename(from: string, to: string): Promise<void> {
    return this.later(() => {
      const d = this.#disk;
      const node = d.lookup(from);
      if (node === undefined) throw notFound("rename", `${from}' -> '${to}`);
      const src = d.parentOf(from, "rename");
      const dst = d.parentOf(to, "rename");
      const existing = dst.dir.entries.get(dst.name);
      if (existing?.kind === "dir" && node.kind !== "dir") {
        throw new Deno.errors.IsADirectory(`Is a directory (os error 21): rename '${to}'`);
      }
      // One atomic step in the same directory: a power failure keeps the old or the new name.
      d.link(dst.dir, dst.name, node);
      if (src.dir !== dst.dir || src.name !== dst.name) d.unlink(src.dir, src.name);
    });
  }

  readFileSync(path: string): Uint8Array {
    const node = this.#disk.lookup(path);
    if (node === undefined) throw notFound("open", path);
    if (node.kind !== "file") {
      throw new Deno.errors.IsADirectory(`Is a directory (os error 21): read '${path}'`);
    }
    return node.data.buf.slice(0, node.data.size);
  }

  readFile(path: string): Promise<Uint8Array> {
    return this.later(() => this.readFileSync(path));
  }

  readTextFileSync(path: string): string {
    return new TextDecoder().decode(this.readFileSync(path));
  }

  readTextFile(path: string): Promise<string> {
    return this.later(() => this.readTextFileSync(path));
  }

  writeFileSync(path: string, data: Uint8Array): void {
    using f = this.openSync(path, { write: true, create: true, truncate: true });
    let done = 0;
    while (done < data.length) done += f.writeSync(data.subarray(done));
  }

  writeFile(path: string, data: Uint8Array): Promise<void> {
    const copy = data.slice();
    return this.later(() => this.writeFileSync(path, copy));
  }

  writeTextFileSync(path: string, text: string): void {
    this.writeFileSync(path, new TextEncoder().encode(text));
  }

  writeTextFile(path: string, text: string): Promise<void> {
    return this.later(() => this.writeTextFileSync(path, text));
  }
}

/** An open file or directory of a {@linkcode SimFs}. */
class SimFile implements FileHandle {
  readonly #fs: SimFs;
  readonly #node: INode;
  readonly #writable: boolean;
  readonly #append: boolean;
  #pos = 0;
  #closed = false;
  #locked = false;

  constructor(fs: SimFs, node: INode, writable: boolean, append: boolean) {
    this.#fs = fs;
    this.#node = node;
    this.#writable = writable;
    this.#append = append;
  }

  #check(): INode {
    if (this.#closed) throw new Deno.errors.BadResource("Bad resource ID");
    return this.#node;
  }

  #checkFile(): INode {
    const node = this.#check();
    if (node.kind !== "file") throw new Deno.errors.IsADirectory("Is a directory (os error 21)");
    return node;
  }

  readSync(p: Uint8Array): number | null {
    const node = this.#checkFile();
    if (p.length === 0) return 0;
    const available = node.data.size - this.#pos;
    if (available <= 0) return null;
    const n = Math.min(available, p.length);
    p.set(node.data.buf.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return n;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#fs.later(() => this.readSync(p));
  }

  writeSync(p: Uint8Array): number {
    const node = this.#checkFile();
    if (!this.#writable) throw new Deno.errors.BadResource("Bad file descriptor (os error 9)");
    if (this.#append) this.#pos = node.data.size;
    const op: DataOp = { kind: "write", pos: this.#pos, bytes: p.slice() };
    node.data.apply(op);
    node.pending.push(op);
    this.#pos += p.length;
    return p.length;
  }

  write(p: Uint8Array): Promise<number> {
    const copy = p.slice();
    return this.#fs.later(() => this.writeSync(copy));
  }

  seekSync(offset: number, whence: Deno.SeekMode): number {
    const node = this.#check();
    const base = whence === Deno.SeekMode.Start
      ? 0
      : whence === Deno.SeekMode.Current
      ? this.#pos
      : node.data.size;
    const pos = base + offset;
    if (pos < 0) throw new TypeError("Invalid argument (os error 22): seek before the start");
    this.#pos = pos;
    return pos;
  }

  seek(offset: number, whence: Deno.SeekMode): Promise<number> {
    return this.#fs.later(() => this.seekSync(offset, whence));
  }

  truncateSync(len = 0): void {
    const node = this.#checkFile();
    if (!this.#writable) throw new Deno.errors.BadResource("Bad file descriptor (os error 9)");
    const op: DataOp = { kind: "truncate", len };
    node.data.apply(op);
    node.pending.push(op);
  }

  truncate(len?: number): Promise<void> {
    return this.#fs.later(() => this.truncateSync(len));
  }

  statSync(): FileInfo {
    return info(this.#check());
  }

  stat(): Promise<FileInfo> {
    return this.#fs.later(() => this.statSync());
  }

  #sync(): Promise<void> {
    const node = this.#check();
    const disk = this.#fs.disk;
    // What was written before the call is what the call makes durable.
    const upTo = node.kind === "file" ? node.pending.length : node.pendingNs.length;
    const fails = disk.faults.fsyncFails();
    return this.#fs.later(() => {
      if (fails) throw new Error("Input/output error (os error 5)");
      if (node.kind === "file") fsyncFile(node, upTo);
      else fsyncDir(node, upTo);
      disk.syncs++;
    }, disk.faults.fsyncLatencyMs());
  }

  syncData(): Promise<void> {
    return this.#sync();
  }

  sync(): Promise<void> {
    return this.#sync();
  }

  lock(_exclusive?: boolean): Promise<void> {
    const node = this.#check();
    const fs = this.#fs;
    return new Promise((resolve) => {
      const attempt = () => {
        if (this.#closed) return;
        if (fs.disk.lock(node, fs.proc)) {
          this.#locked = true;
          resolve();
        } else fs.proc.schedule(10, attempt); // flock(2) blocks until the holder lets go
      };
      fs.proc.schedule(IO_LATENCY_MS, attempt);
    });
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Bad resource ID");
    this.#closed = true;
    if (this.#locked) this.#fs.disk.unlock(this.#node, this.#fs.proc);
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}
