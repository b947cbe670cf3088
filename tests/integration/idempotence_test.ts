/**
 * Idempotent producers end to end: InitProducerId over the wire, exact Produce requests
 * for duplicates, gaps and fenced epochs, producer state surviving a clean restart and
 * a kill -9, and librdkafka (confluent-kafka, enable.idempotence=true) retrying through a
 * proxy that cuts the connection after the broker answered a Produce request, so the
 * same batch arrives twice: the log must hold every record exactly once, without gaps.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { KafkaConnection } from "../../lib/client/mod.ts";
import { ApiKey, ErrorCode } from "../../lib/protocol/mod.ts";
import { HAVE_CONFLUENT, needs, PYTHON, run } from "../_helpers/clients.ts";
import { fetchAll } from "../_helpers/fetch_all.ts";
import { startTestNode } from "../_helpers/in_process_node.ts";
import { freePort, nodeDir, NodeProcess, tempDir } from "../_helpers/node_process.ts";
import { buildBatch } from "../unit/log/_batches.ts";

const SCRIPT = fileURLToPath(new URL("./clients/idempotent_producer.py", import.meta.url));

function idemBatch(producerId: bigint, epoch: number, seq: number, count: number) {
  return buildBatch({
    records: Array.from(
      { length: count },
      (_, i) => ({ key: `k${seq + i}`, value: `v${seq + i}` }),
    ),
    producerId,
    producerEpoch: epoch,
    baseSequence: seq,
  });
}

function produce(conn: KafkaConnection, topic: string, records: Uint8Array) {
  return conn.request(ApiKey.Produce, 9, {
    transactionalId: null,
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: 0, records }] }],
  }).then((r) => r.responses[0]!.partitionResponses[0]!);
}

function initProducerId(conn: KafkaConnection, version = 4, body: Record<string, unknown> = {}) {
  return conn.request(ApiKey.InitProducerId, version, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
    ...body,
  });
}

async function logEndOffset(conn: KafkaConnection, topic: string): Promise<bigint> {
  const res = await conn.request(ApiKey.ListOffsets, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
  });
  return res.topics[0]!.partitions[0]!.offset;
}

Deno.test("InitProducerId: new ids with epoch 0, never repeated across restarts", async (t) => {
  await using node = await startTestNode();
  let conn = await node.connect();

  await t.step("ApiVersions lists InitProducerId v0-5", async () => {
    const res = await conn.request(ApiKey.ApiVersions, 3, {
      clientSoftwareName: "test",
      clientSoftwareVersion: "1",
    });
    const entry = res.apiKeys.find((k) => k.apiKey === ApiKey.InitProducerId);
    assert.deepEqual([entry?.minVersion, entry?.maxVersion], [0, 5]);
  });

  const seen = new Set<bigint>();
  await t.step("every version answers a fresh id with epoch 0", async () => {
    for (let v = 0; v <= 5; v++) {
      const res = await initProducerId(conn, v);
      assert.equal(res.errorCode, ErrorCode.NONE);
      assert.equal(res.producerEpoch, 0);
      assert.ok(res.producerId >= 0n && !seen.has(res.producerId));
      seen.add(res.producerId);
    }
  });

  await t.step("v3+ with an id and epoch (KIP-360 bump) gets a new id, as Kafka does", async () => {
    const first = await initProducerId(conn, 4);
    const bumped = await initProducerId(conn, 4, {
      producerId: first.producerId,
      producerEpoch: first.producerEpoch,
    });
    assert.equal(bumped.errorCode, ErrorCode.NONE);
    assert.notEqual(bumped.producerId, first.producerId);
    assert.equal(bumped.producerEpoch, 0);
    seen.add(first.producerId).add(bumped.producerId);
  });

  await t.step("an id without an epoch is INVALID_REQUEST", async () => {
    const res = await initProducerId(conn, 3, { producerId: 5n, producerEpoch: -1 });
    assert.equal(res.errorCode, ErrorCode.INVALID_REQUEST);
  });

  await t.step(
    "a transactional id goes to its coordinator, found with FindCoordinator",
    async () => {
      // Before __transaction_state exists nothing coordinates it (clients look it up first).
      const early = await initProducerId(conn, 4, { transactionalId: "tx-1" });
      assert.equal(early.errorCode, ErrorCode.NOT_COORDINATOR);
      const found = await conn.request(ApiKey.FindCoordinator, 4, {
        keyType: 1,
        coordinatorKeys: ["tx-1"],
      });
      assert.equal(found.coordinators[0]!.errorCode, ErrorCode.NONE);
      assert.equal(found.coordinators[0]!.nodeId, 1);
      const res = await initProducerId(conn, 4, { transactionalId: "tx-1" });
      assert.equal(res.errorCode, ErrorCode.NONE);
      assert.equal(res.producerEpoch, 0);
      seen.add(res.producerId);
      const again = await initProducerId(conn, 4, { transactionalId: "tx-1" });
      assert.deepEqual([again.producerId, again.producerEpoch], [res.producerId, 1]);
      const empty = await initProducerId(conn, 4, { transactionalId: "" });
      assert.equal(empty.errorCode, ErrorCode.INVALID_REQUEST);
    },
  );

  await t.step("after a restart ids continue past the reserved block", async () => {
    const max = [...seen].reduce((a, b) => (a > b ? a : b));
    await node.restart();
    conn = await node.connect();
    const res = await initProducerId(conn);
    assert.equal(res.errorCode, ErrorCode.NONE);
    assert.ok(res.producerId > max, `${res.producerId} <= ${max}`);
  });
});

Deno.test("Produce: idempotent batches are deduplicated, gaps and old epochs refused", async (t) => {
  await using node = await startTestNode();
  let conn = await node.connect();
  const topic = "idem";
  const { producerId } = await initProducerId(conn);
  const other = (await initProducerId(conn)).producerId;

  await t.step("first batches are appended in order", async () => {
    assert.deepEqual(
      [(await produce(conn, topic, idemBatch(producerId, 0, 0, 3))).baseOffset],
      [0n],
    );
    const r = await produce(conn, topic, idemBatch(producerId, 0, 3, 2));
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(r.baseOffset, 3n);
  });

  await t.step("the same batch twice: same base offset, log end unchanged", async () => {
    const r = await produce(conn, topic, idemBatch(producerId, 0, 3, 2));
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(r.baseOffset, 3n);
    const older = await produce(conn, topic, idemBatch(producerId, 0, 0, 3));
    assert.equal(older.baseOffset, 0n);
    assert.equal(await logEndOffset(conn, topic), 5n);
  });

  await t.step("a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER and writes nothing", async () => {
    const r = await produce(conn, topic, idemBatch(producerId, 0, 6, 1));
    assert.equal(r.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert.equal(r.baseOffset, -1n);
    assert.equal(await logEndOffset(conn, topic), 5n);
  });

  await t.step("a new epoch restarts at sequence 0; the old epoch is then fenced", async () => {
    assert.equal(
      (await produce(conn, topic, idemBatch(producerId, 1, 3, 1))).errorCode,
      ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    );
    const r = await produce(conn, topic, idemBatch(producerId, 1, 0, 1));
    assert.equal(r.errorCode, ErrorCode.NONE);
    assert.equal(r.baseOffset, 5n);
    const old = await produce(conn, topic, idemBatch(producerId, 0, 5, 1));
    assert.equal(old.errorCode, ErrorCode.INVALID_PRODUCER_EPOCH);
    assert.equal(await logEndOffset(conn, topic), 6n);
  });

  await t.step("producers are independent; plain batches bypass the checks", async () => {
    assert.equal((await produce(conn, topic, idemBatch(other, 0, 0, 1))).baseOffset, 6n);
    const plain = buildBatch({ records: [{ value: "x" }] });
    assert.equal((await produce(conn, topic, plain)).baseOffset, 7n);
    assert.equal((await produce(conn, topic, plain)).baseOffset, 8n);
  });

  await t.step("a retry on a LogAppendTime topic answers the original append time", async () => {
    const created = await conn.request(ApiKey.CreateTopics, 7, {
      topics: [{
        name: "idem-lat",
        numPartitions: 1,
        replicationFactor: -1,
        configs: [{ name: "message.timestamp.type", value: "LogAppendTime" }],
      }],
      timeoutMs: 5000,
    });
    assert.equal(created.topics[0]!.errorCode, ErrorCode.NONE);
    // `other` is unknown to this partition, so its first sequence may be anything (Kafka 3.x).
    const first = await produce(conn, "idem-lat", idemBatch(other, 0, 1, 2));
    assert.equal(first.errorCode, ErrorCode.NONE);
    assert.ok(first.logAppendTimeMs > 0n);
    await new Promise((r) => setTimeout(r, 5));
    const retry = await produce(conn, "idem-lat", idemBatch(other, 0, 1, 2));
    assert.deepEqual(
      [retry.errorCode, retry.baseOffset, retry.logAppendTimeMs],
      [ErrorCode.NONE, 0n, first.logAppendTimeMs],
    );
  });

  await t.step(
    "after a clean restart a retry is still a duplicate and the sequence continues",
    async () => {
      await node.restart();
      conn = await node.connect();
      const retry = await produce(conn, topic, idemBatch(producerId, 1, 0, 1));
      assert.equal(retry.errorCode, ErrorCode.NONE);
      assert.equal(retry.baseOffset, 5n);
      assert.equal(await logEndOffset(conn, topic), 9n);
      assert.equal(
        (await produce(conn, topic, idemBatch(producerId, 1, 2, 1))).errorCode,
        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
      );
      const next = await produce(conn, topic, idemBatch(producerId, 1, 1, 4));
      assert.equal(next.errorCode, ErrorCode.NONE);
      assert.equal(next.baseOffset, 9n);
    },
  );
});

Deno.test("Produce: producer state is rebuilt from the log after kill -9", async () => {
  await using dir = await tempDir();
  const dataDir = nodeDir(dir.path);
  let node = await NodeProcess.start({ dataDir });
  const topic = "idem-crash";
  try {
    let conn = await KafkaConnection.connect("127.0.0.1", node.port);
    const { producerId } = await initProducerId(conn);
    let seq = 0;
    for (let i = 0; i < 20; i++) {
      const r = await produce(conn, topic, idemBatch(producerId, 0, seq, 5));
      assert.equal(r.errorCode, ErrorCode.NONE);
      assert.equal(r.baseOffset, BigInt(seq));
      seq += 5;
    }
    await conn.close();
    await node.kill("SIGKILL");
    node = await NodeProcess.start({ dataDir, port: node.port });
    conn = await KafkaConnection.connect("127.0.0.1", node.port);
    try {
      // The last five batches are still recognised, with their original offsets.
      for (const s of [95, 90, 75]) {
        const r = await produce(conn, topic, idemBatch(producerId, 0, s, 5));
        assert.equal(r.errorCode, ErrorCode.NONE);
        assert.equal(r.baseOffset, BigInt(s));
      }
      assert.equal(await logEndOffset(conn, topic), 100n);
      const gap = await produce(conn, topic, idemBatch(producerId, 0, 101, 1));
      assert.equal(gap.errorCode, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
      const next = await produce(conn, topic, idemBatch(producerId, 0, 100, 1));
      assert.equal(next.errorCode, ErrorCode.NONE);
      assert.equal(next.baseOffset, 100n);
      // A new producer id is not one handed out before the crash.
      assert.ok((await initProducerId(conn)).producerId > producerId);
    } finally {
      await conn.close();
    }
  } finally {
    await node.kill();
  }
});

/**
 * A TCP proxy for the Kafka protocol that forwards everything, except that it cuts both
 * connections instead of forwarding the response to chosen Produce requests (counted
 * across connections, 1-based): the broker has appended the batch, the client never hears
 * of it and must retry the same batch.
 */
