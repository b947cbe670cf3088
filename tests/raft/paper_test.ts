/**
 * Raft: behaviours the paper (Ongaro & Ousterhout, "In Search of an Understandable
 * Consensus Algorithm") and the thesis ("Consensus: Bridging Theory and Practice")
 * specify, one test each, named after the section they check. Single-core tests drive a
 * {@linkcode RaftCore} by hand; multi-node ones use the simulator with faults off.
 */
import assert from "node:assert/strict";
import { RaftCore, type RaftCoreOptions } from "../../lib/raft/core.ts";
import {
  EntryType,
  makeMessage,
  type Message,
  MessageType,
  NONE,
} from "../../lib/raft/messages.ts";
import { Random } from "../../lib/util/random.ts";
import { SimCluster, swarmConfig } from "./_sim/sim_cluster.ts";

const enc = new TextEncoder();

function newCore(id: number, voters = [1, 2, 3], opts: Partial<RaftCoreOptions> = {}): RaftCore {
  return new RaftCore({
    id,
    initialConf: { voters, learners: [] },
    random: new Random(id),
    electionTicks: 10,
    ...opts,
  });
}

/** Handles every Ready as a driver would (persisting nothing) and returns the messages. */
function drain(core: RaftCore): { now: Message[]; after: Message[] } {
  const now: Message[] = [];
  const after: Message[] = [];
  while (core.hasReady()) {
    const rd = core.ready();
    now.push(...rd.messages);
    after.push(...rd.messagesAfterPersist);
    core.advance(rd);
  }
  return { now, after };
}

function all(core: RaftCore): Message[] {
  const { now, after } = drain(core);
  return [...now, ...after];
}

function m(fields: Parameters<typeof makeMessage>[0]): Message {
  return makeMessage(fields);
}

/** Makes `core` leader of its term+1 with votes from `from`. */
function elect(core: RaftCore, from = 2): void {
  core.campaign();
  drain(core);
  core.step(m({ type: MessageType.PreVoteResp, from, to: core.id, term: core.term + 1 }));
  drain(core);
  core.step(m({ type: MessageType.VoteResp, from, to: core.id, term: core.term }));
  drain(core);
  assert.equal(core.role, "leader");
}

function quietSim(nodes = 3, seed = 7): SimCluster {
  const cfg = { ...swarmConfig(seed), nodeCount: nodes, initialVoters: nodes };
  const sim = new SimCluster(seed, cfg);
  sim.faults = false;
  return sim;
}

function electedSim(nodes = 3, seed = 7): { sim: SimCluster; leader: number } {
  const sim = quietSim(nodes, seed);
  assert.notEqual(sim.runUntil(() => sim.leader() !== undefined, 200), undefined);
  return { sim, leader: sim.leader()! };
}

Deno.test("Raft §5.1: a node seeing a higher term adopts it and becomes follower", () => {
  const c = newCore(1);
  elect(c);
  const term = c.term;
  c.step(m({ type: MessageType.Heartbeat, from: 2, to: 1, term: term + 3 }));
  assert.equal(c.role, "follower");
  assert.equal(c.term, term + 3);
  assert.equal(c.leader, 2);
  assert.equal(c.vote, NONE);
});

Deno.test("Raft §5.1: a request with a stale term is rejected and the sender learns the term", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Heartbeat, from: 2, to: 1, term: 5 }));
  drain(c);
  c.step(m({ type: MessageType.App, from: 3, to: 1, term: 4, index: 0, logTerm: 0 }));
  const out = all(c);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.type, MessageType.AppResp);
  assert.equal(out[0]!.term, 5);
  assert.equal(c.lastIndex, 0, "nothing appended from a stale leader");
});

Deno.test("Raft §5.1: a vote request with a stale term is rejected with the current term", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Vote, from: 2, to: 1, term: 7, index: 0, logTerm: 0 }));
  drain(c);
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 4, index: 9, logTerm: 4 }));
  const out = all(c);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.type, MessageType.VoteResp);
  assert.equal(out[0]!.reject, true);
  assert.equal(out[0]!.term, 7, "the candidate learns the term it must exceed");
});

