/**
 * Raft: transcript tests (etcd's data-driven style). Each `testdata/*.txt` file is a
 * script of commands (`> command`) each followed by the trace it must produce: one line
 * per delivered message (heartbeats left out) and per core state change. Run with
 * `UPDATE=1` to rewrite the expected output after an intended behaviour change.
 *
 * Commands: `new <nodes> <seed>`, `tick [n]`, `propose <id>`, `isolate <id>`, `heal`,
 * `crash <id>`, `restart <id>`, `transfer <from> <to>`, `conf <id> <addVoter|addLearner|
 * removeNode> <node>`, `status`.
 */
import assert from "node:assert/strict";
import { SimCluster, swarmConfig } from "./_sim/sim_cluster.ts";

const DIR = new URL("./testdata/", import.meta.url);

function run(script: string): string {
  const out: string[] = [];
  let sim: SimCluster | undefined;
  let seen = 0;
  const flush = () => {
    if (sim === undefined) return;
    const lines = sim.trace.slice(seen).filter((l) => !/deliver Heartbeat/.test(l));
    seen = sim.trace.length;
    out.push(...lines);
  };
  for (const raw of script.split("\n")) {
    if (!raw.startsWith("> ")) {
      if (raw.startsWith("#")) out.push(raw);
      continue;
    }
    out.push(raw);
    const [cmd, ...args] = raw.slice(2).trim().split(/\s+/);
    const n = args.map(Number);
    switch (cmd) {
      case "new": {
        const nodes = n[0] ?? 3;
        const seed = n[1] ?? 1;
        sim = new SimCluster(seed, {
          ...swarmConfig(seed),
          nodeCount: nodes,
          initialVoters: nodes,
        });
        sim.faults = false;
        seen = sim.trace.length;
        break;
      }
      case "tick":
        for (let i = 0; i < (n[0] ?? 1); i++) sim!.round();
        break;
      case "propose":
        sim!.propose(n[0]!);
        break;
      case "isolate":
        sim!.isolate(n[0]!);
        break;
      case "heal":
        sim!.heal();
        break;
      case "crash":
        sim!.crash(n[0]!);
        break;
      case "restart":
        sim!.restart(n[0]!);
        break;
      case "transfer":
        sim!.transfer(n[0]!, n[1]!);
        break;
      case "conf":
        sim!.confChange(n[0]!, {
          type: args[1] as "addVoter" | "addLearner" | "removeNode",
          nodeId: n[2]!,
        });
        break;
      case "status":
        flush();
        for (const node of sim!.nodes.values()) {
          const c = node.core;
          out.push(
            c === undefined
              ? `${node.id}: down`
              : `${c.id}: ${c.role} term=${c.term} lead=${c.leader} commit=${c.commit} ` +
                `last=${c.lastIndex} voters=${c.conf.voters.join(",")} learners=${
                  c.conf.learners.join(",")
                }`,
          );
        }
        break;
      default:
        throw new SyntaxError(`Unknown transcript command: ${raw}`);
    }
    flush();
    sim?.checkAll();
  }
  return out.join("\n") + "\n";
}

const files: string[] = [];
for await (const e of Deno.readDir(DIR)) if (e.name.endsWith(".txt")) files.push(e.name);
files.sort();

Deno.test("Raft: transcripts", async (t) => {
  for (const name of files) {
    await t.step(name, async () => {
      const url = new URL(name, DIR);
      const expected = await Deno.readTextFile(url);
      const actual = run(expected);
      if (Deno.env.get("UPDATE") === "1") await Deno.writeTextFile(url, actual);
      else assert.equal(actual, expected, `transcript ${name} differs (UPDATE=1 rewrites)`);
    });
  }
});