class CuttingProxy {
  readonly port: number;
  readonly #listener: Deno.Listener;
  readonly #targetPort: number;
  readonly #cutAt: Set<number>;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  produceResponses = 0;
  cuts = 0;

  constructor(port: number, targetPort: number, cutAt: number[]) {
    this.port = port;
    this.#targetPort = targetPort;
    this.#cutAt = new Set(cutAt);
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) this.#track(this.#serve(client));
    } catch { /* listener closed */ }
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #serve(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let broker: Deno.Conn;
    try {
      broker = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      this.#close(client);
      return;
    }
    this.#conns.add(broker);
    const produceIds = new Set<number>();
    const cut = () => {
      this.#close(client);
      this.#close(broker);
    };
    const upstream = pumpFrames(client, broker, (frame) => {
      const view = new DataView(frame.buffer, frame.byteOffset);
      if (view.getInt16(4) === ApiKey.Produce) produceIds.add(view.getInt32(8));
      return true;
    });
    const downstream = pumpFrames(broker, client, (frame) => {
      const correlationId = new DataView(frame.buffer, frame.byteOffset).getInt32(4);
      if (!produceIds.delete(correlationId)) return true;
      this.produceResponses++;
      if (!this.#cutAt.has(this.produceResponses)) return true;
      this.cuts++;
      return false;
    });
    await Promise.race([upstream, downstream]);
    cut();
    await Promise.allSettled([upstream, downstream]);
  }

  #close(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch { /* already closed */ }
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const c of [...this.#conns]) this.#close(c);
    await Promise.allSettled([...this.#tasks]);
  }
}

/**
 * Copies size-prefixed frames from `from` to `to` while `forward(frame)` says so; returns
 * when either side closes or `forward` refuses a frame.
 */
async function pumpFrames(
  from: Deno.Conn,
  to: Deno.Conn,
  forward: (frame: Uint8Array) => boolean,
): Promise<void> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      const n = await from.read(chunk);
      if (n === null) return;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      while (buf.length >= 4) {
        const size = new DataView(buf.buffer, buf.byteOffset).getInt32(0);
        if (buf.length < 4 + size) break;
        const frame = buf.slice(0, 4 + size);
        buf = buf.slice(4 + size);
        if (!forward(frame)) return;
        for (let written = 0; written < frame.length;) {
          written += await to.write(frame.subarray(written));
        }
      }
    }
  } catch {
    // A side was closed (by the peer or by a cut): stop copying.
  }
}

