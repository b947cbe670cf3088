/**
 * Interop with kafka-python 2.0 (pure-Python client, classic protocol versions):
 * admin topic creation, keyed produce with headers at acks=all, a consumer group that
 * commits, and a new consumer resuming from the committed offsets.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HAVE_KAFKA_PYTHON, needs, PYTHON, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";

const SCRIPT = fileURLToPath(new URL("./clients/kafka_python_roundtrip.py", import.meta.url));

Deno.test({
  name: "kafka-python: admin, acks=all produce with headers, group consume with commits, resume",
  ...needs("kafka-python", HAVE_KAFKA_PYTHON),
  async fn() {
    await using dir = await tempDir();
    const node = await NodeProcess.start({
      dataDir: nodeDir(dir.path),
      args: ["--group-initial-rebalance-delay-ms", "100", "--group-min-session-timeout-ms", "1000"],
    });
    try {
      const out = await run(PYTHON, [SCRIPT, node.bootstrap, "kp-3", "kp-group"], {
        timeoutMs: 120_000,
      });
      const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
      assert.deepEqual(summary, {
        acked: 3100,
        first: 3000,
        first_dups: 0,
        second_keys: [3000, 3099],
        second: 100,
        second_old: 0,
        bad: 0,
      });
    } finally {
      await node.kill();
    }
  },
});
