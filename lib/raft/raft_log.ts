/**
 * The core's in-memory view of the Raft log: a snapshot base plus the entries after it,
 * split by durability at `stable` (entries above it are not yet persisted). The core
 * keeps the whole uncompacted log in memory; the driver bounds it with snapshots.
 */
import { assert } from "../util/assert.ts";
import type { ConfState, Entry, Snapshot } from "./messages.ts";

/** Raft log state held by the core. */
export class RaftLog {
  /** Log state up to and including `snapshot.index` is only known through the snapshot. */
  snapshot: Snapshot;
  /** `entries[i].index === snapshot.index + 1 + i`. */
  entries: Entry[];
  /** Highest index known to be durable. Invariant: snapshot.index <= stable <= lastIndex. */
  stable: number;
  /** Highest index known committed. Invariant: committed <= lastIndex (once persisted). */
  committed: number;
  /** Highest index handed to the application. Invariant: applied <= committed. */
  applied: number;
  /** A snapshot received from the leader and not yet persisted. */
  unstableSnapshot: Snapshot | undefined;

  constructor(snapshot: Snapshot, entries: Entry[], committed: number) {
    this.snapshot = snapshot;
    this.entries = entries;
    for (let i = 0; i < entries.length; i++) {
      assert(entries[i]!.index === snapshot.index + 1 + i, "Recovered log is not contiguous");
    }
    this.stable = this.lastIndex();
    this.committed = Math.max(snapshot.index, Math.min(committed, this.lastIndex()));
    this.applied = snapshot.index;
    this.unstableSnapshot = undefined;
  }

  firstIndex(): number {
    return this.snapshot.index + 1;
  }

  lastIndex(): number {
    return this.snapshot.index + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of the entry at `index`, or undefined if compacted or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.snapshot.index) return this.snapshot.term;
    if (index < this.snapshot.index || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshot.index - 1]!.term;
  }

  entry(index: number): Entry | undefined {
    if (index <= this.snapshot.index || index > this.lastIndex()) return undefined;
    return this.entries[index - this.snapshot.index - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is (lastIndex, lastTerm) at least as up to date as this log? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi] (clamped to the log), at most `maxBytes` of data (at least one). */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const from = Math.max(lo, this.firstIndex());
    const to = Math.min(hi, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = from; i <= to; i++) {
      const e = this.entries[i - this.snapshot.index - 1]!;
      bytes += e.data.length + 24;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** Entries not yet persisted. */
  unstableEntries(): Entry[] {
    return this.entries.slice(this.stable - this.snapshot.index);
  }

  /**
   * Etcd's findConflictByTerm: the largest index ≤ `index` whose term is ≤ `term`, with
   * that term (0 when unknown/compacted). Used for fast back-off (thesis §3.5 / etcd).
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    let i = Math.min(index, this.lastIndex());
    for (; i >= this.snapshot.index; i--) {
      const t = this.term(i);
      if (t === undefined) return [i, 0];
      if (t <= term) return [i, t];
    }
    return [i, 0];
  }

  /**
   * Raft §5.3 AppendEntries receiver: if the log has (`index`, `logTerm`), appends
   * `ents` (dropping a conflicting suffix) and returns the last new index, whether
   * anything was appended and whether existing entries were removed; else undefined.
   */
  maybeAppend(
    index: number,
    logTerm: number,
    ents: readonly Entry[],
  ): { lastNew: number; appended: boolean; truncated: boolean } | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    let appended = false;
    let truncated = false;
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k]!;
      if (e.index <= this.snapshot.index) continue;
      const t = this.term(e.index);
      if (t !== e.term) {
        assert(
          e.index > this.committed,
          `Entry ${e.index} conflicts with a committed entry (commit ${this.committed})`,
        );
        truncated = t !== undefined;
        this.truncateAndAppend(ents.slice(k));
        appended = true;
        break;
      }
    }
    return { lastNew, appended, truncated };
  }

  /** Appends `ents`, first removing any entries at or after `ents[0].index`. */
  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    assert(after > this.snapshot.index, "Cannot append below the snapshot");
    assert(
      after <= this.lastIndex() + 1,
      `Cannot append at ${after}: gap after ${this.lastIndex()}`,
    );
    assert(after > this.committed, `Cannot overwrite committed entry ${after}`);
    this.entries.length = after - this.snapshot.index - 1;
    for (const e of ents) this.entries.push(e);
    if (this.stable >= after) this.stable = after - 1;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assert(
      index <= this.lastIndex(),
      `Cannot commit ${index} beyond last index ${this.lastIndex()}`,
    );
    this.committed = index;
    return true;
  }

  /** Replaces the whole log by a snapshot received from the leader (not yet durable). */
  restore(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = [];
    this.unstableSnapshot = snapshot;
    this.stable = snapshot.index;
    this.committed = snapshot.index;
  }

  /** Drops entries up to `snapshot.index`, which the application has applied. */
  compact(snapshot: Snapshot): void {
    assert(snapshot.index <= this.applied, "Cannot compact beyond the applied index");
    assert(snapshot.index > this.snapshot.index, "Cannot compact below the current snapshot");
    assert(this.term(snapshot.index) === snapshot.term, "Snapshot term does not match the log");
    this.entries = this.entries.slice(snapshot.index - this.snapshot.index);
    this.snapshot = snapshot;
  }

  /** The configuration in force at `index`: the last ConfChange at or before it. */
  confAt(index: number, decode: (data: Uint8Array) => ConfState): ConfState {
    for (let i = Math.min(index, this.lastIndex()); i > this.snapshot.index; i--) {
      const e = this.entries[i - this.snapshot.index - 1]!;
      if (e.type === 1) return decode(e.data);
    }
    return this.snapshot.conf;
  }

  /** Index of the last ConfChange entry in the log (snapshot index if none). */
  lastConfIndex(): number {
    for (let i = this.lastIndex(); i > this.snapshot.index; i--) {
      if (this.entries[i - this.snapshot.index - 1]!.type === 1) return i;
    }
    return this.snapshot.index;
  }
}
