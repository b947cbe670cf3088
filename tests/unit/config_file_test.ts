/**
 * `--config FILE`: Kafka's server.properties read as flags (listeners, log.dirs, the quorum,
 * broker defaults of topic configs), flags and TIDELOG_* winning over the file, unused keys
 * reported, and a bad value failing with the file, the key and the reason.
 */
import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "../../lib/cli.ts";
import { mapServerProperties, parseProperties } from "../../lib/config_file.ts";

const FILE = `
# A KRaft combined node, as Kafka's config/server.properties has it
process.roles=broker,controller
node.id=3
controller.quorum.voters=1@127.0.0.1:9193,2@127.0.0.1:9194,3@127.0.0.1:9195
listeners=PLAINTEXT://:19092,CONTROLLER://127.0.0.1:9195
advertised.listeners=PLAINTEXT://kafka-3.example:19092
controller.listener.names=CONTROLLER
log.dirs=/var/lib/tidelog,/unused/second
num.partitions = 6
default.replication.factor: 3
auto.create.topics.enable false
log.retention.hours=24
log.segment.bytes=10485760
min.insync.replicas=2
num.network.threads=3
leader.imbalance.check.interval.seconds=60
transaction.max.timeout.ms=600000
a.long.value=first \\
   second
`;

function serve(args: string[], file = FILE, env: Record<string, string> = {}) {
  const cmd = parseCommandLine(
    ["serve", "--config", "server.properties", ...args],
    (n) => env[n],
    () => file,
  );
  assert.ok(cmd.kind === "serve");
  return cmd.options;
}

Deno.test("parseProperties() reads Java properties: separators, comments, continuations", () => {
  const p = parseProperties(FILE);
  assert.equal(p.get("num.partitions"), "6");
  assert.equal(p.get("default.replication.factor"), "3");
  assert.equal(p.get("auto.create.topics.enable"), "false");
  assert.equal(p.get("a.long.value"), "first second");
  assert.equal(p.has("# A KRaft combined node"), false);
});

Deno.test("a server.properties file sets the flags it maps to", () => {
  const o = serve([]);
  assert.equal(o.nodeId, 3);
  assert.deepEqual([o.kafkaHost, o.kafkaPort], ["0.0.0.0", 19092]);
  assert.deepEqual([o.advertisedHost, o.advertisedPort], ["kafka-3.example", 19092]);
  assert.equal(o.raftListenAddr, "127.0.0.1:9195");
  assert.deepEqual([...o.voters.keys()], [1, 2, 3]);
  assert.equal(o.dataDir, "/var/lib/tidelog");
  assert.equal(o.numPartitions, 6);
  assert.equal(o.defaultReplicationFactor, 3);
  assert.equal(o.autoCreateTopics, false);
  assert.equal(o.leaderImbalanceCheckIntervalMs, 60_000);
  assert.equal(o.transactionMaxTimeoutMs, 600_000);
  assert.deepEqual(o.staticBrokerConfigs, {
    "log.retention.ms": "86400000",
    "log.segment.bytes": "10485760",
    "min.insync.replicas": "2",
  });
  assert.deepEqual(o.unusedConfigKeys, [
    "process.roles",
    "controller.listener.names",
    "num.network.threads",
    "a.long.value",
  ]);
});

Deno.test("flags and TIDELOG_* variables win over the file", () => {
  const o = serve(["--num-partitions", "2"], FILE, { TIDELOG_DATA_DIR: "/elsewhere" });
  assert.equal(o.numPartitions, 2);
  assert.equal(o.dataDir, "/elsewhere");
});

Deno.test("a bad value in the file names the file and the key", () => {
  const bad = (text: string, message: RegExp) =>
    assert.throws(
      () => serve([], text),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  bad("num.partitions=many", /server\.properties: num\.partitions: expected an integer/);
  bad("listeners=9092", /server\.properties: listeners: expected NAME:\/\/HOST:PORT/);
  bad(
    "min.insync.replicas=0",
    /server\.properties: min\.insync\.replicas: .*min\.insync\.replicas/,
  );
  bad(
    "unclean.leader.election.enable=maybe",
    /server\.properties: unclean\.leader\.election\.enable/,
  );
  assert.throws(
    () => parseCommandLine(["serve", "--config", "/no/such/file"], () => undefined),
    (e: unknown) =>
      e instanceof UsageError && /--config: cannot read \/no\/such\/file/.test(e.message),
  );
});

Deno.test("mapServerProperties() lists keys Tidelog does not use", () => {
  const m = mapServerProperties(parseProperties("socket.send.buffer.bytes=102400\nnode.id=1"));
  assert.deepEqual(m.unused, ["socket.send.buffer.bytes"]);
});

Deno.test("--log-format is text or json", () => {
  const ok = parseCommandLine(["serve", "--log-format", "json"], () => undefined);
  assert.ok(ok.kind === "serve" && ok.options.logFormat === "json");
  assert.throws(
    () => parseCommandLine(["serve", "--log-format", "xml"], () => undefined),
    UsageError,
  );
});
