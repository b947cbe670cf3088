/**
 * Kafka Connect on Tidelog (issue 12): a distributed worker (`connect-runtime` 4.1 from
 * Maven) starts against Tidelog, creating and checking its compacted internal topics
 * (configs, offsets, status; Connect refuses to run on topics that are not compacted),
 * and a FileStream source -> topic -> FileStream sink round trip copies a file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { freePort, nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { javaClasspath, needsJava } from "../_helpers/java.ts";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey } from "../../lib/protocol/mod.ts";

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what} (${last})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

Deno.test({
  name:
    "Kafka Connect: a distributed worker on compacted internal topics copies a file through Tidelog",
  ...needsJava(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using dir = await tempDir();
    const node = await NodeProcess.start({ dataDir: nodeDir(dir.path) });
    const restPort = freePort();
    const work = join(dir.path, "connect");
    await Deno.mkdir(work, { recursive: true });
    await Deno.writeTextFile(
      join(work, "worker.properties"),
      [
        `bootstrap.servers=${node.bootstrap}`,
        "group.id=tidelog-connect",
        "key.converter=org.apache.kafka.connect.storage.StringConverter",
        "value.converter=org.apache.kafka.connect.storage.StringConverter",
        "config.storage.topic=connect-configs",
        "offset.storage.topic=connect-offsets",
        "status.storage.topic=connect-status",
        "config.storage.replication.factor=1",
        "offset.storage.replication.factor=1",
        "status.storage.replication.factor=1",
        `listeners=http://127.0.0.1:${restPort}`,
        "offset.flush.interval.ms=1000",
        "",
      ].join("\n"),
    );
    const input = join(work, "input.txt");
    const output = join(work, "output.txt");
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i}: ${"payload ".repeat(i % 5)}`);
    await Deno.writeTextFile(input, lines.slice(0, 25).join("\n") + "\n");
    const logFile = await Deno.open(join(work, "connect.log"), { write: true, create: true });
    const worker = new Deno.Command("java", {
      args: [
        "-Xmx512m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-cp",
        await javaClasspath(),
        "org.apache.kafka.connect.cli.ConnectDistributed",
        join(work, "worker.properties"),
      ],
      cwd: work,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const logs = Promise.all([
      worker.stdout.pipeTo(logFile.writable, { preventClose: true }),
      worker.stderr.pipeTo(
        (await Deno.open(join(work, "connect.err"), {
          write: true,
          create: true,
        })).writable,
      ),
    ]).catch(() => {});
    const rest = `http://127.0.0.1:${restPort}`;
    try {
      await waitFor("the worker's REST API", 120_000, async () => {
        const res = await fetch(`${rest}/connectors`);
        await res.body?.cancel();
        return res.ok ? true : null;
      });
      // Its internal topics exist, compacted, as Connect requires.
      const conn = await KafkaConnection.connect("127.0.0.1", node.port);
      const described = await conn.request(ApiKey.DescribeConfigs, 4, {
        resources: ["connect-configs", "connect-offsets", "connect-status"].map((name) => ({
          resourceType: 2,
          resourceName: name,
          configurationKeys: ["cleanup.policy"],
        })),
        includeSynonyms: false,
        includeDocumentation: false,
      });
      conn.close();
      for (const r of described.results) {
        assert.equal(r.errorCode, 0, r.resourceName);
        assert.equal(r.configs[0]!.value, "compact", r.resourceName);
      }
      const create = async (name: string, config: Record<string, string>) => {
        const res = await fetch(`${rest}/connectors`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name, config }),
        });
        const body = await res.text();
        assert.ok(res.ok, `${name}: ${res.status} ${body}`);
      };
      await create("file-source", {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
        "tasks.max": "1",
        file: input,
        topic: "connect-test",
      });
      await create("file-sink", {
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1",
        file: output,
        topics: "connect-test",
      });
      const copied = (n: number) => async () => {
        const text = await Deno.readTextFile(output).catch(() => "");
        const got = text.split("\n").filter((l) => l !== "");
        return got.length >= n ? got : null;
      };
      assert.deepEqual(await waitFor("the first half", 90_000, copied(25)), lines.slice(0, 25));
      // More lines appended to the source file follow (the source's offsets are kept in
      // the compacted connect-offsets topic).
      await Deno.writeTextFile(input, lines.slice(25).join("\n") + "\n", { append: true });
      assert.deepEqual(await waitFor("the second half", 90_000, copied(50)), lines);
      for (const name of ["file-source", "file-sink"]) {
        const status = await (await fetch(`${rest}/connectors/${name}/status`)).json();
        assert.equal(status.connector.state, "RUNNING", JSON.stringify(status));
        assert.equal(status.tasks[0].state, "RUNNING", JSON.stringify(status));
      }
    } catch (err) {
      const log = await Deno.readTextFile(join(work, "connect.err")).catch(() => "");
      throw new Error(`${(err as Error).message}\n--- worker log (tail) ---\n${log.slice(-4000)}`);
    } finally {
      try {
        worker.kill("SIGKILL");
      } catch { /* gone */ }
      await worker.status;
      await logs;
      logFile.close();
      await node.kill();
    }
  },
});
