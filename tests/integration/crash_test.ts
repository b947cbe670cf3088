/**
 * kill -9 during a produce loop: every record the producer saw acknowledged (acks=all,
 * default flush policy: acknowledged means fsynced) is there after restart, once, in
 * order (I1/I2 on one node); the torn tail, if any, is truncated on recovery (I6).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { HAVE_CONFLUENT, HAVE_KCAT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { createTopic } from "./_records.ts";

const PRODUCER = fileURLToPath(new URL("./clients/acked_producer.py", import.meta.url));

Deno.test({
  name: "crash: kill -9 during an acks=all produce loop loses no acknowledged record",
  ...needs("confluent-kafka", HAVE_CONFLUENT && HAVE_KCAT),
  async fn() {
    await using dir = await tempDir();
    let node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    try {
      await createTopic(node.port, "crash", 2);
      const producer = new Deno.Command(PYTHON, {
        args: [PRODUCER, node.bootstrap, "crash"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const acks: { key: number; partition: number; offset: number }[] = [];
      const reading = (async () => {
        let buf = "";
        for await (const chunk of producer.stdout.pipeThrough(new TextDecoderStream())) {
          buf += chunk;
          const lines = buf.split("\n");
          buf = lines.pop()!;
          for (const l of lines) {
            const [, key, partition, offset] = l.split(" ");
            acks.push({ key: Number(key), partition: Number(partition), offset: Number(offset) });
          }
        }
      })();
      const deadline = Date.now() + 30_000;
      while (acks.length < 20_000 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(acks.length >= 1000, `producer made progress (${acks.length} acks)`);
      await node.kill("SIGKILL");
      const status = await producer.status;
      await reading;
      assert.ok(status.code === 0 || status.code === 1, `producer exited (${status.code})`);

      node = await NodeProcess.start({ dataDir: node.dataDir, port: node.port });
      const out = await run("kcat", [
        "-C",
        "-b",
        node.bootstrap,
        "-t",
        "crash",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%p %o %k\\n",
      ]);
      const stored = new Map<string, number>(); // "partition offset" → key
      const keys = new Set<number>();
      for (const line of out.stdout.split("\n").filter((l) => l)) {
        const [p, o, k] = line.split(" ");
        assert.ok(!keys.has(Number(k)), `key ${k} stored once`);
        keys.add(Number(k));
        stored.set(`${p} ${o}`, Number(k));
      }
      for (const a of acks) {
        assert.equal(
          stored.get(`${a.partition} ${a.offset}`),
          a.key,
          `acknowledged record ${a.key} survived`,
        );
      }
      // deno-lint-ignore no-console -- the figure is the point of this line
      console.error(`crash test: ${acks.length} acknowledged, ${keys.size} stored after kill -9`);
    } finally {
      await node.kill();
    }
  },
});
