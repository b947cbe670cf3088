/**
 * Deterministic Raft simulation (VOPR-style): N cores, a simulated network that drops,
 * delays, duplicates, reorders and partitions (also one way), crashes that lose all
 * unpersisted state (even in the middle of handling a Ready), random proposals,
 * membership changes, leadership transfers and snapshots. Every random choice comes from
 * one seeded {@linkcode Random}, so a seed replays a run exactly.
 */
import { crc32c } from "../../../lib/util/crc32c.ts";
import { Random } from "../../../lib/util/random.ts";
import { RaftCore, type RaftLogger, type Ready } from "../../../lib/raft/core.ts";
import { decodeMessage, encodeMessage } from "../../../lib/raft/codec.ts";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  messageTypeName,
  type Snapshot,
} from "../../../lib/raft/messages.ts";

/** Fault rates and sizes for one run, drawn from the seed ("swarm" testing). */
export interface SimConfig {
  nodeCount: number;
  initialVoters: number;
  rounds: number;
  dropRate: number;
  dupRate: number;
  maxDelayTicks: number;
  partitionRate: number;
  crashRate: number;
  midReadyCrashRate: number;
  restartRate: number;
  proposeRate: number;
  confChangeRate: number;
  transferRate: number;
  snapshotEvery: number;
  preVote: boolean;
  checkQuorum: boolean;
  electionTicks: number;
  livenessTicks: number;
}

/** Derives a swarm configuration from a seed. */
export function swarmConfig(seed: number): SimConfig {
  const r = new Random(seed ^ 0x5eed);
  const nodeCount = r.chance(0.5) ? 3 : 5;
  return {
    nodeCount,
    initialVoters: nodeCount === 5 && r.chance(0.3) ? 3 : nodeCount,
    rounds: 600 + r.int(0, 600),
    dropRate: r.pick([0, 0.01, 0.05, 0.1, 0.3]),
    dupRate: r.pick([0, 0.01, 0.05]),
    maxDelayTicks: r.pick([0, 1, 2, 5]),
    partitionRate: r.pick([0, 0.005, 0.02]),
    crashRate: r.pick([0, 0.002, 0.01]),
    midReadyCrashRate: r.pick([0, 0.002, 0.01, 0.05]),
    restartRate: r.pick([0.02, 0.1, 0.5]),
    proposeRate: r.pick([0.1, 0.5, 1]),
    confChangeRate: r.pick([0, 0, 0.005, 0.02]),
    transferRate: r.pick([0, 0.002, 0.01]),
    snapshotEvery: r.pick([5, 20, 100]),
    preVote: r.chance(0.85),
    checkQuorum: r.chance(0.85),
    electionTicks: 10,
    livenessTicks: 400,
  };
}

/** Thrown when an invariant breaks; the runner prints seed and trace. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new InvariantError(message);
}

/** What a simulated disk holds: exactly what the node persisted. */
class SimStorage {
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  appendEntries(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0]!.index;
    const base = this.snapshot?.index ?? 0;
    this.entries.length = Math.max(0, Math.min(this.entries.length, first - base - 1));
    check(
      first === base + this.entries.length + 1,
      `storage append at ${first} leaves a gap (base ${base}, len ${this.entries.length})`,
    );
    for (const e of ents) this.entries.push(e);
  }

  saveSnapshot(s: Snapshot): void {
    const base = this.snapshot?.index ?? 0;
    if (s.index <= base) return;
    const keep = this.entries.filter((e) => e.index > s.index);
    // Entries after the snapshot stay only if the log still continues from it.
    const at = this.entries.find((e) => e.index === s.index);
    this.entries = at !== undefined && at.term === s.term ? keep : [];
    this.snapshot = s;
  }
}

/** One simulated node: a core (absent while crashed), its disk and its state machine. */
class SimNode {
  core: RaftCore | undefined;
  readonly storage = new SimStorage();
  /** State machine: index applied and hash chain over the applied entries. */
  smIndex = 0;
  smHash = 0;
  /** Proposals this node made as leader: index → { term, id }. */
  pending = new Map<number, { term: number; id: string }>();
  lastCommitSeen = 0;
  constructor(readonly id: number) {}
}

