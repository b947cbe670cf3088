/**
 * The Raft driver: runs a {@linkcode RaftCore} with {@linkcode DiskStorage} and
 * {@linkcode TcpTransport}, a tick timer, and the application's state machine. All core
 * calls happen on one async loop, in the order DESIGN §6 gives for each Ready.
 */
import type { Logger } from "@logtape/logtape";
import type { FileSystem } from "../runtime/fs.ts";
import type { NetAddr, Network } from "../runtime/net.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import { getLogger } from "../util/log.ts";
import { Random } from "../util/random.ts";
import { type CoreStatus, RaftCore, type Ready } from "./core.ts";
import { DiskStorage } from "./disk_storage.ts";
import { NotLeaderError, ProposalDroppedError, RaftClosedError } from "./errors.ts";
import {
  type ConfChange,
  type ConfState,
  decodeConfState,
  type Entry,
  EntryType,
  type Message,
  NONE,
} from "./messages.ts";
import { TcpTransport } from "./transport.ts";

/** The application's replicated state machine. */
export interface StateMachine {
  /** Applies one committed entry (deterministically; called in log order, once each). */
  apply(entry: AppliedEntry): void;
  /** Serialises the state after the last applied entry. */
  snapshot(): Uint8Array;
  /** Replaces the state by a snapshot's data (from `snapshot()` on some node). */
  restore(data: Uint8Array): void;
}

/** A committed application entry as handed to {@linkcode StateMachine.apply}. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
}

/** Configuration of a {@linkcode RaftDriver}. */
export interface RaftDriverConfig {
  /** This node's id (≥ 1). */
  nodeId: number;
  /**
   * The initial voters: node id → Raft address "host:port" (this node included). The
   * same on every node, including nodes added later by a membership change.
   */
  voters: ReadonlyMap<number, string>;
  /** Address to listen on. @default the address of `nodeId` in `voters` */
  listenAddr?: string;
  /** Data directory; Raft files go to `DATA/raft/` (DESIGN §3). */
  dataDir: string;
  stateMachine: StateMachine;
  /** Milliseconds per tick. @default 100 */
  tickMs?: number;
  /** Minimum election timeout in ticks (randomised in [n, 2n)). @default 10 */
  electionTicks?: number;
  /** Heartbeat interval in ticks. @default 1 */
  heartbeatTicks?: number;
  /** Take a snapshot and compact the log every this many applied entries. @default 10000 */
  snapshotEvery?: number;
  /** Raft log segment size. @default 64 MiB */
  segmentBytes?: number;
  /** Source for election timeouts. @default Random.fromCrypto() */
  random?: Random;
  /** File system of the Raft files (an in-memory disk in simulations). @default denoFs */
  fs?: FileSystem;
  /** Network of the Raft transport (a simulated one in simulations). @default denoNet */
  net?: Network;
  /**
   * Timers for the tick and the transport's reconnection backoff (virtual time in
   * simulations). @default systemTimers
   */
  timers?: Timers;
  logger?: Logger;
  /** Called whenever the configuration in force changes (when appended). */
  onConfChange?: (conf: ConfState) => void;
}

/** What {@linkcode RaftDriver.status} reports. */
export interface RaftStatus {
  readonly id: number;
  readonly role: CoreStatus["role"];
  readonly term: number;
  /** Known leader id, undefined if none. */
  readonly leader: number | undefined;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Leader only: per-peer match index. */
  readonly match: Readonly<Record<number, number>>;
}

/** Where a committed proposal landed. */
export interface ProposalResult {
  readonly index: number;
  readonly term: number;
}

interface Pending {
  term: number;
  resolve: (r: ProposalResult) => void;
  reject: (err: Error) => void;
}

type Input =
  | { kind: "propose"; data: Uint8Array; settle: Pending }
  | { kind: "conf"; change: ConfChange; settle: Pending };