Deno.test("Raft §5.2: a follower that hears nothing for an election timeout starts an election", () => {
  const c = newCore(1, [1, 2, 3], { preVote: false });
  for (let i = 0; i < 20; i++) c.tick();
  assert.equal(c.role, "candidate");
  assert.equal(c.term, 1);
  assert.equal(c.vote, 1);
  const out = all(c).filter((x) => x.type === MessageType.Vote);
  assert.deepEqual(out.map((x) => x.to).sort(), [2, 3]);
});

Deno.test("Raft §5.2: election timeouts are randomised in [electionTicks, 2 × electionTicks)", () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const c = new RaftCore({
      id: 1,
      initialConf: { voters: [1, 2, 3], learners: [] },
      random: new Random(seed),
      electionTicks: 10,
      preVote: false,
    });
    let t = 0;
    while (c.role === "follower") {
      c.tick();
      t++;
    }
    assert.ok(t >= 10 && t < 20, `timeout ${t}`);
    seen.add(t);
  }
  assert.ok(seen.size >= 5, "timeouts should spread over the range");
});

Deno.test("Raft §5.2: a candidate with votes from a majority becomes leader and appends a no-op", () => {
  const c = newCore(1, [1, 2, 3, 4, 5], { preVote: false });
  c.campaign();
  drain(c);
  c.step(m({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
  assert.equal(c.role, "candidate");
  c.step(m({ type: MessageType.VoteResp, from: 3, to: 1, term: 1 }));
  assert.equal(c.role, "leader");
  assert.equal(c.entry(1)?.term, 1);
  assert.equal(c.entry(1)?.data.length, 0);
  const apps = all(c).filter((x) => x.type === MessageType.App);
  assert.deepEqual(apps.map((x) => x.to).sort(), [2, 3, 4, 5]);
});

Deno.test("Raft §5.2: a candidate rejected by a majority returns to follower", () => {
  const c = newCore(1, [1, 2, 3], { preVote: false });
  c.campaign();
  drain(c);
  c.step(m({ type: MessageType.VoteResp, from: 2, to: 1, term: 1, reject: true }));
  c.step(m({ type: MessageType.VoteResp, from: 3, to: 1, term: 1, reject: true }));
  assert.equal(c.role, "follower");
});

Deno.test("Raft §5.2: a node grants at most one vote per term, first come first served", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Vote, from: 2, to: 1, term: 1 }));
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 1 }));
  const out = all(c).filter((x) => x.type === MessageType.VoteResp);
  assert.equal(out.length, 2);
  assert.equal(out[0]!.to, 2);
  assert.equal(out[0]!.reject, false);
  assert.equal(out[1]!.to, 3);
  assert.equal(out[1]!.reject, true);
  assert.equal(c.vote, 2);
});

Deno.test("Raft §5.2 (thesis §3.8): votes and acknowledgements leave only after persistence", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Vote, from: 2, to: 1, term: 1 }));
  const rd = c.ready();
  assert.equal(rd.messages.length, 0);
  assert.equal(rd.messagesAfterPersist[0]?.type, MessageType.VoteResp);
  assert.deepEqual(rd.hardState, { term: 1, vote: 2, commit: 0 });
  assert.equal(rd.mustSync, true);
  c.advance(rd);
  c.step(m({
    type: MessageType.App,
    from: 2,
    to: 1,
    term: 1,
    entries: [{ index: 1, term: 1, type: EntryType.Normal, data: enc.encode("x") }],
  }));
  const rd2 = c.ready();
  assert.equal(rd2.entries.length, 1);
  assert.equal(rd2.messages.length, 0);
  assert.equal(rd2.messagesAfterPersist[0]?.type, MessageType.AppResp);
  c.advance(rd2);
});

