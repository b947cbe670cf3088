/**
 * The leader's high watermark (DESIGN §8, I4): the smallest durable end offset over the
 * ISR, leader included, and never lower than before. Pure.
 */

/** Inputs of {@linkcode highWatermark}. */
export interface HighWatermarkInput {
  /** The leader's durable end offset (every offset below it is fsynced). */
  leaderDurableEnd: number;
  /** The ISR the metadata log last committed; may include the leader's own id. */
  isr: readonly number[];
  /** The leader's id, so that it is not looked up among the followers. */
  leaderId: number;
  /**
   * The durable end offset each follower last reported in a fetch. A follower in the ISR
   * that has not reported yet (a new leader) holds the HW where it is.
   */
  followerDurableEnds: ReadonlyMap<number, number>;
  /** The high watermark now. */
  currentHw: number;
}

/**
 * The new high watermark: min(leader durable end, each ISR follower's durable end),
 * but never below `currentHw` (a leader's HW never goes back, I4; Kafka's
 * `maybeIncrementLeaderHW` only moves it forward).
 *
 * @example
 * ```ts
 * import { highWatermark } from "./high_watermark.ts";
 * const hw = highWatermark({
 *   leaderDurableEnd: 10,
 *   leaderId: 1,
 *   isr: [1, 2, 3],
 *   followerDurableEnds: new Map([[2, 7], [3, 9]]),
 *   currentHw: 5,
 * });
 * if (hw !== 7) throw new Error("unexpected");
 * ```
 */
export function highWatermark(input: HighWatermarkInput): number {
  let min = input.leaderDurableEnd;
  for (const id of input.isr) {
    if (id === input.leaderId) continue;
    const end = input.followerDurableEnds.get(id);
    if (end === undefined) return input.currentHw;
    if (end < min) min = end;
  }
  return Math.max(min, input.currentHw);
}