/** A running Raft node. Create with {@linkcode RaftDriver.start}; stop with `close()`. */
export class RaftDriver {
  readonly #core: RaftCore;
  readonly #storage: DiskStorage;
  readonly #transport: TcpTransport;
  readonly #sm: StateMachine;
  readonly #log: Logger;
  readonly #snapshotEvery: number;
  readonly #onConfChange: ((conf: ConfState) => void) | undefined;
  #inbox: Message[] = [];
  /** Peers whose inbound connection dropped since the last loop turn. */
  #lostPeers: number[] = [];
  #inputs: Input[] = [];
  #ticks = 0;
  #pending = new Map<number, Pending>();
  #wake: (() => void) | undefined;
  readonly #timers: Timers;
  #timer: TimerHandle | undefined;
  #loop: Promise<void> | undefined;
  #closed = false;
  #failure: Error | undefined;
  #conf: ConfState;
  #wasLeader = false;

  private constructor(
    config: RaftDriverConfig,
    core: RaftCore,
    storage: DiskStorage,
    transport: TcpTransport,
    log: Logger,
  ) {
    this.#core = core;
    this.#storage = storage;
    this.#transport = transport;
    this.#sm = config.stateMachine;
    this.#log = log;
    this.#snapshotEvery = config.snapshotEvery ?? 10_000;
    this.#onConfChange = config.onConfChange;
    this.#timers = config.timers ?? systemTimers;
    this.#conf = core.conf;
  }