interface InFlight {
  deliverAt: number;
  seq: number;
  from: number;
  to: number;
  bytes: Uint8Array;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function encodeSm(index: number, hash: number): Uint8Array {
  return encoder.encode(`${index}:${hash}`);
}

function decodeSm(data: Uint8Array): [number, number] {
  const [a, b] = decoder.decode(data).split(":");
  return [Number(a), Number(b)];
}

/** A simulated cluster plus its invariant checkers. */
export class SimCluster {
  readonly cfg: SimConfig;
  readonly rng: Random;
  readonly nodes = new Map<number, SimNode>();
  now = 0;
  /** Messages delivered so far (the "step" a failure is reported at). */
  steps = 0;
  readonly trace: string[] = [];
  #seq = 0;
  #net: InFlight[] = [];
  /** Directed links that are cut: "from>to". */
  #cut = new Set<string>();
  #initialConf: ConfState;
  /** Run every checker after each delivered message too, not only after each round. */
  checkEveryStep = Deno.env.get("RAFT_CHECK_EVERY_STEP") !== "0";
  /** Fault injection on (off in liveness mode and in scripted scenarios). */
  faults = true;
  // ---- checker state ----
  #leaders = new Map<number, number>(); // term → leader id
  #committed = new Map<number, { term: number; data: Uint8Array; seenAtTerm: number }>();
  #maxCommitted = 0;
  #appliedHash = new Map<number, { term: number; hash: number }>();
  /** Proposals acknowledged to a client: applied on the leader that proposed them. */
  readonly acked = new Map<number, string>();
  #proposalSeq = 0;
  readonly #logger: RaftLogger;

  constructor(seed: number, cfg: SimConfig = swarmConfig(seed)) {
    this.cfg = cfg;
    this.rng = new Random(seed);
    const voters = Array.from({ length: cfg.initialVoters }, (_, i) => i + 1);
    this.#initialConf = { voters, learners: [] };
    const fmt = (msg: string, props?: Record<string, unknown>) =>
      msg.replace(/\{(\w+)\}/g, (_, k: string) => String(props?.[k]));
    this.#logger = {
      debug: () => {},
      info: (msg, props) => this.#log(fmt(msg, props)),
      warn: (msg, props) => this.#log(`WARN ${fmt(msg, props)}`),
    };
    for (let id = 1; id <= cfg.nodeCount; id++) {
      const node = new SimNode(id);
      this.nodes.set(id, node);
      this.#start(node);
    }
  }

