/**
 * `tidelog serve --config server.properties` on a real node (issue 14 §3): the file's
 * settings take effect (partitions of auto-created topics, broker defaults of topic configs,
 * shown by DescribeConfigs as static broker configs), flags win over it, unused keys are
 * logged once, `--log-format json` writes JSON lines, and a bad value stops start-up with
 * the key and the reason (exit 2).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { run } from "../_helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const STATIC_BROKER_CONFIG = 4;

Deno.test("config file: server.properties settings take effect; JSON log lines", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/server.properties`;
  await Deno.writeTextFile(
    file,
    [
      "process.roles=broker,controller",
      "num.partitions=4",
      "log.retention.ms=3600000",
      "min.insync.replicas=1",
      "auto.create.topics.enable=true",
      "num.io.threads=8",
    ].join("\n"),
  );
  const node = await NodeProcess.start({
    dataDir: nodeDir(dir.path),
    args: ["--config", file, "--log-format", "json"],
  });
  try {
    const conn = await KafkaConnection.connect("127.0.0.1", node.port);
    try {
      const md = await conn.request(ApiKey.Metadata, 9, {
        topics: [{ name: "auto", topicId: undefined }],
        allowAutoTopicCreation: true,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      });
      assert.equal(md.topics[0]!.errorCode, ErrorCode.NONE);
      assert.equal(md.topics[0]!.partitions.length, 4, "num.partitions from the file");
      const described = await conn.request(ApiKey.DescribeConfigs, 4, {
        resources: [{ resourceType: 2, resourceName: "auto", configurationKeys: ["retention.ms"] }],
        includeSynonyms: true,
        includeDocumentation: false,
      });
      const retention = described.results[0]!.configs[0]!;
      assert.equal(retention.value, "3600000");
      assert.equal(retention.configSource, STATIC_BROKER_CONFIG);
    } finally {
      await conn.close();
    }
  } finally {
    await node.stop();
  }
  const lines = (await node.output()).trim().split("\n");
  const records = lines.map((l) => JSON.parse(l) as { level: string; message: string });
  assert.ok(records.some((r) => /serving Kafka/.test(r.message)));
  const unused = records.filter((r) => /config file Tidelog does not use/.test(r.message));
  assert.equal(unused.length, 1);
  assert.match(unused[0]!.message, /process\.roles, num\.io\.threads/);
});

Deno.test("config file: a bad value stops start-up with the key and the reason (exit 2)", async () => {
  await using dir = await tempDir();
  const file = `${dir.path}/server.properties`;
  await Deno.writeTextFile(file, "node.id=1\nlog.segment.bytes=ten\n");
  const r = await run(
    Deno.execPath(),
    ["run", "--allow-all", MAIN, "serve", "--config", file, "--data-dir", dir.path],
    { allowFailure: true },
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /server\.properties: log\.segment\.bytes: /);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});
