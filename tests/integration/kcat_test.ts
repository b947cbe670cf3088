/**
 * Interop with librdkafka through kcat: metadata, produce with keys and headers at
 * acks=1 and acks=all, byte-exact consumption, every compression codec, ListOffsets by
 * timestamp, and a restart that keeps everything.
 */
import assert from "node:assert/strict";
import { HAVE_KCAT, needs, run } from "../_helpers/clients.ts";
import { nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { assertExactlyOnceInOrder, type Consumed, createTopic, testRecord } from "./_records.ts";

const FORMAT = "%p\\t%o\\t%k\\t%s\\t%h\\n";

function parseConsumed(out: string): Consumed[] {
  return out.split("\n").filter((l) => l.length > 0).map((line) => {
    const [p, o, key, value, headers] = line.split("\t");
    return {
      partition: Number(p),
      offset: Number(o),
      key: key!,
      value: value!,
      headers: headers ?? "",
    };
  });
}

async function consumeAll(bootstrap: string, topic: string): Promise<Consumed[]> {
  const out = await run("kcat", [
    "-C",
    "-b",
    bootstrap,
    "-t",
    topic,
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    FORMAT,
  ]);
  return parseConsumed(out.stdout);
}

async function produce(
  bootstrap: string,
  topic: string,
  records: { key: string; value: string }[],
  args: string[],
) {
  const input = records.map((r) => `${r.key}\t${r.value}`).join("\n") + "\n";
  await run("kcat", ["-P", "-b", bootstrap, "-t", topic, "-K", "\t", ...args], { stdin: input });
}

Deno.test({
  name:
    "kcat: metadata, keyed produce with headers, byte-exact consume, codecs, timestamps, restart",
  ...needs("kcat", HAVE_KCAT),
  async fn(t) {
    await using dir = await tempDir();
    let node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    try {
      await t.step("kcat -L lists the broker", async () => {
        const out = await run("kcat", ["-L", "-b", node.bootstrap, "-J"]);
        const md = JSON.parse(out.stdout);
        assert.equal(md.brokers.length, 1);
        assert.equal(md.brokers[0].id, 1);
        assert.equal(md.brokers[0].name, node.bootstrap);
      });

      const records = Array.from({ length: 10_000 }, (_, i) => testRecord(i, "kcat"));
      await createTopic(node.port, "kcat-3", 3);

      await t.step(
        "10,000 records with keys and headers at acks=1 then acks=all, consumed byte-exact",
        async () => {
          await produce(node.bootstrap, "kcat-3", records.slice(0, 5000), [
            "-X",
            "acks=1",
            "-H",
            "source=kcat",
            "-H",
            "n=1",
          ]);
          await produce(node.bootstrap, "kcat-3", records.slice(5000), [
            "-X",
            "acks=all",
            "-H",
            "source=kcat",
            "-H",
            "n=1",
          ]);
          const consumed = await consumeAll(node.bootstrap, "kcat-3");
          assertExactlyOnceInOrder(consumed, records);
          assert.ok(consumed.every((c) => c.headers === "source=kcat,n=1"), "headers round-trip");
          assert.equal(
            new Set(consumed.map((c) => c.partition)).size,
            3,
            "keys spread over 3 partitions",
          );
        },
      );

      await t.step("every compression codec passes through", async () => {
        for (const codec of ["gzip", "snappy", "lz4", "zstd"]) {
          const topic = `kcat-${codec}`;
          const batch = records.slice(0, 2000);
          await produce(node.bootstrap, topic, batch, ["-z", codec, "-X", "acks=all"]);
          assertExactlyOnceInOrder(await consumeAll(node.bootstrap, topic), batch);
        }
      });

      await t.step("ListOffsets by timestamp finds the first record at or after it", async () => {
        await createTopic(node.port, "kcat-time", 1);
        await produce(node.bootstrap, "kcat-time", records.slice(0, 100), ["-X", "acks=all"]);
        await new Promise((r) => setTimeout(r, 50));
        const cut = Date.now();
        await new Promise((r) => setTimeout(r, 50));
        await produce(node.bootstrap, "kcat-time", records.slice(100, 150), ["-X", "acks=all"]);
        const out = await run("kcat", ["-Q", "-b", node.bootstrap, "-t", `kcat-time:0:${cut}`]);
        assert.match(out.stdout, /kcat-time \[0\] offset 100\b/);
        const later = await run("kcat", [
          "-Q",
          "-b",
          node.bootstrap,
          "-t",
          `kcat-time:0:${Date.now() + 60_000}`,
        ]);
        assert.match(later.stdout, /kcat-time \[0\] offset -1\b/);
      });

      await t.step("a restart keeps every record", async () => {
        assert.equal((await node.stop()).code, 0);
        node = await NodeProcess.start({ dataDir: node.dataDir, port: node.port });
        assertExactlyOnceInOrder(await consumeAll(node.bootstrap, "kcat-3"), records);
        assertExactlyOnceInOrder(
          await consumeAll(node.bootstrap, "kcat-zstd"),
          records.slice(0, 2000),
        );
      });
    } finally {
      await node.kill();
    }
  },
});
