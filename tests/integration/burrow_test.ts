/**
 * Burrow (Debian's 1.2.1, with Debian's ZooKeeper for its own coordination) monitors a
 * consumer group on Tidelog as it does on Kafka: it reads the group's commits straight
 * from `__consumer_offsets` (Kafka's record layouts), asks the brokers for the partitions'
 * end offsets, and its HTTP API reports the group's lag.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { BURROW, HAVE_BURROW, needs, ZOOKEEPER_SERVER } from "../_helpers/clients.ts";
import { freePort, nodeDir, NodeProcess, tempDir, waitForPort } from "../_helpers/node_process.ts";

Deno.test({
  name: "Burrow reads a group's commits from __consumer_offsets and reports its lag",
  ...needs("burrow and zookeeper", HAVE_BURROW),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using dir = await tempDir();
    const zkPort = freePort();
    const httpPort = freePort();
    const zkDir = join(dir.path, "zookeeper");
    const burrowDir = join(dir.path, "burrow");
    await Deno.mkdir(join(zkDir, "data"), { recursive: true });
    await Deno.mkdir(burrowDir, { recursive: true });
    await Deno.writeTextFile(
      join(zkDir, "zoo.cfg"),
      `tickTime=2000\ndataDir=${zkDir}/data\nclientPort=${zkPort}\nadmin.enableServer=false\n`,
    );
    const zk = new Deno.Command(ZOOKEEPER_SERVER, {
      args: ["start-foreground", join(zkDir, "zoo.cfg")],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    let burrow: Deno.ChildProcess | null = null;
    try {
      await waitForPort(zkPort, 30_000);
      const kafka = new Kafka({ brokers: [node.bootstrap], logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      const producer = kafka.producer();
      await admin.connect();
      await producer.connect();
      await admin.createTopics({ topics: [{ topic: "burrow-t", numPartitions: 1 }] });
      await producer.send({
        topic: "burrow-t",
        acks: -1,
        messages: Array.from({ length: 100 }, (_, i) => ({ value: `v${i}` })),
      });
      await admin.setOffsets({
        groupId: "burrow-group",
        topic: "burrow-t",
        partitions: [{ partition: 0, offset: "40" }],
      });
      await producer.disconnect();
      await admin.disconnect();

      await Deno.writeTextFile(
        join(burrowDir, "burrow.toml"),
        `[general]
pidfile="${burrowDir}/burrow.pid"
[logging]
filename="${burrowDir}/burrow.log"
level="info"
[zookeeper]
servers=[ "127.0.0.1:${zkPort}" ]
timeout=6
root-path="/burrow"
[client-profile.tidelog]
client-id="burrow-test"
kafka-version="2.0.0"
[cluster.local]
class-name="kafka"
servers=[ "${node.bootstrap}" ]
client-profile="tidelog"
topic-refresh=5
offset-refresh=2
[consumer.local]
class-name="kafka"
cluster="local"
servers=[ "${node.bootstrap}" ]
client-profile="tidelog"
[httpserver.default]
address="127.0.0.1:${httpPort}"
[storage.default]
class-name="inmemory"
workers=2
intervals=10
expire-group=604800
min-distance=1
`,
      );
      burrow = new Deno.Command(BURROW, {
        args: ["-config-dir", burrowDir],
        cwd: burrowDir,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const url = `http://127.0.0.1:${httpPort}/v3/kafka/local/consumer/burrow-group/lag`;
      const deadline = Date.now() + 60_000;
      let last: unknown = null;
      for (;;) {
        try {
          const res = await fetch(url);
          last = await res.json();
          const status =
            (last as { status?: { totallag?: number; partitions?: { current_lag: number }[] } })
              .status;
          if (status?.totallag === 60) {
            assert.equal(status.partitions?.[0]?.current_lag, 60);
            break;
          }
        } catch (err) {
          last = String(err);
        }
        if (Date.now() > deadline) {
          const log = await Deno.readTextFile(join(burrowDir, "burrow.log")).catch(() => "");
          assert.fail(`Burrow reported no lag of 60: ${JSON.stringify(last)}\n${log.slice(-3000)}`);
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      try {
        burrow?.kill("SIGKILL");
        await burrow?.status;
      } catch { /* gone */ }
      try {
        zk.kill("SIGKILL");
        await zk.status;
      } catch { /* gone */ }
      await node.kill();
    }
  },
});