  /** Recovers state from `config.dataDir`, starts listening and ticking. */
  static async start(config: RaftDriverConfig): Promise<RaftDriver> {
    const log = (config.logger ?? getLogger(["tidelog", "raft"])).with({ nodeId: config.nodeId });
    const listenAddr = config.listenAddr ?? config.voters.get(config.nodeId);
    if (listenAddr === undefined) {
      throw new TypeError(`Cannot start Raft node ${config.nodeId}: no listen address`);
    }
    const storage = await DiskStorage.open(`${config.dataDir}/raft`, {
      ...(config.segmentBytes !== undefined ? { segmentBytes: config.segmentBytes } : {}),
      ...(config.fs !== undefined ? { fs: config.fs } : {}),
      logger: log,
    });
    const rec = storage.recovered;
    const addrs: Record<number, string> = {};
    for (const [id, addr] of config.voters) addrs[id] = addr;
    const core = new RaftCore({
      id: config.nodeId,
      initialConf: { voters: [...config.voters.keys()].sort((a, b) => a - b), learners: [], addrs },
      electionTicks: config.electionTicks ?? 10,
      heartbeatTicks: config.heartbeatTicks ?? 1,
      random: config.random ?? Random.fromCrypto(),
      ...(rec.hardState !== undefined ? { hardState: rec.hardState } : {}),
      ...(rec.snapshot !== undefined ? { snapshot: rec.snapshot } : {}),
      entries: rec.entries,
      logger: log,
    });
    if (rec.snapshot !== undefined) config.stateMachine.restore(rec.snapshot.data);
    // A sole voter cannot be outvoted: it elects itself now rather than after an election
    // timeout (etcd's single-node bootstrap does the same). This is the one-node default.
    if (core.conf.voters.length === 1 && core.conf.voters[0] === config.nodeId) core.campaign();
    log.info(
      "Raft node {nodeId} recovered term {term}, commit {commit}, log {first}..{last}",
      {
        nodeId: config.nodeId,
        term: core.term,
        commit: core.commit,
        first: core.firstIndex,
        last: core.lastIndex,
      },
    );
    const box: { driver?: RaftDriver } = {};
    const early: Message[] = [];
    const peers = new Map<number, string>(config.voters);
    for (const [id, addr] of Object.entries(core.conf.addrs ?? {})) peers.set(Number(id), addr);
    let transport: TcpTransport;
    try {
      transport = TcpTransport.listen({
        id: config.nodeId,
        listenAddr,
        peers,
        onMessage: (m) => {
          if (box.driver !== undefined) box.driver.#onMessage(m);
          else early.push(m);
        },
        onPeerLost: (id) => {
          if (box.driver !== undefined) box.driver.#onPeerLost(id);
        },
        ...(config.net !== undefined ? { net: config.net } : {}),
        ...(config.timers !== undefined ? { timers: config.timers } : {}),
        logger: log,
      });
    } catch (err) {
      storage.close();
      throw err;
    }
    const driver = new RaftDriver(config, core, storage, transport, log);
    box.driver = driver;
    driver.#inbox.push(...early);
    const tickMs = config.tickMs ?? 100;
    driver.#timer = driver.#timers.setInterval(() => {
      driver.#ticks++;
      driver.#kick();
    }, tickMs);
    driver.#loop = driver.#run();
    return driver;
  }

  /** The address the Raft listener is bound to. */
  get addr(): NetAddr {
    return this.#transport.addr;
  }

  /**
   * Proposes `data`. Resolves once the entry is committed and applied here; rejects with
   * {@linkcode NotLeaderError} (carrying the known leader) if this node is not the
   * leader or loses leadership first, {@linkcode ProposalDroppedError} if refused or
   * overwritten, {@linkcode RaftClosedError} on close.
   */
  propose(data: Uint8Array): Promise<ProposalResult> {
    return this.#enqueue((settle) => ({ kind: "propose", data, settle }));
  }

  /** Proposes a single-server membership change; settles like `propose()`. */
  proposeConfChange(change: ConfChange): Promise<ProposalResult> {
    return this.#enqueue((settle) => ({ kind: "conf", change, settle }));
  }

  /** Asks the leader to hand leadership to `to` (thesis §3.10). */
  transferLeadership(to: number): void {
    if (this.#core.role !== "leader") throw new NotLeaderError(this.#leaderOrUndefined());
    this.#transferTo = to;
    this.#kick();
  }
  #transferTo = NONE;

  /**
   * The fatal error that stopped this node (a storage or state-machine failure), if
   * any. A failed driver rejects every proposal; the process should exit.
   */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** The node's current Raft state. */
  status(): RaftStatus {
    const s = this.#core.status();
    const match: Record<number, number> = {};
    for (const [id, p] of s.progress) match[id] = p.match;
    return {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader === NONE ? undefined : s.leader,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      snapshotIndex: this.#core.snapshot.index,
      voters: s.conf.voters,
      learners: s.conf.learners,
      match,
    };
  }

  /** Stops ticking, closes sockets and files, and rejects unsettled proposals. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearInterval(this.#timer);
    this.#timer = undefined;
    this.#kick();
    await this.#loop;
    await this.#transport.close();
    this.#storage.close();
    this.#rejectAll(() => new RaftClosedError());
    for (const i of this.#inputs.splice(0)) i.settle.reject(new RaftClosedError());
  }

  // ---- internals --------------------------------------------------------------------

  #leaderOrUndefined(): number | undefined {
    const l = this.#core.leader;
    return l === NONE ? undefined : l;
  }

  #enqueue(make: (settle: Pending) => Input): Promise<ProposalResult> {
    if (this.#closed || this.#failure !== undefined) {
      return Promise.reject(new RaftClosedError("Raft driver is closed", { cause: this.#failure }));
    }
    if (this.#core.role !== "leader") {
      return Promise.reject(new NotLeaderError(this.#leaderOrUndefined()));
    }
    return new Promise<ProposalResult>((resolve, reject) => {
      this.#inputs.push(make({ term: 0, resolve, reject }));
      this.#kick();
    });
  }

  #onPeerLost(id: number): void {
    if (this.#closed) return;
    this.#lostPeers.push(id);
    this.#kick();
  }

  #onMessage(m: Message): void {
    if (this.#closed) return;
    this.#inbox.push(m);
    this.#kick();
  }

  #kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async #run(): Promise<void> {
    try {
      while (!this.#closed) {
        if (
          this.#ticks === 0 && this.#inbox.length === 0 && this.#inputs.length === 0 &&
          this.#lostPeers.length === 0 &&
          this.#transferTo === NONE && !this.#core.hasReady()
        ) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          continue;
        }
        this.#processInputs();
        while (this.#core.hasReady() && !this.#closed) {
          const rd = this.#core.ready();
          await this.#handleReady(rd);
          this.#core.advance(rd);
          this.#afterAdvance();
        }
        if (!this.#closed) await this.#maybeSnapshot();
      }
    } catch (err) {
      this.#failure = err as Error;
      this.#log.error("Raft driver stopped on a fatal error: {error}", {
        error: String(err),
        stack: (err as Error).stack,
      });
      this.#rejectAll(() => new RaftClosedError("Raft driver failed", { cause: err }));
      for (const i of this.#inputs.splice(0)) {
        i.settle.reject(new RaftClosedError("Raft driver failed", { cause: err }));
      }
      // Stop taking part: peers must not count on a node whose storage failed.
      if (this.#timer !== undefined) this.#timers.clearInterval(this.#timer);
      this.#timer = undefined;
      await this.#transport.close();
    }
  }

  #processInputs(): void {
    const core = this.#core;
    for (; this.#ticks > 0; this.#ticks--) core.tick();
    for (const m of this.#inbox.splice(0)) core.step(m);
    for (const id of this.#lostPeers.splice(0)) {
      // The leader's connection dropped (a crash closes it at once): elect a new one
      // without waiting for the election timeout.
      if (core.role === "follower" && core.leader === id) core.forgetLeader();
    }
    if (this.#transferTo !== NONE) {
      core.transferLeadership(this.#transferTo);
      this.#transferTo = NONE;
    }
    for (const input of this.#inputs.splice(0)) {
      const res = input.kind === "propose"
        ? core.propose(input.data)
        : core.proposeConfChange(input.change);
      if (res.ok) {
        input.settle.term = res.term;
        this.#pending.set(res.index, input.settle);
      } else if (res.reason === "notLeader") {
        input.settle.reject(new NotLeaderError(res.leader === NONE ? undefined : res.leader));
      } else {
        input.settle.reject(new ProposalDroppedError(`Proposal refused: ${res.reason}`));
      }
    }
    this.#checkLeadership();
  }

  async #handleReady(rd: Ready): Promise<void> {
    // A configuration appended in this batch may name a new peer: learn its address first.
    this.#syncConf();
    // 1. Messages that need no persistence.
    this.#transport.send(rd.messages);
    // 2. Persist snapshot, entries and hard state; fsync when the core needs it.
    if (rd.snapshot !== undefined) await this.#storage.saveSnapshot(rd.snapshot, false);
    this.#storage.append(rd.entries);
    if (rd.hardState !== undefined) this.#storage.setHardState(rd.hardState);
    if (rd.mustSync) await this.#storage.sync();
    // 3. Messages that promise durable state.
    this.#transport.send(rd.messagesAfterPersist);
    // 4. Apply.
    if (rd.snapshot !== undefined) {
      this.#sm.restore(rd.snapshot.data);
      for (const [index, p] of this.#pending) {
        if (index <= rd.snapshot.index) {
          this.#pending.delete(index);
          p.reject(new NotLeaderError(this.#leaderOrUndefined(), { maybeCommitted: true }));
        }
      }
    }
    for (const e of rd.committedEntries) this.#apply(e);
  }

  #apply(e: Entry): void {
    if (e.type === EntryType.Normal && e.data.length > 0) {
      this.#sm.apply({ index: e.index, term: e.term, data: e.data });
    } else if (e.type === EntryType.ConfChange) {
      this.#log.info("Applied configuration change at {index}: {conf}", {
        index: e.index,
        conf: JSON.stringify(decodeConfState(e.data)),
      });
    }
    const p = this.#pending.get(e.index);
    if (p === undefined) return;
    this.#pending.delete(e.index);
    if (p.term === e.term) p.resolve({ index: e.index, term: e.term });
    else p.reject(new ProposalDroppedError(`Proposal at ${e.index} was overwritten`));
  }

  #afterAdvance(): void {
    this.#syncConf();
    this.#checkLeadership();
  }

  #syncConf(): void {
    const conf = this.#core.conf;
    if (conf !== this.#conf) {
      this.#conf = conf;
      for (const [id, addr] of Object.entries(conf.addrs ?? {})) {
        this.#transport.setPeer(Number(id), addr);
      }
      this.#onConfChange?.(conf);
    }
  }

  #checkLeadership(): void {
    const isLeader = this.#core.role === "leader";
    if (this.#wasLeader && !isLeader) {
      // The entries may still commit under the next leader: callers must treat the
      // outcome as unknown (maybeCommitted).
      this.#rejectAll(() =>
        new NotLeaderError(this.#leaderOrUndefined(), { maybeCommitted: true })
      );
    }
    this.#wasLeader = isLeader;
  }

  async #maybeSnapshot(): Promise<void> {
    const core = this.#core;
    if (core.applied - core.snapshot.index < this.#snapshotEvery) return;
    const snap = core.compact(core.applied, this.#sm.snapshot());
    await this.#storage.saveSnapshot(snap, true);
    this.#log.info("Snapshot at {index} (term {term}), log compacted", {
      index: snap.index,
      term: snap.term,
    });
  }

  #rejectAll(make: () => Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(make());
  }
}