Deno.test({
  name:
    "confluent-kafka idempotent producer: retries after a cut connection leave no duplicate and no gap",
  ...needs("confluent-kafka", HAVE_CONFLUENT),
  async fn() {
    await using dir = await tempDir();
    const proxyPort = freePort();
    // Metadata advertises the proxy, so every client connection goes through it.
    const node = await NodeProcess.start({
      dataDir: nodeDir(dir.path),
      args: ["--advertised-addr", `127.0.0.1:${proxyPort}`],
    });
    const proxy = new CuttingProxy(proxyPort, node.port, [1, 4, 9]);
    const n = 2000;
    const topic = "idem-ck";
    try {
      const out = await run(PYTHON, [SCRIPT, `127.0.0.1:${proxyPort}`, topic, String(n)], {
        timeoutMs: 120_000,
      });
      const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
        delivered: Record<string, [number, number]>;
        errors: string[];
        fatal: string[];
        undelivered: number;
      };
      assert.deepEqual(
        { errors: summary.errors, fatal: summary.fatal, undelivered: summary.undelivered },
        { errors: [], fatal: [], undelivered: 0 },
      );
      assert.equal(Object.keys(summary.delivered).length, n);
      assert.equal(proxy.cuts, 3, `only ${proxy.cuts} cuts for ${proxy.produceResponses} produces`);

      const records = await fetchAll(node.port, topic, 2);
      assert.equal(records.length, n, "every record exactly once");
      for (const partition of [0, 1]) {
        const got = records.filter((r) => r.partition === partition);
        // No gap: offsets 0..count-1; no duplicate, in send order: keys i = partition (mod 2)
        // ascending.
        assert.deepEqual(got.map((r) => r.offset), got.map((_, i) => i));
        assert.deepEqual(
          got.map((r) => r.key),
          Array.from({ length: n / 2 }, (_, j) => `k${2 * j + partition}`),
        );
      }
      for (const r of records) {
        assert.equal(r.value, `v${r.key.slice(1)}`);
        assert.deepEqual(summary.delivered[r.key], [r.partition, r.offset]);
      }
    } finally {
      await proxy.close();
      await node.kill();
    }
  },
});
