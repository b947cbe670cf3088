/**
 * Where a follower truncates its log before fetching from a new leader (DESIGN §8):
 * Kafka's `AbstractFetcherThread.getOffsetTruncationState` over the answer to the
 * follower's OffsetForLeaderEpoch request (KIP-101, refined by KIP-279 for several
 * leader changes in a row). Pure.
 *
 * Protocol: the follower asks the leader for the end of its own latest epoch
 * ({@linkcode LeaderEpochCache.latestEpoch}), truncates to the returned offset, and, while
 * the result is not `completed`, asks again with its (new) latest epoch.
 */
import {
  endOffsetForEpoch,
  type EpochEndOffset,
  type EpochEntry,
  UNDEFINED_EPOCH,
  UNDEFINED_EPOCH_OFFSET,
} from "./leader_epoch_cache.ts";

/** Inputs of {@linkcode followerTruncationPoint}. */
export interface TruncationInput {
  /** The follower's leader-epoch cache entries. */
  followerEntries: readonly EpochEntry[];
  /** The follower's log end offset. */
  followerLeo: number;
  /** The follower's high watermark: the fallback when the leader knows no answer. */
  followerHw: number;
  /** The leader's OffsetForLeaderEpoch answer for the follower's latest epoch. */
  leaderAnswer: EpochEndOffset;
}

/** Kafka's `OffsetTruncationState`. */
export interface TruncationState {
  /** Truncate the log to this offset (a no-op when >= the follower's log end). */
  offset: number;
  /** False: truncate, then ask the leader again with the follower's new latest epoch. */
  completed: boolean;
}

/**
 * The offset the follower truncates to:
 * - the leader answered UNDEFINED_EPOCH_OFFSET (it knows no epoch <= the one asked):
 *   the follower's high watermark (capped at its log end);
 * - the leader answered an offset without an epoch (OffsetForLeaderEpoch v0):
 *   min(leader's offset, follower's log end);
 * - the follower has the epoch the leader answered with: min(the end of that epoch in the
 *   follower's log, the leader's end offset, the follower's log end) — the first offset
 *   where the two logs can differ;
 * - the follower lacks that epoch but has an older one: the end of the largest older
 *   epoch, not completed (KIP-279: ask again);
 * - the follower has no epoch <= the answer: min(leader's offset, follower's log end).
 *
 * @example
 * ```ts
 * import { followerTruncationPoint } from "./truncation.ts";
 * // KIP-101 divergence: the follower wrote offsets 0-1 in epoch 0; the new leader
 * // (epoch 1) has epoch 0 up to offset 1 only, then epoch 1.
 * const st = followerTruncationPoint({
 *   followerEntries: [{ epoch: 0, startOffset: 0 }],
 *   followerLeo: 2,
 *   followerHw: 1,
 *   leaderAnswer: { epoch: 0, endOffset: 1 },
 * });
 * if (st.offset !== 1 || !st.completed) throw new Error("unexpected");
 * ```
 */
export function followerTruncationPoint(input: TruncationInput): TruncationState {
  const { followerLeo, leaderAnswer } = input;
  if (leaderAnswer.endOffset === UNDEFINED_EPOCH_OFFSET) {
    return { offset: Math.min(input.followerHw, followerLeo), completed: true };
  }
  if (leaderAnswer.epoch === UNDEFINED_EPOCH) {
    return { offset: Math.min(leaderAnswer.endOffset, followerLeo), completed: true };
  }
  const mine = endOffsetForEpoch(input.followerEntries, leaderAnswer.epoch, followerLeo);
  if (mine.epoch === UNDEFINED_EPOCH || mine.endOffset === UNDEFINED_EPOCH_OFFSET) {
    return { offset: Math.min(leaderAnswer.endOffset, followerLeo), completed: true };
  }
  if (mine.epoch !== leaderAnswer.epoch) {
    return { offset: Math.min(mine.endOffset, followerLeo), completed: false };
  }
  return {
    offset: Math.min(mine.endOffset, leaderAnswer.endOffset, followerLeo),
    completed: true,
  };
}
