/**
 * The leader's view of one follower's replication (etcd's `tracker.Progress`): what it
 * has matched, what to send next, and the flow-control state.
 */

/**
 * - probe: one append in flight at a time until the follower's match is known;
 * - replicate: optimistic streaming, bounded by `maxInflight` unacknowledged appends;
 * - snapshot: an InstallSnapshot is in flight, appends paused.
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** Replication state of one peer, kept by the leader. */
export class Progress {
  /** Highest index known to be replicated on the peer. Invariant: match < next. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = "probe";
  /** Snapshot index being sent while in "snapshot" state. */
  pendingSnapshot = 0;
  /** Ticks spent waiting in "snapshot" state (the snapshot may have been lost). */
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe state: an append was sent and not answered yet. */
  probeSent = false;
  /** Last indexes of unacknowledged appends in replicate state, ascending. */
  inflights: number[] = [];
  readonly maxInflight: number;
  isLearner: boolean;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.maxInflight = maxInflight;
    this.isLearner = isLearner;
  }

  /** Records an acknowledgement up to `n`; true if the match index grew. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * Handles a rejection of the append whose preceding index was `rejected`, with the
   * follower's hint; false if the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending must wait (probe in flight, window full, or snapshot pending). */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.length >= this.maxInflight;
      case "snapshot":
        return true;
    }
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.#reset("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.#reset("replicate");
  }

  becomeSnapshot(index: number): void {
    this.#reset("snapshot");
    this.pendingSnapshot = index;
  }

  /** Notes that entries up to `last` were sent (`last` = next - 1 if none). */
  sentEntries(last: number, count: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.inflights.push(last);
        this.next = last + 1;
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  /** Frees in-flight slots for appends up to `index`. */
  freeLE(index: number): void {
    let i = 0;
    while (i < this.inflights.length && this.inflights[i]! <= index) i++;
    if (i > 0) this.inflights.splice(0, i);
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflights = [];
  }
}
