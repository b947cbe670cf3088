/**
 * Majority-quorum arithmetic over a voter set (pure functions). The core uses one
 * configuration at a time: membership changes are single-server (thesis §4.1), so any
 * majority of the old and of the new configuration overlap.
 */

/** The number of votes that make a majority of `voterCount` voters. */
export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of `voters` has matched: the quorum-th highest of
 * their match indexes (a voter without an entry in `match` counts as 0).
 */
export function committedIndex(voters: readonly number[], match: (id: number) => number): number {
  if (voters.length === 0) return 0;
  const values = voters.map(match).sort((a, b) => b - a);
  return values[quorumSize(voters.length) - 1] ?? 0;
}

/** Outcome of an election so far. */
export type VoteResult = "won" | "lost" | "pending";

/** Whether `votes` (id → granted) already decides an election among `voters`. */
export function voteResult(
  voters: readonly number[],
  votes: ReadonlyMap<number, boolean>,
): VoteResult {
  const q = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= q) return "won";
  if (rejected > voters.length - q) return "lost";
  return "pending";
}
