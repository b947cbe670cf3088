/**
 * Raft: real processes. Three drivers in separate processes on 127.0.0.1 with real TCP
 * and real files: election, replication, `kill -9` of the leader, re-election without
 * losing committed entries, and catch-up of the restarted node via snapshot.
 */
import assert from "node:assert/strict";
import { findLeader, freePorts, RaftProcess, waitFor } from "./_proc.ts";

Deno.test("Raft: real processes: election, kill -9 of the leader, restart and catch-up", async (t) => {
  const base = await Deno.makeTempDir({ prefix: "raft-proc-" });
  const ports = freePorts(3);
  const peers = ports.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(",");
  const procs = new Map<number, RaftProcess>();
  const spawn = (id: number) => {
    const p = new RaftProcess(id, peers, `${base}/node-${id}`, { snapshotEvery: 10 });
    procs.set(id, p);
    return p;
  };
  const live = () => [...procs.values()].filter((p) => !p.exited);
  try {
    for (const id of [1, 2, 3]) spawn(id);
    let leader = 0;
    await t.step("a leader is elected", async () => {
      leader = await waitFor("a leader", () => findLeader(live()), 20_000);
      assert.ok(leader >= 1 && leader <= 3);
    });

    const committed: string[] = [];
    const proposeAll = async (prefix: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const data = `${prefix}-${i}`;
        const r = await procs.get(leader)!.request({ op: "propose", data });
        assert.equal(r.ok, true, `proposal ${data} failed: ${JSON.stringify(r)}`);
        committed.push(data);
      }
    };
    const allHave = async (ids: number[]) => {
      for (const id of ids) {
        const v = await procs.get(id)!.values();
        if (v === undefined || v.length < committed.length) return undefined;
        assert.deepEqual(v.slice(0, committed.length), committed, `node ${id} diverges`);
      }
      return true;
    };

    await t.step("a follower refuses proposals and names the leader", async () => {
      const follower = [1, 2, 3].find((id) => id !== leader)!;
      await waitFor("the follower to know the leader", async () => {
        const st = await procs.get(follower)!.getStatus();
        return st?.leader === leader ? true : undefined;
      }, 20_000);
      const r = await procs.get(follower)!.request({ op: "propose", data: "nope" });
      assert.equal(r.ok, false);
      assert.equal(r.error, "NotLeaderError");
      assert.equal(r.leader, leader);
    });

    await t.step("proposals commit on all three", async () => {
      await proposeAll("a", 25);
      await waitFor("replication to all", () => allHave([1, 2, 3]), 20_000);
    });

    const old = leader;
    let oldLast = 0;
    await t.step("kill -9 of the leader: a new leader, no committed entry lost", async () => {
      oldLast = (await procs.get(old)!.getStatus())!.lastIndex;
      await procs.get(old)!.kill();
      leader = await waitFor("a new leader", async () => {
        const l = await findLeader(live());
        return l !== undefined && l !== old ? l : undefined;
      }, 20_000);
      const others = [1, 2, 3].filter((id) => id !== old);
      await waitFor("survivors hold every committed entry", () => allHave(others), 20_000);
      await proposeAll("b", 25);
      await waitFor("replication to survivors", () => allHave(others), 20_000);
    });

    await t.step("the restarted old leader catches up via snapshot", async () => {
      const p = spawn(old);
      await waitFor("old leader catches up", () => allHave([old]), 30_000);
      const s = await p.getStatus();
      assert.ok(s !== undefined);
      const ls = await procs.get(leader)!.getStatus();
      assert.ok(ls !== undefined && ls.snapshotIndex > oldLast, "the leader compacted past it");
      // Its log ended at oldLast and the leader no longer has the entries after it, so
      // it can only have caught up through InstallSnapshot.
      assert.ok(s.snapshotIndex > oldLast, "the restarted node installed a snapshot");
    });
  } finally {
    await Promise.all([...procs.values()].map((p) => p.kill()));
    await Deno.remove(base, { recursive: true });
  }
});
