/**
 * Interop with confluent-kafka-python (librdkafka): admin topic creation, 10,000 keyed
 * records with headers and timestamps at acks=1 and acks=all consumed back exactly
 * (values, headers, timestamps, offsets), and offsets_for_times.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const SCRIPT = fileURLToPath(new URL("./clients/confluent_roundtrip.py", import.meta.url));

Deno.test({
  name:
    "confluent-kafka: create topic, 10,000 records at acks=1 and acks=all, exact consume, offsets_for_times",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    await using dir = await tempDir();
    const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    try {
      const out = await run(PYTHON, [SCRIPT, node.bootstrap, "ck-3"], { timeoutMs: 120_000 });
      const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      assert.deepEqual(summary, {
        acked: 10_000,
        errors: [],
        consumed: 10_000,
        mismatches: 0,
        timestamp_lookup_ok: true,
        partitions: 3,
      });
    } finally {
      await node.kill();
    }
  },
});