Deno.test("Raft §5.3: the leader replicates a proposal and commits it once a majority stored it", () => {
  const c = newCore(1);
  elect(c);
  // Followers acknowledge the no-op, moving from probing to streaming.
  c.step(m({ type: MessageType.AppResp, from: 2, to: 1, term: c.term, index: 1 }));
  c.step(m({ type: MessageType.AppResp, from: 3, to: 1, term: c.term, index: 1 }));
  drain(c);
  const res = c.propose(enc.encode("x"));
  assert.ok(res.ok);
  const apps = all(c).filter((x) => x.type === MessageType.App);
  assert.deepEqual(apps.map((x) => x.to).sort(), [2, 3]);
  assert.equal(c.commit, 1);
  c.step(m({ type: MessageType.AppResp, from: 2, to: 1, term: c.term, index: res.index }));
  assert.equal(c.commit, res.index);
  const rd = c.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  c.advance(rd);
});

Deno.test("Raft §5.3: a follower rejects an append whose previous entry it lacks, with a back-off hint", () => {
  const c = newCore(2);
  const ents = [1, 2, 3].map((i) => ({
    index: i,
    term: 1,
    type: EntryType.Normal,
    data: enc.encode(`${i}`),
  }));
  c.step(
    m({ type: MessageType.App, from: 1, to: 2, term: 1, index: 0, logTerm: 0, entries: ents }),
  );
  drain(c);
  c.step(m({ type: MessageType.App, from: 1, to: 2, term: 2, index: 7, logTerm: 2 }));
  const out = all(c).find((x) => x.type === MessageType.AppResp)!;
  assert.equal(out.reject, true);
  assert.equal(out.index, 7);
  assert.equal(out.rejectHint, 3, "hint points at our last index, skipping the gap in one step");
  assert.equal(out.logTerm, 1);
});

Deno.test("Raft §5.3: a follower deletes a conflicting suffix and takes the leader's entries", () => {
  const c = newCore(2);
  const e = (i: number, t: number) => ({
    index: i,
    term: t,
    type: EntryType.Normal,
    data: enc.encode(`${i}/${t}`),
  });
  c.step(
    m({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 1,
      index: 0,
      logTerm: 0,
      entries: [e(1, 1), e(2, 1), e(3, 1)],
    }),
  );
  drain(c);
  c.step(
    m({ type: MessageType.App, from: 3, to: 2, term: 2, index: 1, logTerm: 1, entries: [e(2, 2)] }),
  );
  drain(c);
  assert.equal(c.lastIndex, 2);
  assert.equal(c.termAt(2), 2);
  assert.equal(c.termAt(1), 1);
});

Deno.test("Raft §5.3: the leader's fast back-off finds the match point of a divergent follower", () => {
  const { sim, leader } = electedSim(3, 11);
  const follower = [1, 2, 3].find((x) => x !== leader)!;
  sim.isolate(follower);
  for (let i = 0; i < 30; i++) sim.propose(leader);
  sim.runUntil(() => false, 5);
  sim.heal();
  const used = sim.runUntil(() => sim.core(follower)!.commit === sim.core(leader)!.commit, 50);
  assert.notEqual(used, undefined);
  sim.checkAll();
});

Deno.test("Raft §5.4.1: a follower rejects a vote for a candidate with a less up-to-date log", () => {
  const c = newCore(1, [1, 2, 3], { checkQuorum: false });
  const ents = [1, 2].map((i) => ({
    index: i,
    term: 2,
    type: EntryType.Normal,
    data: enc.encode("x"),
  }));
  c.step(
    m({ type: MessageType.App, from: 2, to: 1, term: 2, index: 0, logTerm: 0, entries: ents }),
  );
  drain(c);
  // Lower last term: rejected even with a longer log.
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 5, index: 9, logTerm: 1 }));
  let resp = all(c).find((x) => x.type === MessageType.VoteResp)!;
  assert.equal(resp.reject, true);
  // Same last term, shorter log: rejected.
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 6, index: 1, logTerm: 2 }));
  resp = all(c).find((x) => x.type === MessageType.VoteResp)!;
  assert.equal(resp.reject, true);
  // At least as up to date: granted.
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 7, index: 2, logTerm: 2 }));
  resp = all(c).find((x) => x.type === MessageType.VoteResp)!;
  assert.equal(resp.reject, false);
});

