/**
 * The HTTP listener (issue 14, part 1): /metrics counts a produce/consume run (records and
 * bytes in, bytes out, requests per API, partitions and leadership, and consumer lag in
 * records and seconds going to 0 as the group reads), /health answers while the process
 * serves, and /ready follows the node: 503 while it starts without a quorum, 200 once
 * registered and unfenced, 503 when cut off from the quorum (the other nodes killed), 200
 * again once they are back. A bad --http-addr is a usage error.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { TestCluster } from "../_helpers/cluster.ts";
import { freePort, nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { run } from "../_helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** Every sample of the exposition, as "name{labels}" → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The sum of the samples of `name` whose labels include `match`. */
function sum(samples: Map<string, number>, name: string, match = ""): number {
  let total = 0;
  for (const [k, v] of samples) {
    if ((k === name || k.startsWith(`${name}{`)) && k.includes(match)) total += v;
  }
  return total;
}

async function ready(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/ready`);
  return { status: r.status, body: await r.json() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | null>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => null);
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("http: /metrics counts a produce/consume run and the group's lag goes to 0", async () => {
  await using dir = await tempDir();
  const httpPort = freePort();
  const node = await NodeProcess.start({
    dataDir: nodeDir(dir.path),
    args: ["--http-addr", `127.0.0.1:${httpPort}`, "--group-initial-rebalance-delay-ms", "0"],
  });
  const kafka = new Kafka({ brokers: [node.bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer();
  try {
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/health`)).status, 200);
    assert.equal(
      await fetch(`http://127.0.0.1:${httpPort}/nope`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      }),
      404,
    );
    await waitFor("ready", async () => (await ready(httpPort)).status === 200 ? true : null);
    await admin.connect();
    await producer.connect();
    await admin.createTopics({ topics: [{ topic: "m", numPartitions: 3 }] });
    const value = "x".repeat(100);
    for (let i = 0; i < 10; i++) {
      await producer.send({
        topic: "m",
        messages: Array.from({ length: 100 }, (_, j) => ({ key: `${i}-${j}`, value })),
      });
    }
    let m = await scrape(httpPort);
    assert.equal(sum(m, "kafka_server_brokertopicmetrics_messagesin_total", 'topic="m"'), 1000);
    assert.ok(sum(m, "kafka_server_brokertopicmetrics_bytesin_total", 'topic="m"') > 100_000);
    assert.ok(sum(m, "kafka_network_requestmetrics_requests_total", 'request="Produce"') >= 10);
    assert.ok(
      sum(m, "kafka_network_requestmetrics_totaltimems_count", 'request="Produce"') >= 10,
    );
    assert.ok(sum(m, "kafka_server_replicamanager_leadercount") >= 3);
    assert.equal(sum(m, "kafka_controller_kafkacontroller_activecontrollercount"), 1);
    assert.ok(sum(m, "kafka_log_log_size", 'topic="m"') > 100_000);
    assert.ok(sum(m, "kafka_log_logflushstats_logflushrateandtimems_count") > 0, "fsync rounds");
    assert.ok(sum(m, "tidelog_raft_commit_latency_ms_count") > 0, "metadata proposals");

    // A group commits where it is, without reading: its lag is everything.
    await admin.setOffsets({
      groupId: "lagging",
      topic: "m",
      partitions: [0, 1, 2].map((partition) => ({ partition, offset: "0" })),
    });
    m = await scrape(httpPort);
    assert.equal(sum(m, "kafka_consumergroup_lag", 'group="lagging"'), 1000);
    assert.ok(sum(m, "kafka_consumergroup_lag_seconds", 'group="lagging"') >= 0);
    // The group reads everything: its lag goes to 0 and the bytes go out.
    const consumer = kafka.consumer({ groupId: "lagging" });
    await consumer.connect();
    let read = 0;
    await consumer.subscribe({ topic: "m" });
    await consumer.run({
      eachMessage: () => {
        read++;
        return Promise.resolve();
      },
    });
    await waitFor("the group to catch up", async () => {
      const s = await scrape(httpPort);
      return read >= 1000 && sum(s, "kafka_consumergroup_lag", 'group="lagging"') === 0 ? s : null;
    });
    await consumer.disconnect();
    m = await scrape(httpPort);
    assert.ok(sum(m, "kafka_server_brokertopicmetrics_bytesout_total", 'topic="m"') > 100_000);
    assert.equal(sum(m, "kafka_consumergroup_lag_seconds", 'group="lagging"'), 0);
  } finally {
    await producer.disconnect();
    await admin.disconnect();
    await node.stop();
  }
});

Deno.test("http: /ready through start-up without a quorum, service, and losing the quorum", async () => {
  await using cluster = await TestCluster.start({ size: 3, http: true });
  const port = (id: number) => cluster.node(id).httpPort!;
  await cluster.waitForBrokers(3);
  for (const id of [1, 2, 3]) {
    await waitFor(`node ${id} ready`, async () => (await ready(port(id))).status === 200 || null);
  }
  // Node 1 alone cannot reach the quorum: not ready, but alive.
  await cluster.kill(2);
  await cluster.kill(3);
  const cut = await waitFor("node 1 to lose the quorum", async () => {
    const r = await ready(port(1));
    return r.status === 503 ? r : null;
  });
  assert.match(String(cut.body.reason), /quorum|fenced/);
  assert.equal((await fetch(`http://127.0.0.1:${port(1)}/health`)).status, 200);
  // A node restarted while the quorum is still missing is not ready during its start-up.
  await cluster.kill(1);
  const n1 = cluster.node(1);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      MAIN,
      "serve",
      "--node-id",
      "1",
      "--kafka-addr",
      `127.0.0.1:${n1.kafkaPort}`,
      "--raft-addr",
      `127.0.0.1:${n1.raftPort}`,
      "--peers",
      cluster.peers,
      "--http-addr",
      `127.0.0.1:${port(1)}`,
      "--data-dir",
      n1.dataDir,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const starting = await waitFor("node 1's HTTP listener", async () => {
      const r = await ready(port(1));
      return r.status === 503 ? r : null;
    });
    assert.match(String(starting.body.reason), /starting|registered|fenced/);
    await cluster.restart(2);
    await cluster.restart(3);
    await waitFor("node 1 ready again", async () => (await ready(port(1))).status === 200 || null);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("http: a bad --http-addr is a usage error (exit 2, one line)", async () => {
  await using dir = await tempDir();
  const r = await run(
    Deno.execPath(),
    ["run", "--allow-all", MAIN, "serve", "--http-addr", "nowhere", "--data-dir", dir.path],
    { allowFailure: true },
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--http-addr: expected HOST:PORT/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});