  #log(line: string): void {
    this.trace.push(`[t=${this.now}] ${line}`);
    if (this.trace.length > 2000) this.trace.splice(0, 1000);
  }

  #start(node: SimNode): void {
    const s = node.storage;
    node.core = new RaftCore({
      id: node.id,
      initialConf: this.#initialConf,
      electionTicks: this.cfg.electionTicks,
      random: new Random(this.rng.nextU32()),
      preVote: this.cfg.preVote,
      checkQuorum: this.cfg.checkQuorum,
      maxSizePerMsg: 256,
      maxInflight: 8,
      ...(s.hardState !== undefined ? { hardState: s.hardState } : {}),
      ...(s.snapshot !== undefined ? { snapshot: s.snapshot } : {}),
      entries: [...s.entries],
      logger: this.#logger,
    });
    if (s.snapshot !== undefined) this.#restoreSm(node, s.snapshot);
    else {
      node.smIndex = 0;
      node.smHash = 0;
    }
    node.pending.clear();
    node.lastCommitSeen = node.core.commit;
  }

  // ---- scripted control -------------------------------------------------------------

  crash(id: number): void {
    const node = this.nodes.get(id)!;
    if (node.core === undefined) return;
    node.core = undefined;
    this.#log(`crash ${id}`);
    // The driver tells followers when the leader's connection drops; model that hint
    // arriving at some of them (it may never arrive, or arrive late: only liveness).
    for (const other of this.nodes.values()) {
      const c = other.core;
      if (c !== undefined && c.leader === id && this.rng.chance(0.5)) {
        c.forgetLeader();
        this.#drain(other);
      }
    }
  }

  restart(id: number): void {
    const node = this.nodes.get(id)!;
    if (node.core !== undefined) return;
    this.#start(node);
    this.#log(`restart ${id} term=${node.core!.term} last=${node.core!.lastIndex}`);
  }

  /** Cuts both directions between `id` and everyone else. */
  isolate(id: number): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.#cut.add(`${id}>${other}`);
      this.#cut.add(`${other}>${id}`);
    }
    this.#log(`isolate ${id}`);
  }

  cutOneWay(from: number, to: number): void {
    this.#cut.add(`${from}>${to}`);
    this.#log(`cut ${from}>${to}`);
  }

  heal(): void {
    this.#cut.clear();
    this.#log("heal");
  }

  /** The live leader with the highest term, if any. */
  leader(): number | undefined {
    let best: RaftCore | undefined;
    for (const n of this.nodes.values()) {
      if (n.core?.role === "leader" && (best === undefined || n.core.term > best.term)) {
        best = n.core;
      }
    }
    return best?.id;
  }

  core(id: number): RaftCore | undefined {
    return this.nodes.get(id)?.core;
  }

  /** Proposes a uniquely named entry at `id`; returns its index if accepted. */
  propose(id: number): number | undefined {
    const node = this.nodes.get(id)!;
    const core = node.core;
    if (core === undefined) return undefined;
    const name = `p${++this.#proposalSeq}`;
    const res = core.propose(encoder.encode(name));
    if (!res.ok) return undefined;
    node.pending.set(res.index, { term: res.term, id: name });
    this.#log(`propose ${name} at ${id} index=${res.index} term=${res.term}`);
    this.#drain(node);
    return res.index;
  }

  confChange(id: number, change: ConfChange): boolean {
    const node = this.nodes.get(id)!;
    if (node.core === undefined) return false;
    const res = node.core.proposeConfChange(change);
    this.#log(`confChange ${change.type} ${change.nodeId} at ${id}: ${res.ok ? "ok" : res.reason}`);
    if (res.ok) this.#drain(node);
    return res.ok;
  }

  transfer(from: number, to: number): boolean {
    const node = this.nodes.get(from)!;
    if (node.core === undefined) return false;
    const ok = node.core.transferLeadership(to);
    this.#log(`transfer ${from}->${to}: ${ok}`);
    this.#drain(node);
    return ok;
  }

  /** Runs rounds until `pred` holds; returns the rounds used, or undefined at `max`. */
  runUntil(pred: () => boolean, max: number): number | undefined {
    for (let i = 0; i < max; i++) {
      if (pred()) return i;
      this.round();
    }
    return pred() ? max : undefined;
  }

  // ---- the simulation loop ----------------------------------------------------------

  /** One tick of simulated time: ticks, deliveries, random faults/inputs, then checks. */
  round(): void {
    this.now++;
    for (const node of this.nodes.values()) {
      if (node.core === undefined) continue;
      node.core.tick();
      this.#drain(node);
    }
    for (let pass = 0; pass < 100; pass++) {
      const due = this.#net.filter((m) => m.deliverAt <= this.now);
      if (due.length === 0) break;
      this.#net = this.#net.filter((m) => m.deliverAt > this.now);
      // Reorder: deliver due messages in a random order.
      for (let i = due.length - 1; i > 0; i--) {
        const j = this.rng.int(0, i);
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
      for (const m of due) this.#deliver(m);
    }
    if (this.faults) this.#randomEvents();
    this.checkAll();
  }

  #deliver(f: InFlight): void {
    const node = this.nodes.get(f.to);
    if (node?.core === undefined) return;
    const m = decodeMessage(f.bytes);
    this.steps++;
    this.#log(
      `deliver ${messageTypeName(m.type)} ${m.from}->${m.to} term=${m.term} idx=${m.index} ` +
        `logTerm=${m.logTerm} n=${m.entries.length} commit=${m.commit}` +
        (m.reject ? ` reject hint=${m.rejectHint}` : "") +
        (m.snapshot ? ` snap=${m.snapshot.index}` : ""),
    );
    node.core.step(m);
    this.#drain(node);
    if (this.checkEveryStep) this.checkAll(false);
  }

  #send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.#cut.has(`${m.from}>${m.to}`)) continue;
      if (this.faults && this.rng.chance(this.cfg.dropRate)) continue;
      const copies = this.faults && this.rng.chance(this.cfg.dupRate) ? 2 : 1;
      const bytes = encodeMessage(m);
      for (let c = 0; c < copies; c++) {
        const delay = this.faults && this.cfg.maxDelayTicks > 0
          ? this.rng.int(0, this.cfg.maxDelayTicks)
          : 0;
        this.#net.push({
          deliverAt: this.now + delay,
          seq: this.#seq++,
          from: m.from,
          to: m.to,
          bytes,
        });
      }
    }
  }

  /** Handles every Ready of `node` in the driver's order (DESIGN §6). */
  #drain(node: SimNode): void {
    while (node.core !== undefined && node.core.hasReady()) {
      const core = node.core;
      const rd = core.ready();
      this.#send(rd.messages);
      if (this.faults && this.rng.chance(this.cfg.midReadyCrashRate)) {
        this.#partialPersist(node, rd);
        node.core = undefined;
        this.#log(`crash ${node.id} mid-ready`);
        return;
      }
      this.#persist(node, rd);
      this.#send(rd.messagesAfterPersist);
      if (rd.snapshot !== undefined) this.#restoreSm(node, rd.snapshot);
      for (const e of rd.committedEntries) this.#apply(node, e);
      core.advance(rd);
      this.#maybeCompact(node);
    }
    this.checkElectionSafety();
  }

  #persist(node: SimNode, rd: Ready): void {
    const s = node.storage;
    if (rd.snapshot !== undefined) s.saveSnapshot(rd.snapshot);
    s.appendEntries(rd.entries);
    if (rd.hardState !== undefined) s.hardState = rd.hardState;
  }

  /**
   * A crash during persistence. The snapshot is made durable before anything else; the
   * entries and the hard state are fsynced in parallel, so any prefix of the entries and
   * either hard state (old or new) may survive.
   */
  #partialPersist(node: SimNode, rd: Ready): void {
    const s = node.storage;
    if (rd.snapshot !== undefined) {
      if (this.rng.chance(0.5)) return;
      s.saveSnapshot(rd.snapshot);
    }
    s.appendEntries(rd.entries.slice(0, this.rng.int(0, rd.entries.length)));
    if (rd.hardState !== undefined && this.rng.chance(0.5)) s.hardState = rd.hardState;
  }

  #maybeCompact(node: SimNode): void {
    const core = node.core!;
    if (core.applied - core.snapshot.index < this.cfg.snapshotEvery) return;
    check(node.smIndex === core.applied, `node ${node.id} sm index ${node.smIndex} != applied`);
    const snap = core.compact(core.applied, encodeSm(node.smIndex, node.smHash));
    node.storage.saveSnapshot(snap);
  }

  #restoreSm(node: SimNode, s: Snapshot): void {
    const [index, hash] = decodeSm(s.data);
    check(index === s.index, `snapshot ${s.index} holds state of ${index}`);
    if (index > 0) {
      const rec = this.#appliedHash.get(index);
      check(rec !== undefined, `snapshot at ${index} restores state nobody applied`);
      check(
        rec.hash === hash,
        `state machine safety: node ${node.id} restored a different state at ${index}`,
      );
    }
    node.smIndex = index;
    node.smHash = hash;
  }

  #apply(node: SimNode, e: Entry): void {
    check(
      e.index === node.smIndex + 1,
      `node ${node.id} applies ${e.index} after ${node.smIndex} (gap or repeat)`,
    );
    const hash = crc32c(e.data, (node.smHash + e.term * 31 + e.type) >>> 0);
    const rec = this.#appliedHash.get(e.index);
    if (rec === undefined) this.#appliedHash.set(e.index, { term: e.term, hash });
    else {
      check(
        rec.term === e.term && rec.hash === hash,
        `state machine safety: node ${node.id} applied a different entry at ${e.index} (term ${e.term} vs ${rec.term})`,
      );
    }
    node.smIndex = e.index;
    node.smHash = hash;
    const p = node.pending.get(e.index);
    if (p !== undefined) {
      node.pending.delete(e.index);
      if (p.term === e.term && e.type === EntryType.Normal) {
        check(decoder.decode(e.data) === p.id, `entry ${e.index} is not proposal ${p.id}`);
        this.acked.set(e.index, p.id);
      }
    }
  }

  #randomEvents(): void {
    const r = this.rng;
    const cfg = this.cfg;
    const ids = [...this.nodes.keys()];
    if (r.chance(cfg.partitionRate)) {
      const mode = r.int(0, 3);
      if (mode === 0) this.heal();
      else if (mode === 1) this.isolate(r.pick(ids));
      else if (mode === 2) this.cutOneWay(r.pick(ids), r.pick(ids));
      else {
        this.heal();
        const side = ids.filter(() => r.chance(0.5));
        for (const a of side) {
          for (const b of ids) {
            if (!side.includes(b)) {
              this.#cut.add(`${a}>${b}`);
              this.#cut.add(`${b}>${a}`);
            }
          }
        }
        this.#log(`partition {${side.join(",")}} | rest`);
      }
    }
    if (r.chance(cfg.crashRate)) this.crash(r.pick(ids));
    for (const n of this.nodes.values()) {
      if (n.core === undefined && r.chance(cfg.restartRate)) this.restart(n.id);
    }
    let lead = this.leader();
    if (lead !== undefined && r.chance(cfg.proposeRate)) this.propose(lead);
    lead = this.leader();
    if (lead !== undefined && r.chance(cfg.confChangeRate)) this.#randomConfChange(lead);
    lead = this.leader();
    if (lead !== undefined && r.chance(cfg.transferRate)) {
      const voters = this.core(lead)!.conf.voters.filter((v) => v !== lead);
      if (voters.length > 0) this.transfer(lead, r.pick(voters));
    }
  }

  #randomConfChange(lead: number): void {
    const r = this.rng;
    const conf = this.core(lead)!.conf;
    const ids = [...this.nodes.keys()];
    const nonMembers = ids.filter((i) => !conf.voters.includes(i) && !conf.learners.includes(i));
    const options: ConfChange[] = [];
    for (const id of nonMembers) {
      options.push({ type: "addLearner", nodeId: id }, { type: "addVoter", nodeId: id });
    }
    for (const id of conf.learners) {
      options.push({ type: "addVoter", nodeId: id }, { type: "removeNode", nodeId: id });
    }
    if (conf.voters.length > 2) {
      for (const id of conf.voters) options.push({ type: "removeNode", nodeId: id });
    }
    if (options.length > 0) this.confChange(lead, r.pick(options));
  }

  // ---- invariants -------------------------------------------------------------------

  /** Election safety (Raft §5.2): at most one leader per term, ever. */
  checkElectionSafety(): void {
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c?.role !== "leader") continue;
      const prev = this.#leaders.get(c.term);
      if (prev === undefined) {
        this.#leaders.set(c.term, c.id);
        this.#checkLeaderCompleteness(c);
      } else check(prev === c.id, `election safety: leaders ${prev} and ${c.id} in term ${c.term}`);
    }
  }

  /** Leader completeness (Raft §5.4): a leader holds every entry committed before its term. */
  #checkLeaderCompleteness(c: RaftCore): void {
    for (const [index, rec] of this.#committed) {
      if (rec.seenAtTerm >= c.term) continue;
      if (index <= c.snapshot.index) continue;
      const e = c.entry(index);
      check(
        e !== undefined && e.term === rec.term && bytesEqual(e.data, rec.data),
        `leader completeness: leader ${c.id} (term ${c.term}) lacks committed entry ${index}`,
      );
    }
  }

  /**
   * All invariants over the live nodes. With `full` false (after each message), the
   * pairwise log comparison covers only what lies above the committed prefix (which is
   * checked against the canonical committed chain as it grows); each round does it all.
   */
  checkAll(full = true): void {
    this.checkElectionSafety();
    const live: RaftCore[] = [];
    for (const n of this.nodes.values()) {
      const c = n.core;
      if (c === undefined) continue;
      live.push(c);
      // Committed entries never change (and are what every later leader must hold).
      for (let i = n.lastCommitSeen + 1; i <= c.commit; i++) {
        const e = c.entry(i);
        if (e === undefined) continue;
        const rec = this.#committed.get(i);
        if (rec === undefined) {
          this.#committed.set(i, { term: e.term, data: e.data, seenAtTerm: c.term });
        } else {
          check(
            rec.term === e.term && bytesEqual(rec.data, e.data),
            `committed entry ${i} differs on node ${c.id}`,
          );
          if (c.term < rec.seenAtTerm) rec.seenAtTerm = c.term;
        }
      }
      if (c.commit > n.lastCommitSeen) n.lastCommitSeen = c.commit;
      this.#maxCommitted = Math.max(this.#maxCommitted, c.commit);
      check(c.applied <= c.commit, `node ${c.id} applied ${c.applied} > commit ${c.commit}`);
      const from = full ? c.firstIndex : Math.max(c.firstIndex, c.commit);
      let prevTerm = c.termAt(from - 1) ?? c.snapshot.term;
      for (let i = from; i <= c.lastIndex; i++) {
        const t = c.termAt(i)!;
        check(t >= prevTerm, `node ${c.id} log terms decrease at ${i}`);
        prevTerm = t;
      }
      check(c.term >= prevTerm, `node ${c.id} term ${c.term} below its last log term ${prevTerm}`);
    }
    // Log matching (Raft §5.3): same index and term ⇒ identical up to there.
    for (let a = 0; a < live.length; a++) {
      for (let b = a + 1; b < live.length; b++) this.#checkLogMatching(live[a]!, live[b]!, full);
    }
  }

  #checkLogMatching(a: RaftCore, b: RaftCore, full: boolean): void {
    let lo = Math.max(a.firstIndex, b.firstIndex);
    if (!full) lo = Math.max(lo, Math.min(a.commit, b.commit));
    let i = Math.min(a.lastIndex, b.lastIndex);
    while (i >= lo && a.termAt(i) !== b.termAt(i)) i--;
    for (; i >= lo; i--) {
      const ea = a.entry(i)!;
      const eb = b.entry(i)!;
      check(
        ea.term === eb.term && ea.type === eb.type && bytesEqual(ea.data, eb.data),
        `log matching: nodes ${a.id} and ${b.id} differ at ${i}`,
      );
    }
  }

  // ---- liveness ---------------------------------------------------------------------

  /**
   * Heals everything, restarts crashed nodes and requires, within `livenessTicks`: a
   * leader, a fresh proposal applied on every member, and every acknowledged proposal
   * applied everywhere with the same content.
   */
  checkLiveness(): void {
    this.faults = false;
    this.heal();
    for (const n of this.nodes.values()) if (n.core === undefined) this.restart(n.id);
    this.#log("liveness mode");
    let target: number | undefined;
    const done = () => {
      const lead = this.leader();
      if (lead === undefined) return false;
      const lc = this.core(lead)!;
      if (target === undefined || lc.termAt(target) === undefined && lc.snapshot.index < target) {
        target = this.propose(lead);
        return false;
      }
      const members = [...lc.conf.voters, ...lc.conf.learners];
      return members.every((id) => (this.nodes.get(id)?.smIndex ?? 0) >= target!);
    };
    const used = this.runUntil(done, this.cfg.livenessTicks);
    check(
      used !== undefined,
      `liveness: no leader with a committed proposal within ${this.cfg.livenessTicks} ticks (leader ${this.leader()})`,
    );
    const lc = this.core(this.leader()!)!;
    const members = [...lc.conf.voters, ...lc.conf.learners];
    for (const [index, id] of this.acked) {
      const rec = this.#appliedHash.get(index);
      check(rec !== undefined, `acknowledged proposal ${id} at ${index} was never applied`);
      for (const m of members) {
        check(
          this.nodes.get(m)!.smIndex >= index,
          `acknowledged proposal ${id} at ${index} not applied on member ${m}`,
        );
      }
      const e = this.#committed.get(index);
      check(
        e === undefined || decoder.decode(e.data) === id,
        `acknowledged proposal ${id} at ${index} was replaced by another entry`,
      );
    }
  }

  /** One line describing the configuration, printed at the start of a failing run. */
  describe(): string {
    return JSON.stringify(this.cfg);
  }

  /** The cluster's messages in flight (for scripted tests). */
  inFlight(): { from: number; to: number; type: string }[] {
    return this.#net.map((f) => {
      const m = decodeMessage(f.bytes);
      return { from: f.from, to: f.to, type: messageTypeName(m.type) };
    });
  }
}
