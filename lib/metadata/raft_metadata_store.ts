/**
 * The cluster's metadata store: metadata records carried by the Raft log (DESIGN §7).
 * The store every node runs (a single voter by default), plus the controller queries:
 * the Raft leader is the controller, and only it plans and proposes; every node applies
 * the committed records to its {@linkcode MetadataImage} and tells its listeners.
 *
 * Entry format: one Raft entry is one batch of records, `u8 version (1) | UTF-8 JSON
 * array of records` ({@linkcode encodeMetadataEntry}). `Uint8Array` values travel as
 * `{"$bytes": base64}`; values JSON cannot carry exactly (bigint, non-finite numbers)
 * are refused when encoding. An empty batch is the leader's barrier (below) and changes
 * nothing. The image's `offset` advances once per applied record, as in the one-node
 * store; it is not the Raft index.
 *
 * Snapshots: the state machine's snapshot is {@linkcode MetadataImage.toSnapshot} of the
 * image after the last applied entry; the Raft driver takes one every `snapshotEvery`
 * applied entries and compacts its log. A restarted node loads its snapshot, then
 * replays the entries after it; a node too far behind gets the leader's snapshot.
 *
 * Non-obvious:
 * - A new leader may not yet have applied entries committed by earlier leaders, so
 *   before its first plan in a term it proposes an empty batch (the barrier) and waits
 *   for it to apply; then its image holds every committed record, and every later
 *   entry of the term is its own (serialised) proposal.
 * - Records are applied to the planning image before they are proposed: a plan whose
 *   records do not apply (a bug) rejects on the leader instead of stopping every node.
 * - `propose()` rejecting with `NotLeaderError{maybeCommitted: true}` means the outcome
 *   is unknown: the entry may still commit under the next leader. Callers must re-plan
 *   on the new controller against its image (plans should be idempotent, e.g. "create
 *   topic t unless it exists").
 * - Listeners run in the background in apply order, one at a time; they are not called
 *   for the replay that `start()` performs (they could not be registered yet), and a
 *   listener that throws is logged and skipped (the record is committed anyway).
 *   A listener must not await `propose()`: the proposal waits for the listeners.
 * - Proposals are serialised on the applied image, not on the listeners: the next plan
 *   runs as soon as the previous entry is applied here, while the listeners may still be
 *   working through it (`propose()` resolves later; `proposeApplied()` does not wait).
 */
