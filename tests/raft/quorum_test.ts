/**
 * Quorum arithmetic checked against naive definitions (etcd's quorum/quick_test.go).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { committedIndex, quorumSize, voteResult } from "../../lib/raft/quorum.ts";

const voterSets = fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 7 });

Deno.test("committedIndex() is the largest index a majority of voters has matched", () => {
  fc.assert(
    fc.property(voterSets, fc.array(fc.nat(20), { minLength: 9, maxLength: 9 }), (voters, m) => {
      const match = (id: number) => m[id - 1]!;
      const got = committedIndex(voters, match);
      let naive = 0;
      for (let i = 0; i <= 20; i++) {
        if (voters.filter((v) => match(v) >= i).length >= quorumSize(voters.length)) naive = i;
      }
      assert.equal(got, naive);
    }),
  );
});

Deno.test("voteResult() is won/lost exactly when a majority granted/can no longer grant", () => {
  const vote = fc.constantFrom<boolean | undefined>(true, false, undefined);
  fc.assert(
    fc.property(voterSets, fc.array(vote, { minLength: 9, maxLength: 9 }), (voters, vs) => {
      const votes = new Map<number, boolean>();
      voters.forEach((v) => {
        const x = vs[v - 1];
        if (x !== undefined) votes.set(v, x);
      });
      const q = quorumSize(voters.length);
      const yes = voters.filter((v) => votes.get(v) === true).length;
      const open = voters.filter((v) => !votes.has(v)).length;
      const expected = yes >= q ? "won" : yes + open < q ? "lost" : "pending";
      assert.equal(voteResult(voters, votes), expected);
    }),
  );
});
