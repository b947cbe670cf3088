/**
 * Raft: deterministic simulation over many seeds. `RAFT_SEEDS=n` sets how many seeds run
 * (default sized to about a minute on the 2-core CI machine), `RAFT_SEED=n` replays one.
 * After every round: election safety, log matching, leader completeness, state-machine
 * safety, committed entries never change; at the end of each run, liveness (a leader is
 * elected and proposals commit within a bound of ticks once the network heals) and no
 * acknowledged proposal is lost.
 */
import assert from "node:assert/strict";
import { InvariantError, SimCluster, swarmConfig } from "./_sim/sim_cluster.ts";

const DEFAULT_SEEDS = 2000;

function runSeed(seed: number): void {
  const sim = new SimCluster(seed);
  try {
    for (let i = 0; i < sim.cfg.rounds; i++) sim.round();
    sim.checkLiveness();
  } catch (err) {
    const lines = sim.trace.slice(-50).join("\n");
    const kind = err instanceof InvariantError ? "invariant" : "error";
    throw new Error(
      `Raft simulation failed (${kind}) at seed=${seed} step=${sim.steps} t=${sim.now}: ${
        (err as Error).message
      }\n` +
        `config: ${sim.describe()}\n` +
        `replay: RAFT_SEED=${seed} deno test -A tests/raft/sim_test.ts\n` +
        `last trace lines:\n${lines}\n${(err as Error).stack ?? ""}`,
    );
  }
}

Deno.test("Raft: simulation: safety and liveness over random seeds", async (t) => {
  const one = Deno.env.get("RAFT_SEED");
  if (one !== undefined) {
    await t.step(`seed ${one}`, () => runSeed(Number(one)));
    return;
  }
  const count = Number(Deno.env.get("RAFT_SEEDS") ?? DEFAULT_SEEDS);
  const base = Number(Deno.env.get("RAFT_SEED_BASE") ?? 1);
  for (let seed = base; seed < base + count; seed++) runSeed(seed);
});

Deno.test("Raft: simulation: liveness: a healthy cluster elects a leader and commits within a bound of ticks", () => {
  // Election timeouts are drawn from [10, 20) ticks; a pre-vote and a vote round take
  // one tick each on a healthy network, so a leader must exist well within 3 timeouts.
  const ELECTION_BOUND = 60;
  const COMMIT_BOUND = 5;
  for (let seed = 1; seed <= 200; seed++) {
    const nodes = seed % 2 === 0 ? 3 : 5;
    const sim = new SimCluster(seed, {
      ...swarmConfig(seed),
      nodeCount: nodes,
      initialVoters: nodes,
    });
    sim.faults = false;
    const elected = sim.runUntil(() => sim.leader() !== undefined, ELECTION_BOUND);
    assert.notEqual(elected, undefined, `seed=${seed}: no leader within ${ELECTION_BOUND} ticks`);
    const leader = sim.leader()!;
    const index = sim.propose(leader);
    assert.notEqual(index, undefined);
    const committed = sim.runUntil(
      () => [...sim.nodes.values()].every((n) => (n.core?.applied ?? 0) >= index!),
      COMMIT_BOUND,
    );
    assert.notEqual(
      committed,
      undefined,
      `seed=${seed}: not applied everywhere in ${COMMIT_BOUND} ticks`,
    );
  }
});