Deno.test("Raft §5.4.2: a leader never commits an entry of an earlier term by counting replicas", () => {
  const c = newCore(1, [1, 2, 3], { preVote: false });
  // An entry from term 1 in our log.
  c.step(m({
    type: MessageType.App,
    from: 2,
    to: 1,
    term: 1,
    entries: [{ index: 1, term: 1, type: EntryType.Normal, data: enc.encode("old") }],
  }));
  drain(c);
  elect(c, 3); // Leader at a later term with a no-op at index 2.
  assert.equal(c.entry(2)?.term, c.term);
  // A majority holds index 1 (term 1) but not the current-term no-op: no commit.
  c.step(m({ type: MessageType.AppResp, from: 3, to: 1, term: c.term, index: 1 }));
  assert.equal(c.commit, 0);
  // Once the current-term entry is on a majority, both commit.
  c.step(m({ type: MessageType.AppResp, from: 3, to: 1, term: c.term, index: 2 }));
  assert.equal(c.commit, 2);
});

Deno.test("Raft §5.4.3: committed entries survive a leader crash and the next leader holds them", () => {
  const { sim, leader } = electedSim(5, 5);
  const indexes: number[] = [];
  for (let i = 0; i < 10; i++) indexes.push(sim.propose(leader)!);
  sim.runUntil(() => sim.core(leader)!.commit >= indexes[9]!, 50);
  sim.crash(leader);
  assert.notEqual(sim.runUntil(() => sim.leader() !== undefined, 200), undefined);
  const next = sim.core(sim.leader()!)!;
  for (const i of indexes) assert.ok(next.termAt(i) !== undefined || next.snapshot.index >= i);
  sim.restart(leader);
  sim.checkLiveness();
});

Deno.test("Raft §7: a follower behind the leader's compacted log receives InstallSnapshot", () => {
  const { sim, leader } = electedSim(3, 3);
  const lagging = [1, 2, 3].find((x) => x !== leader)!;
  sim.crash(lagging);
  for (let i = 0; i < 150; i++) {
    sim.propose(leader);
    sim.round();
  }
  assert.ok(sim.core(leader)!.snapshot.index > 0, "the leader compacted its log");
  sim.restart(lagging);
  const used = sim.runUntil(() => sim.core(lagging)!.commit >= sim.core(leader)!.commit, 100);
  assert.notEqual(used, undefined);
  assert.ok(sim.core(lagging)!.snapshot.index > 0, "the follower installed a snapshot");
  sim.checkAll();
});

Deno.test("Raft thesis §9.6: pre-vote keeps a partitioned node from bumping terms and disrupting the leader", () => {
  const { sim, leader } = electedSim(3, 9);
  const term = sim.core(leader)!.term;
  const loner = [1, 2, 3].find((x) => x !== leader)!;
  sim.isolate(loner);
  sim.runUntil(() => false, 100);
  assert.equal(sim.core(loner)!.term, term, "pre-vote failed, so no term bump");
  sim.heal();
  sim.runUntil(() => false, 30);
  assert.equal(sim.leader(), leader);
  assert.equal(sim.core(leader)!.term, term);
});

Deno.test("Raft thesis §6.2: check-quorum makes a leader cut off from a quorum step down", () => {
  const { sim, leader } = electedSim(3, 13);
  sim.isolate(leader);
  const used = sim.runUntil(() => sim.core(leader)!.role !== "leader", 25);
  assert.notEqual(used, undefined);
});

Deno.test("Raft thesis §4.2.3: a follower that heard from a leader within the timeout ignores votes", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1 }));
  drain(c);
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 2, index: 5, logTerm: 1 }));
  assert.equal(c.term, 1, "the vote request was ignored");
  assert.equal(all(c).length, 0);
  // A leadership transfer's forced vote passes.
  c.step(m({ type: MessageType.Vote, from: 3, to: 1, term: 2, index: 5, logTerm: 1, force: true }));
  assert.equal(c.term, 2);
  assert.equal(c.vote, 3);
});