import type { Logger } from "@logtape/logtape";
import {
  NotLeaderError,
  RaftClosedError,
  RaftDriver,
  type RaftStatus,
  type StateMachine,
} from "../raft/mod.ts";
import type { FileSystem } from "../runtime/fs.ts";
import type { NetAddr, Network } from "../runtime/net.ts";
import { sleep, systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { getLogger } from "../util/log.ts";
import type { Random } from "../util/random.ts";
import { MetadataImage } from "./metadata_image.ts";
import type { MetadataRecord } from "./records.ts";

/** Called after each committed change, in commit order; awaited before the next one. */
export type ImageListener = (prev: MetadataImage, next: MetadataImage) => Promise<void> | void;

/** Options of {@linkcode RaftMetadataStore.start}. */
export interface RaftMetadataStoreOptions {
  /** This node's id (≥ 1). */
  nodeId: number;
  /**
   * The Raft voters: node id → Raft address "host:port", this node included; the same
   * on every node. A map holding only this node is a one-node cluster (the embedded
   * default, DESIGN §1).
   */
  voters: ReadonlyMap<number, string>;
  /** Address the Raft listener binds. @default this node's address in `voters` */
  raftListenAddr?: string;
  /** The node's data directory; Raft files go under `DATA/raft/` (DESIGN §3). */
  dataDir: string;
  /** Milliseconds per Raft tick. @default 100 */
  tickMs?: number;
  /** Minimum election timeout in ticks. @default 10 */
  electionTicks?: number;
  /** Snapshot the image and compact the Raft log every this many entries. @default 10000 */
  snapshotEvery?: number;
  /** Source for election timeouts. @default Random.fromCrypto() */
  random?: Random;
  /** File system of the Raft files (an in-memory disk in simulations). @default denoFs */
  fs?: FileSystem;
  /** Network of the Raft transport (a simulated one in simulations). @default denoNet */
  net?: Network;
  /**
   * Timers for the Raft tick and backoff and the store's own waits (virtual time in
   * simulations). @default systemTimers
   */
  timers?: Timers;
  /**
   * The node's clock: only measures how long proposals take to commit (a metric); Raft
   * itself runs on ticks. @default systemClock
   */
  clock?: Clock;
  /** Logger for the store and its Raft driver. */
  logger?: Logger;
}

/** One image change waiting for the listeners. */
interface Notification {
  readonly prev: MetadataImage;
  readonly next: MetadataImage;
  /** Raft index of the applied entry; undefined for a snapshot restore. */
  readonly index: number | undefined;
}

interface ImageWaiter {
  readonly pred: (image: MetadataImage) => boolean;
  readonly resolve: (image: MetadataImage) => void;
  readonly reject: (err: Error) => void;
  timer: TimerHandle | undefined;
}

interface Waiter {
  /** Resolves once this value is reached. */
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

const ENTRY_VERSION = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
/** An empty batch: a new leader's first entry of its term (see the module doc). */
const BARRIER = encodeMetadataEntry([]);

/**
 * Metadata replicated by Raft. Start with {@linkcode RaftMetadataStore.start}; stop with
 * `close()`.
 *
 * @example
 * ```ts ignore
 * import { RaftMetadataStore } from "./raft_metadata_store.ts";
 * const store = await RaftMetadataStore.start({
 *   nodeId: 1,
 *   voters: new Map([[1, "127.0.0.1:9192"]]),
 *   dataDir: "./data/node-1",
 * });
 * store.onChange((prev, next) => console.log(prev.offset, "→", next.offset));
 * // On the controller (here: once the single voter has elected itself):
 * await store.propose(() => ({ records: [{ type: "Cluster", clusterId: "c1" }], result: 1 }));
 * await store.close();
 * ```
 */
export class RaftMetadataStore {
  readonly #log: Logger;
  readonly #timers: Timers;
  #driver!: RaftDriver;
  #image: MetadataImage = MetadataImage.EMPTY;
  /** Raft index of the last entry applied to `#image` (a restored snapshot leaves it). */
  #imageIndex = 0;
  #listeners: ImageListener[] = [];
  /** False during `start()`: the replay is not notified. */
  #started = false;
  #closed = false;
  #failure: Error | undefined;
  /** Tail of the serialised proposals. */
  #proposals: Promise<unknown> = Promise.resolve();
  /** The Raft term in which this node's barrier was applied (0: none). */
  #barrierTerm = 0;
  #notifications: Notification[] = [];
  #pump: Promise<void> | undefined;
  /** The last image (offset) and Raft index the listeners have seen. */
  #deliveredOffset = 0;
  #deliveredIndex = 0;
  #indexWaiters: Waiter[] = [];
  #imageWaiters = new Set<ImageWaiter>();
  /** The last image every listener has seen. */
  #deliveredImage: MetadataImage = MetadataImage.EMPTY;
  #offsetWaiters: Waiter[] = [];

  /** Told how long each committed proposal took from proposal to commit, in ms (metrics). */
  onCommitMs: ((ms: number) => void) | null = null;
  readonly #clock: Clock;

  private constructor(log: Logger, timers: Timers, clock: Clock) {
    this.#log = log;
    this.#timers = timers;
    this.#clock = clock;
  }

  /**
   * Recovers the Raft state under `options.dataDir` (snapshot, then log), starts the Raft
   * node, and resolves once every entry this node already knew to be committed has been
   * applied to {@linkcode RaftMetadataStore.image}. Does not wait for a leader.
   */
  static async start(options: RaftMetadataStoreOptions): Promise<RaftMetadataStore> {
    const log = (options.logger ?? getLogger(["tidelog", "metadata"])).with({
      nodeId: options.nodeId,
    });
    const timers = options.timers ?? systemTimers;
    const store = new RaftMetadataStore(log, timers, options.clock ?? systemClock);
    const stateMachine: StateMachine = {
      apply: (entry) => store.#apply(entry.index, entry.data),
      snapshot: () => store.#image.toSnapshot(),
      restore: (data) => store.#restore(data),
    };
    const driver = await RaftDriver.start({
      nodeId: options.nodeId,
      voters: options.voters,
      ...(options.raftListenAddr !== undefined ? { listenAddr: options.raftListenAddr } : {}),
      dataDir: options.dataDir,
      stateMachine,
      ...(options.tickMs !== undefined ? { tickMs: options.tickMs } : {}),
      ...(options.electionTicks !== undefined ? { electionTicks: options.electionTicks } : {}),
      ...(options.snapshotEvery !== undefined ? { snapshotEvery: options.snapshotEvery } : {}),
      ...(options.random !== undefined ? { random: options.random } : {}),
      ...(options.fs !== undefined ? { fs: options.fs } : {}),
      ...(options.net !== undefined ? { net: options.net } : {}),
      ...(options.timers !== undefined ? { timers: options.timers } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
    store.#driver = driver;
    // The recovered commit index: the driver's loop applies up to it without any peer.
    const recovered = driver.status().commit;
    while (driver.status().applied < recovered && driver.failure === undefined) {
      await sleep(timers, 1);
    }
    if (driver.failure !== undefined) {
      await driver.close();
      throw driver.failure;
    }
    store.#started = true;
    store.#deliveredOffset = store.#image.offset;
    store.#deliveredImage = store.#image;
    store.#deliveredIndex = driver.status().applied;
    log.info(
      "Metadata store started at offset {offset} ({topics} topics), Raft applied {applied}",
      {
        offset: store.#image.offset,
        topics: store.#image.topicsById.size,
        applied: store.#deliveredIndex,
      },
    );
    return store;
  }

  /** The latest image applied on this node (may be ahead of what listeners have seen). */
  get image(): MetadataImage {
    return this.#image;
  }

  /**
   * Registers a listener for image changes: called with (previous, new image) for every
   * applied entry that holds records and for every snapshot restored from the leader,
   * in apply order, one call at a time (each awaited). Not called for changes applied
   * before it was registered.
   */
  onChange(listener: ImageListener): void {
    this.#listeners.push(listener);
  }

  /**
   * On the controller (the Raft leader): once every earlier proposal of this node is
   * committed and applied here, runs `plan` against the latest image, proposes its
   * records as one Raft entry, and resolves with plan's result once the entry is
   * committed, applied here, and seen by the listeners. Records that do not apply to the
   * image reject (nothing is proposed), as does anything `plan` throws; no records:
   * resolves without proposing. Either way it settles only once the listeners have seen
   * the image the plan saw (so a caller told "already exists" finds it here).
   *
   * @throws {NotLeaderError} this node is not the controller (`leaderId`: the one it
   * knows of), or lost leadership with the entry in flight (`maybeCommitted: true`: the
   * outcome is unknown, the caller must re-check on the new controller)
   * @throws {ProposalDroppedError} the leader refused or lost the entry (not committed)
   * @throws {RaftClosedError} the store was closed or failed first
   */
  async propose<T>(
    plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T },
  ): Promise<T> {
    const seen = { index: 0 };
    let result: T;
    try {
      result = await this.#enqueue(plan, seen);
    } catch (err) {
      // A plan's refusal (e.g. TOPIC_ALREADY_EXISTS) is about the image it saw: the caller
      // may act on it at once, so this node's listeners must have seen that image too.
      await this.#waitForIndex(seen.index).catch(() => {});
      throw err;
    }
    await this.#waitForIndex(seen.index);
    return result;
  }

  /**
   * As {@linkcode RaftMetadataStore.propose} (same queue, same errors), but resolves once
   * the entry is committed and applied to {@linkcode RaftMetadataStore.image} here,
   * without waiting for the listeners: for the controller's own decisions (fencing,
   * preferred leaders), whose next plan needs only the applied image, and which must
   * not wait for this node's partitions to catch up on a slow disk.
   */
  proposeApplied<T>(
    plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T },
  ): Promise<T> {
    return this.#enqueue(plan, { index: 0 });
  }

  /**
   * The image a plan run now would start from, if this node is the controller and has
   * applied its barrier of the current term (so the image holds every record committed
   * before its term); else undefined. Proposals still in flight are not in it. For
   * answers that change nothing (heartbeats), given without queueing behind proposals.
   */
  controllerImage(): MetadataImage | undefined {
    const st = this.#driver.status();
    if (this.#closedError() !== undefined || st.role !== "leader") return undefined;
    return st.term === this.#barrierTerm ? this.#image : undefined;
  }

  /**
   * On the leader: asks Raft to hand leadership to voter `to` (it campaigns at once, once
   * its log is caught up); a no-op elsewhere. Used before a controlled shutdown, so the
   * cluster does not wait out an election timeout.
   */
  transferLeadership(to: number): void {
    this.#driver.transferLeadership(to);
  }

  /** Whether this node is the controller (the Raft leader) right now. */
  isController(): boolean {
    return this.#driver.status().role === "leader";
  }

  /** The controller (Raft leader) this node knows of, or null. */
  controllerId(): number | null {
    return this.#driver.status().leader ?? null;
  }

  /** The address the Raft listener is bound to (useful with port 0). */
  get raftAddr(): NetAddr {
    return this.#driver.addr;
  }

  /** This node's Raft state. */
  status(): RaftStatus {
    return this.#driver.status();
  }

  /**
   * The fatal error that stopped this node (an entry or snapshot that does not apply, or
   * a Raft storage failure), if any. Every later call rejects; the process should exit.
   */
  get failure(): Error | undefined {
    return this.#failure ?? this.#driver.failure;
  }

  /** The offset of the last image every listener has seen (Kafka's "current metadata offset"). */
  get deliveredOffset(): number {
    return this.#deliveredOffset;
  }

  /**
   * Resolves with the first image (the current one, or one seen by the listeners later)
   * for which `pred` holds; rejects with a TimeoutError after `timeoutMs`, or with
   * {@linkcode RaftClosedError} if the store closes first.
   */
  waitForImage(pred: (image: MetadataImage) => boolean, timeoutMs: number): Promise<MetadataImage> {
    if (pred(this.#deliveredImage)) return Promise.resolve(this.#deliveredImage);
    const refusal = this.#closedError();
    if (refusal !== undefined) return Promise.reject(refusal);
    const { promise, resolve, reject } = Promise.withResolvers<MetadataImage>();
    const waiter: ImageWaiter = { pred, resolve, reject, timer: undefined };
    waiter.timer = this.#timers.setTimeout(() => {
      this.#imageWaiters.delete(waiter);
      reject(
        new DOMException(
          `Metadata did not reach the expected state in ${timeoutMs} ms`,
          "TimeoutError",
        ),
      );
    }, timeoutMs);
    this.#imageWaiters.add(waiter);
    return promise;
  }

  /**
   * Resolves once the listeners have seen an image whose `offset` (records applied) is at
   * least `offset`; rejects with {@linkcode RaftClosedError} if the store closes or fails
   * first. Never times out by itself.
   */
  waitForApplied(offset: number): Promise<void> {
    if (this.#deliveredOffset >= offset) return Promise.resolve();
    const refusal = this.#closedError();
    if (refusal !== undefined) return Promise.reject(refusal);
    return new Promise((resolve, reject) => {
      this.#offsetWaiters.push({ target: offset, resolve, reject });
    });
  }

  /**
   * Stops the Raft node (unsettled proposals reject with {@linkcode RaftClosedError}, or
   * `NotLeaderError{maybeCommitted}`), waits for the listener call in progress, and
   * drops the notifications not yet delivered.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#driver.close();
    this.#rejectWaiters(new RaftClosedError("Metadata store is closed"));
    await this.#proposals;
    await this.#pump;
    this.#notifications = [];
  }

  // ---- proposals --------------------------------------------------------------------

  /**
   * Queues `plan` behind this node's earlier proposals; settles once its entry is
   * committed and applied here. The next plan waits only for that, never for the
   * listeners: plans read the applied image, and a slow listener (a node creating many
   * partitions on a slow disk) must not hold up the controller's decisions.
   * `seen.index` becomes the Raft index the caller's listeners must reach: the last entry
   * the plan's image holds, then the plan's own entry once applied.
   */
  #enqueue<T>(
    plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T },
    seen: { index: number },
  ): Promise<T> {
    const refusal = this.#refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const p = this.#proposals.then(() => this.#runProposal(plan, seen));
    this.#proposals = p.catch(() => {});
    return p;
  }

  async #runProposal<T>(
    plan: (image: MetadataImage) => { records: MetadataRecord[]; result: T },
    seen: { index: number },
  ): Promise<T> {
    const refusal = this.#refusal();
    if (refusal !== undefined) throw refusal;
    const driver = this.#driver;
    let st = driver.status();
    // Raft §8: a new leader knows which entries are committed only once an entry of its
    // own term commits; until then its image may miss records of earlier leaders. The
    // barrier makes planning see all of them.
    while (st.role === "leader" && st.term !== this.#barrierTerm) {
      try {
        const { term } = await driver.propose(BARRIER);
        this.#barrierTerm = term;
      } catch (err) {
        // The caller's records were never proposed: no maybeCommitted for them.
        if (err instanceof NotLeaderError) throw new NotLeaderError(err.leaderId);
        throw err;
      }
      st = driver.status();
    }
    if (st.role !== "leader") throw new NotLeaderError(st.leader);
    seen.index = this.#imageIndex;
    const { records, result } = plan(this.#image);
    if (records.length === 0) return result;
    // Images are immutable, so this only checks: records that do not apply (a bug in the
    // plan) must fail here, not stop every replica that applies the committed entry.
    this.#image.applyAll(records);
    // No await since the checks above: the entry is appended in this term, right after
    // entries this node proposed and already applied, so the plan's image is current.
    const proposed = this.#clock.nowMs();
    const { index } = await driver.propose(encodeMetadataEntry(records));
    this.onCommitMs?.(this.#clock.nowMs() - proposed);
    seen.index = index;
    return result;
  }

  #refusal(): Error | undefined {
    const closed = this.#closedError();
    if (closed !== undefined) return closed;
    const st = this.#driver.status();
    return st.role === "leader" ? undefined : new NotLeaderError(st.leader);
  }

  #closedError(): Error | undefined {
    const failure = this.failure;
    if (failure !== undefined) {
      return new RaftClosedError("Metadata store failed", { cause: failure });
    }
    return this.#closed ? new RaftClosedError("Metadata store is closed") : undefined;
  }

  #waitForIndex(index: number): Promise<void> {
    if (this.#deliveredIndex >= index) return Promise.resolve();
    const refusal = this.#closedError();
    if (refusal !== undefined) return Promise.reject(refusal);
    return new Promise((resolve, reject) => {
      this.#indexWaiters.push({ target: index, resolve, reject });
    });
  }

  // ---- state machine (called on the Raft loop; must not block it) -------------------

  #apply(index: number, data: Uint8Array): void {
    try {
      const records = decodeMetadataEntry(data);
      const prev = this.#image;
      this.#image = records.length === 0 ? prev : prev.applyAll(records);
      this.#imageIndex = index;
      this.#notify({ prev, next: this.#image, index });
    } catch (err) {
      this.#fail(err as Error, `apply the entry at Raft index ${index}`);
      throw err;
    }
  }

  #restore(data: Uint8Array): void {
    try {
      const prev = this.#image;
      this.#image = MetadataImage.fromSnapshot(data);
      this.#log.info("Restored metadata snapshot at offset {offset} ({topics} topics)", {
        offset: this.#image.offset,
        topics: this.#image.topicsById.size,
      });
      this.#notify({ prev, next: this.#image, index: undefined });
    } catch (err) {
      this.#fail(err as Error, "restore a metadata snapshot");
      throw err;
    }
  }

  #fail(err: Error, what: string): void {
    // Every replica applies the same entries: this is a bug or corrupt storage, and the
    // Raft driver stops on the rethrown error.
    this.#failure = err;
    this.#log.error("Cannot {what}: {error}", { what, error: String(err), stack: err.stack });
    this.#rejectWaiters(new RaftClosedError("Metadata store failed", { cause: err }));
  }

  // ---- listeners ----------------------------------------------------------------------

  #notify(n: Notification): void {
    if (!this.#started) return; // the replay in start(): nobody can listen yet
    this.#notifications.push(n);
    this.#pump ??= this.#deliver();
  }

  async #deliver(): Promise<void> {
    // Run outside the Raft loop's apply call.
    await Promise.resolve();
    try {
      while (!this.#closed) {
        const n = this.#notifications.shift();
        if (n === undefined) break;
        if (n.prev !== n.next) {
          for (const listener of this.#listeners) {
            try {
              await listener(n.prev, n.next);
            } catch (err) {
              this.#log.error("Metadata listener failed on offset {offset}: {error}", {
                offset: n.next.offset,
                error: String(err),
                stack: (err as Error).stack,
              });
            }
          }
        }
        this.#deliveredOffset = n.next.offset;
        this.#deliveredImage = n.next;
        if (n.index !== undefined) this.#deliveredIndex = n.index;
        this.#settleWaiters();
      }
    } finally {
      this.#pump = undefined;
    }
  }

  #settleWaiters(): void {
    const settle = (waiters: Waiter[], reached: number): Waiter[] => {
      const rest: Waiter[] = [];
      for (const w of waiters) {
        if (w.target <= reached) w.resolve();
        else rest.push(w);
      }
      return rest;
    };
    this.#indexWaiters = settle(this.#indexWaiters, this.#deliveredIndex);
    for (const w of this.#imageWaiters) {
      if (!w.pred(this.#deliveredImage)) continue;
      this.#timers.clearTimeout(w.timer);
      this.#imageWaiters.delete(w);
      w.resolve(this.#deliveredImage);
    }
    this.#offsetWaiters = settle(this.#offsetWaiters, this.#deliveredOffset);
  }

  #rejectWaiters(err: Error): void {
    for (const w of this.#imageWaiters) {
      this.#timers.clearTimeout(w.timer);
      w.reject(err);
    }
    this.#imageWaiters.clear();
    const waiters = [...this.#indexWaiters, ...this.#offsetWaiters];
    this.#indexWaiters = [];
    this.#offsetWaiters = [];
    for (const w of waiters) w.reject(err);
  }
}

// ---- entry encoding -------------------------------------------------------------------

/**
 * Encodes a batch of records as one Raft entry: `u8 version | UTF-8 JSON array`.
 * `Uint8Array` values become `{"$bytes": base64}`.
 *
 * @throws {TypeError} a value JSON cannot carry exactly (bigint, NaN/±Infinity, a plain
 * object with a `$bytes` key)
 */
export function encodeMetadataEntry(records: readonly MetadataRecord[]): Uint8Array {
  const json = JSON.stringify(records, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return { $bytes: toBase64(value) };
    if (typeof value === "bigint") {
      throw new TypeError(`Cannot encode metadata record: bigint value ${value}`);
    }
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new TypeError(`Cannot encode metadata record: non-finite number ${value}`);
    }
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "$bytes")) {
      throw new TypeError("Cannot encode metadata record: reserved key $bytes");
    }
    return value;
  });
  const body = encoder.encode(json);
  const out = new Uint8Array(1 + body.length);
  out[0] = ENTRY_VERSION;
  out.set(body, 1);
  return out;
}

/**
 * Decodes an entry from {@linkcode encodeMetadataEntry}.
 *
 * @throws {SyntaxError} the bytes are not an entry of a known version
 */
export function decodeMetadataEntry(data: Uint8Array): MetadataRecord[] {
  if (data.length < 1 || data[0] !== ENTRY_VERSION) {
    throw new SyntaxError(
      `Cannot decode metadata entry: unknown version ${data[0] ?? "(empty entry)"}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data.subarray(1)), (_key, value: unknown) => {
      if (typeof value === "object" && value !== null && Object.hasOwn(value, "$bytes")) {
        return fromBase64((value as { $bytes: unknown }).$bytes);
      }
      return value;
    });
  } catch (err) {
    throw new SyntaxError(`Cannot decode metadata entry: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) {
    throw new SyntaxError("Cannot decode metadata entry: not an array of records");
  }
  for (const r of parsed) {
    if (typeof r !== "object" || r === null || typeof (r as { type?: unknown }).type !== "string") {
      throw new SyntaxError("Cannot decode metadata entry: a record has no type");
    }
  }
  return parsed as MetadataRecord[];
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: unknown): Uint8Array {
  if (typeof text !== "string") throw new SyntaxError("$bytes is not a string");
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
