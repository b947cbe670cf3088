/**
 * The multi-process test harness (`tests/_helpers/cluster.ts`), `tidelog status` and
 * `cluster.sh`'s command-line checks. `cluster.sh` itself runs on fixed ports
 * (9092-9094), so it is not started here.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { runStatus } from "../../lib/status.ts";
import { CreateTopicError, TestCluster } from "../_helpers/cluster.ts";
import { freePort } from "../_helpers/node_process.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const CLUSTER_SH = fileURLToPath(new URL("../../cluster.sh", import.meta.url));

/** Runs `tidelog status --addrs ...` as a process; its exit code and stdout lines. */
async function statusCommand(addrs: string): Promise<{ code: number; lines: string[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, "status", "--addrs", addrs],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const lines = text.split("\n").filter((l) => l !== "");
  if (out.code > 1) {
    throw new Error(`status exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return { code: out.code, lines };
}

/** The DescribeQuorum role column of a status line ("leader", "follower", ...). */
function roleOf(line: string): string {
  return line.split(/\s{2,}/)[3] ?? "";
}

Deno.test("runStatus: every node down prints one line each and returns 1", async () => {
  const ports = [freePort(), freePort()];
  const lines: string[] = [];
  const code = await runStatus(
    { addrs: ports.map((port) => ({ host: "127.0.0.1", port })) },
    { write: (l) => lines.push(l) },
  );
  assert.equal(code, 1);
  assert.equal(lines.length, 2);
  for (const [i, line] of lines.entries()) {
    assert.match(
      line,
      new RegExp(`^node \\?  127\\.0\\.0\\.1:${ports[i]}  down  \\(connection refused\\)$`),
    );
  }
});

Deno.test("cluster.sh: bad usage prints one line and exits 2", async (t) => {
  for (
    const args of [[], ["bogus"], ["kill"], ["kill", "4"], ["logs", "1", "-n"], ["start", "x"]]
  ) {
    await t.step(args.join(" ") || "(no command)", async () => {
      const out = await new Deno.Command("bash", {
        args: [CLUSTER_SH, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        // Never touch the repository's ./data from a test.
        env: { TIDELOG_CLUSTER_DIR: "/nonexistent/tidelog-test" },
      }).output();
      assert.equal(out.code, 2);
      const err = new TextDecoder().decode(out.stderr).trim().split("\n");
      assert.equal(err.length, 1);
      assert.match(err[0]!, /^usage: /);
    });
  }
});

Deno.test("TestCluster: one node: metadata, createTopic, kill, restart, output", async () => {
  await using cluster = await TestCluster.start({ size: 1 });
  assert.equal(cluster.nodes.length, 1);
  assert.equal(cluster.bootstrap(), `127.0.0.1:${cluster.node(1).kafkaPort}`);
  assert.throws(() => cluster.node(2), RangeError);
  await cluster.waitForBrokers(1);
  assert.equal(await cluster.controllerId(), 1);
  await cluster.createTopic("one", 2, 1, { "retention.ms": "60000" });
  const p = await cluster.leaderOf("one", 1);
  assert.deepEqual(p.replicas, [1]);
  assert.equal(p.leader, 1);
  await assert.rejects(cluster.createTopic("one", 2, 1), CreateTopicError);
  await assert.rejects(cluster.output(1), /still running/);

  await cluster.kill(1);
  assert.equal(cluster.node(1).process, null);
  assert.equal(cluster.bootstrap(), "");
  assert.match(await cluster.output(1), /serving Kafka/);
  await cluster.restart(1);
  const md = await cluster.metadata(1, null);
  assert.deepEqual(md.topics.map((t) => t.name).filter((n) => !n?.startsWith("__")), ["one"]);
  await assert.rejects(
    cluster.waitFor("never", () => Promise.resolve(false), 200),
    /Timed out waiting for never/,
  );
});

Deno.test("TestCluster: three nodes elect one leader; tidelog status shows it; kill and restart", async () => {
  await using cluster = await TestCluster.start();
  await cluster.waitForBrokers(3);
  const controller = await cluster.controllerId();
  assert.ok([1, 2, 3].includes(controller));

  // DescribeQuorum from every node names the same leader and all three voters.
  for (const n of cluster.nodes) {
    const conn = await cluster.connect(n.id);
    const q = await conn.request(ApiKey.DescribeQuorum, 2, {
      topics: [{ topicName: "__cluster_metadata", partitions: [{ partitionIndex: 0 }] }],
    });
    await conn.close();
    const part = q.topics[0]!.partitions[0]!;
    assert.equal(part.errorCode, ErrorCode.NONE);
    assert.equal(part.leaderId, controller);
    assert.deepEqual(part.currentVoters.map((v) => v.replicaId), [1, 2, 3]);
    assert.deepEqual(q.nodes.map((x) => x.nodeId), [1, 2, 3]);
  }

  const addrs = cluster.bootstrap();
  let status = await statusCommand(addrs);
  assert.equal(status.code, 0);
  assert.equal(status.lines.length, 3, status.lines.join("\n"));
  status.lines.forEach((line, i) => {
    assert.match(line, new RegExp(`^node ${i + 1}  127\\.0\\.0\\.1:\\d+  up  `));
    assert.match(line, new RegExp(`controller ${controller}  broker unfenced`));
  });
  assert.deepEqual(
    status.lines.map(roleOf).sort(),
    ["follower", "follower", "leader"],
    status.lines.join("\n"),
  );
  assert.equal(roleOf(status.lines[controller - 1]!), "leader");

  await cluster.createTopic("harness", 3, 3);
  const before = await cluster.leaderOf("harness", 0);
  assert.deepEqual([...before.replicas].sort(), [1, 2, 3]);

  // Crash a node: the others fence it, status shows it down, its partitions move.
  const victim = before.leader;
  await cluster.kill(victim);
  await cluster.waitForBrokers(2);
  const survivor = cluster.nodes.find((n) => n.process !== null)!.id;
  await cluster.waitFor("partition 0 to get a new leader", async () => {
    const p = await cluster.leaderOf("harness", 0, survivor);
    return p.leader >= 0 && p.leader !== victim;
  });
  status = await statusCommand(addrs);
  assert.equal(status.code, 0);
  assert.match(status.lines[victim - 1]!, /^node \d {2}\S+\s+down {2}\(connection refused\)$/);
  assert.equal(status.lines.filter((l) => roleOf(l) === "leader").length, 1);

  await cluster.restart(victim);
  await cluster.waitForBrokers(3);
  await cluster.waitFor("the restarted node back in the ISR", async () => {
    const p = await cluster.leaderOf("harness", 0);
    return p.isr.includes(victim);
  });

  // A paused node does not answer: status gives up on it within its timeout.
  cluster.pause(victim);
  const lines: string[] = [];
  const code = await runStatus(
    { addrs: cluster.nodes.map((n) => ({ host: "127.0.0.1", port: n.kafkaPort })) },
    { write: (l) => lines.push(l), timeoutMs: 500 },
  );
  cluster.resume(victim);
  assert.equal(code, 0);
  assert.match(lines[victim - 1]!, /down {2}\(no answer in 500 ms\)$/);

  await cluster.stop(victim);
  assert.equal(cluster.node(victim).process, null);
});
