/**
 * ISR decisions of a partition leader (DESIGN §8), as Kafka's `Partition.maybeShrinkIsr`
 * / `maybeExpandIsr` with `Replica.isCaughtUp` and `isFollowerInSync`, plus the follower
 * fetch bookkeeping they read (`Replica.updateFetchState`, `resetReplicaState`). Pure: the
 * caller proposes the changes to the controller and acts only once they are committed.
 */

/** What the leader knows of one follower's replica. */
export interface FollowerState {
  readonly id: number;
  /** The follower's log end offset from its last fetch, or -1 if unknown. */
  readonly logEndOffset: number;
  /**
   * The last time the follower was known to be caught up: its fetch reached the leader's
   * log end as it was then (see {@linkcode updateFollowerFetchState}).
   */
  readonly lastCaughtUpTimeMs: number;
  /** When the follower last fetched; 0 if never. */
  readonly lastFetchTimeMs: number;
  /** The leader's log end offset at that fetch; -1 if unknown. */
  readonly lastFetchLeaderLogEndOffset: number;
}

/** Inputs of {@linkcode isrDecisions}. */
export interface IsrInput {
  /** The leader's id: never removed, never added. */
  leaderId: number;
  /** The committed ISR. */
  isr: readonly number[];
  /** The partition's assigned replicas; only these may join the ISR. */
  replicas: readonly number[];
  /** Replicas that may not join the ISR now (fenced, shutting down). */
  ineligible?: readonly number[];
  followers: readonly FollowerState[];
  /** The leader's log end offset. */
  leaderEnd: number;
  /** The leader's high watermark. */
  hw: number;
  /** Where the leader's current epoch starts in its log (its epoch cache entry). */
  leaderEpochStartOffset: number;
  nowMs: number;
  /** `replica.lag.time.max.ms` */
  replicaLagTimeMaxMs: number;
}

/** ISR changes the leader should propose; both sorted ascending. */
export interface IsrDecisions {
  /** ISR followers not caught up within the lag time. */
  shrink: number[];
  /** Assigned replicas outside the ISR that have caught up. */
  expand: number[];
}

/**
 * Kafka's `ReplicaState.isCaughtUp`: the follower is at the leader's log end, or was
 * caught up within the last `replicaLagTimeMaxMs`.
 */
export function isCaughtUp(
  follower: FollowerState,
  options: { leaderEnd: number; nowMs: number; replicaLagTimeMaxMs: number },
): boolean {
  return follower.logEndOffset === options.leaderEnd ||
    options.nowMs - follower.lastCaughtUpTimeMs <= options.replicaLagTimeMaxMs;
}

/**
 * Kafka's `isFollowerInSync` for ISR expansion: the follower's log end has reached the
 * high watermark and the start of the leader's current epoch (so it has truncated
 * against this leader and holds none of an older leader's divergent tail).
 */
export function isFollowerInSync(
  follower: FollowerState,
  options: { hw: number; leaderEpochStartOffset: number },
): boolean {
  return follower.logEndOffset >= options.hw &&
    follower.logEndOffset >= options.leaderEpochStartOffset;
}

/**
 * Which followers leave and which join the ISR. A follower in the ISR without any state
 * is out of sync (Kafka's `isFollowerOutOfSync` folds a missing replica to true); the
 * leader is never removed.
 *
 * @example
 * ```ts
 * import { isrDecisions } from "./isr.ts";
 * const follower = (id: number, logEndOffset: number, lastCaughtUpTimeMs: number) => ({
 *   id, logEndOffset, lastCaughtUpTimeMs, lastFetchTimeMs: 0, lastFetchLeaderLogEndOffset: -1,
 * });
 * const d = isrDecisions({
 *   leaderId: 1, isr: [1, 2], replicas: [1, 2, 3],
 *   followers: [follower(2, 50, 1_000), follower(3, 100, 9_000)],
 *   leaderEnd: 100, hw: 90, leaderEpochStartOffset: 80, nowMs: 10_000, replicaLagTimeMaxMs: 5_000,
 * });
 * if (d.shrink.join() !== "2" || d.expand.join() !== "3") throw new Error("unexpected");
 * ```
 */
export function isrDecisions(input: IsrInput): IsrDecisions {
  const byId = new Map(input.followers.map((f) => [f.id, f]));
  const inIsr = new Set(input.isr);
  const ineligible = new Set(input.ineligible ?? []);
  const shrink: number[] = [];
  for (const id of inIsr) {
    if (id === input.leaderId) continue;
    const f = byId.get(id);
    if (f === undefined || !isCaughtUp(f, input)) shrink.push(id);
  }
  const expand: number[] = [];
  for (const id of new Set(input.replicas)) {
    if (id === input.leaderId || inIsr.has(id) || ineligible.has(id)) continue;
    const f = byId.get(id);
    if (f !== undefined && isFollowerInSync(f, input)) expand.push(id);
  }
  return { shrink: shrink.sort((a, b) => a - b), expand: expand.sort((a, b) => a - b) };
}

/**
 * The follower's state after a fetch at `fetchOffset` (its log end offset) at
 * `fetchTimeMs`, when the leader's log end was `leaderEnd` (Kafka's
 * `Replica.updateFetchState`): it is caught up as of now if it reached the leader's
 * current end, and as of its previous fetch if it reached the leader's end at that fetch.
 */
export function updateFollowerFetchState(
  state: FollowerState,
  fetch: { fetchOffset: number; fetchTimeMs: number; leaderEnd: number },
): FollowerState {
  let lastCaughtUpTimeMs = state.lastCaughtUpTimeMs;
  if (fetch.fetchOffset >= fetch.leaderEnd) {
    lastCaughtUpTimeMs = Math.max(lastCaughtUpTimeMs, fetch.fetchTimeMs);
  } else if (fetch.fetchOffset >= state.lastFetchLeaderLogEndOffset) {
    lastCaughtUpTimeMs = Math.max(lastCaughtUpTimeMs, state.lastFetchTimeMs);
  }
  return {
    id: state.id,
    logEndOffset: fetch.fetchOffset,
    lastCaughtUpTimeMs,
    lastFetchTimeMs: fetch.fetchTimeMs,
    lastFetchLeaderLogEndOffset: Math.max(fetch.leaderEnd, state.lastFetchLeaderLogEndOffset),
  };
}

/**
 * A follower's state when this node becomes leader (Kafka's `resetReplicaState` with
 * `isNewLeader`): nothing is known of its log, and it counts as caught up now if it is in
 * the ISR, else never, so a follower outside the ISR does not hold the HW back.
 */
export function newFollowerState(
  id: number,
  options: { inIsr: boolean; nowMs: number },
): FollowerState {
  return {
    id,
    logEndOffset: -1,
    lastCaughtUpTimeMs: options.inIsr ? options.nowMs : 0,
    lastFetchTimeMs: 0,
    lastFetchLeaderLogEndOffset: -1,
  };
}