Deno.test("Raft thesis §3.10: leadership transfer hands over to an up-to-date follower", () => {
  const { sim, leader } = electedSim(3, 17);
  sim.propose(leader);
  sim.runUntil(() => false, 5);
  const target = [1, 2, 3].find((x) => x !== leader)!;
  assert.equal(sim.transfer(leader, target), true);
  assert.equal(sim.core(leader)!.propose(enc.encode("x")).ok, false, "no proposals mid-transfer");
  const used = sim.runUntil(() => sim.leader() === target, 20);
  assert.notEqual(used, undefined);
  sim.checkLiveness();
});

Deno.test("Raft thesis §4.1: a membership change takes effect when appended, one at a time", () => {
  const { sim, leader } = electedSim(4, 21);
  sim.runUntil(() => false, 5);
  const core = sim.core(leader)!;
  const victim = [1, 2, 3, 4].find((x) => x !== leader)!;
  const first = core.proposeConfChange({ type: "removeNode", nodeId: victim });
  assert.ok(first.ok);
  assert.equal(core.conf.voters.includes(victim), false, "in force as soon as appended");
  const second = core.proposeConfChange({ type: "addLearner", nodeId: victim });
  assert.deepEqual(second, { ok: false, reason: "confChangePending", leader });
  sim.runUntil(() => core.commit >= first.index, 50);
  assert.equal(sim.confChange(leader, { type: "addLearner", nodeId: victim }), true);
  sim.checkLiveness();
  assert.deepEqual(sim.core(sim.leader()!)!.conf.learners, [victim]);
});

Deno.test("Raft: learners: a learner receives the log but neither votes nor counts for commit", () => {
  const c = newCore(1, [1, 2]);
  elect(c);
  drain(c);
  c.step(m({ type: MessageType.AppResp, from: 2, to: 1, term: c.term, index: 1 }));
  const cc = c.proposeConfChange({ type: "addLearner", nodeId: 3 });
  assert.ok(cc.ok);
  const out = all(c);
  assert.ok(out.some((x) => x.type === MessageType.App && x.to === 3), "learner gets appends");
  c.step(m({ type: MessageType.AppResp, from: 3, to: 1, term: c.term, index: cc.index }));
  assert.ok(c.commit < cc.index, "a learner's ack does not commit");
  c.step(m({ type: MessageType.AppResp, from: 2, to: 1, term: c.term, index: cc.index }));
  assert.equal(c.commit, cc.index);
  // A learner never campaigns.
  const l = newCore(3, [1, 2], {});
  for (let i = 0; i < 50; i++) l.tick();
  assert.equal(l.role, "follower");
});

Deno.test("Raft thesis §4.2.2: a leader removed from the configuration steps down once it commits", () => {
  const { sim, leader } = electedSim(3, 23);
  sim.runUntil(() => false, 5);
  assert.equal(sim.confChange(leader, { type: "removeNode", nodeId: leader }), true);
  const used = sim.runUntil(() => sim.core(leader)!.role !== "leader", 30);
  assert.notEqual(used, undefined);
  const rest = [1, 2, 3].filter((x) => x !== leader);
  assert.notEqual(sim.runUntil(() => rest.includes(sim.leader() ?? 0), 200), undefined);
});

Deno.test("Raft: election: a follower that forgets its crashed leader drops the lease and campaigns soon", () => {
  const c = newCore(1);
  c.step(m({ type: MessageType.Heartbeat, from: 2, to: 1, term: 1 }));
  drain(c);
  c.forgetLeader();
  assert.equal(c.leader, NONE);
  // No longer in the leader's lease: a (pre-)vote from another follower is considered.
  c.step(m({ type: MessageType.PreVote, from: 3, to: 1, term: 2, index: 0, logTerm: 0 }));
  const resp = all(c).find((x) => x.type === MessageType.PreVoteResp)!;
  assert.equal(resp.reject, false);
  let ticks = 0;
  while (c.role === "follower" && ticks < 20) {
    c.tick();
    ticks++;
  }
  assert.ok(ticks <= 5, `campaigned after ${ticks} ticks, expected at most electionTicks / 2`);
});
