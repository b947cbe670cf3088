/**
 * `tidelog produce TOPIC`: each line of stdin (or `--file F`) becomes a record, with
 * `--key-separator SEP` split at the first SEP into key and value (a line without SEP has
 * no key). Keyed records go to Kafka's default partition for their key (murmur2, as the
 * Java client), unkeyed ones round-robin. Produce v9 with acks=all, to each partition's
 * leader.
 *
 * One round of requests (one per leader, one batch per partition) is in flight at a time,
 * so records of a partition are written in line order; lines read meanwhile wait for the
 * next round, which batches them. A retriable answer (leader moved, not enough replicas)
 * is sent again after fresh Metadata: delivery is at least once, not exactly once.
 */
import {
  ApiKey,
  encodeRecordBatch,
  ErrorCode,
  type KafkaRecord,
  type MetadataResponseTopic,
} from "../protocol/mod.ts";
import { stringFlag } from "./_args.ts";
import type { CommandContext, VerbSpec } from "./_command.ts";
import { type AdminIo, formatJson } from "./_output.ts";
import { partitionForKey } from "./_records.ts";
import {
  type AdminClient,
  isRetriable,
  isRetriableCode,
  KafkaCallError,
  REQUEST_TIMEOUT_MS,
} from "./admin_client.ts";

/** A batch well under Kafka's default max.message.bytes (1 MiB). */
const MAX_BATCH_BYTES = 512 * 1024;
/** Stop reading while this much waits to be sent. */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** How long one round keeps retrying retriable answers. */
const ROUND_RETRY_MS = 30_000;
/** Per record, besides key and value: the record's varints and attributes. */
const RECORD_OVERHEAD = 24;

/** Produce codes after which the batch was not written (or may be sent again safely enough). */
const PRODUCE_RETRIABLE: ReadonlySet<number> = new Set([
  ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
  ErrorCode.NOT_ENOUGH_REPLICAS,
  ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
  ErrorCode.REQUEST_TIMED_OUT,
  ErrorCode.KAFKA_STORAGE_ERROR,
]);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Splits a byte stream into lines (LF or CRLF), across chunk boundaries. */
export class LineSplitter {
  #carry: Uint8Array = new Uint8Array(0);

  /** The complete lines in `chunk` (with what earlier chunks left over), without EOLs. */
  push(chunk: Uint8Array): Uint8Array[] {
    let buf = chunk;
    if (this.#carry.length > 0) {
      buf = new Uint8Array(this.#carry.length + chunk.length);
      buf.set(this.#carry);
      buf.set(chunk, this.#carry.length);
    }
    const lines: Uint8Array[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      lines.push(buf.slice(start, end));
      start = nl + 1;
    }
    this.#carry = buf.slice(start);
    return lines;
  }

  /** The last line if the input did not end with a newline. */
  end(): Uint8Array | null {
    const rest = this.#carry;
    this.#carry = new Uint8Array(0);
    if (rest.length === 0) return null;
    return rest[rest.length - 1] === 0x0d ? rest.subarray(0, -1) : rest;
  }
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** What was written to one partition. */
interface PartitionResult {
  partition: number;
  records: number;
  firstOffset: number;
  lastOffset: number;
}

/** Sends records in rounds; see the module doc. */
class RoundProducer {
  readonly #client: AdminClient;
  readonly #topic: string;
  #metadata: MetadataResponseTopic;
  readonly #pending: KafkaRecord[][];
  #pendingBytes = 0;
  #roundRobin = 0;
  #inFlight: Promise<void> | null = null;
  #failure: { error: unknown } | null = null;
  readonly results = new Map<number, PartitionResult>();

  constructor(client: AdminClient, topic: string, metadata: MetadataResponseTopic) {
    this.#client = client;
    this.#topic = topic;
    this.#metadata = metadata;
    this.#pending = metadata.partitions.map(() => []);
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Queues one record (sent by a later {@linkcode kick}). */
  add(key: Uint8Array | null, value: Uint8Array): void {
    this.#throwIfFailed();
    const n = this.#pending.length;
    const partition = key === null ? this.#roundRobin++ % n : partitionForKey(key, n);
    this.#pending[partition]!.push({ key, value, timestampMs: Date.now() });
    this.#pendingBytes += value.length + (key?.length ?? 0) + RECORD_OVERHEAD;
  }

  /** Starts a round if none is in flight and records wait. */
  kick(): void {
    this.#throwIfFailed();
    if (this.#inFlight !== null || this.#pendingBytes === 0) return;
    const batches = this.#take();
    this.#inFlight = this.#round(batches).then(
      () => {
        this.#inFlight = null;
        // Lines that arrived during the round go now, not when the next chunk is read.
        if (this.#failure === null) this.kick();
      },
      (error) => {
        this.#inFlight = null;
        this.#failure = { error };
      },
    );
  }

  /** Waits for the round in flight, if any. */
  async idle(): Promise<void> {
    while (this.#inFlight !== null) await this.#inFlight;
    this.#throwIfFailed();
  }

  /** Sends everything queued and waits for it. */
  async flush(): Promise<void> {
    for (;;) {
      await this.idle();
      if (this.#pendingBytes === 0) return;
      this.kick();
    }
  }

  #throwIfFailed(): void {
    if (this.#failure !== null) throw this.#failure.error;
  }

  /** Up to one batch's worth of records per partition, taken from the queue. */
  #take(): Map<number, { batch: Uint8Array; count: number }> {
    const out = new Map<number, { batch: Uint8Array; count: number }>();
    this.#pending.forEach((queue, partition) => {
      if (queue.length === 0) return;
      let bytes = 0;
      let count = 0;
      while (count < queue.length && (count === 0 || bytes < MAX_BATCH_BYTES)) {
        const r = queue[count]!;
        bytes += (r.value?.length ?? 0) + (r.key?.length ?? 0) + RECORD_OVERHEAD;
        count++;
      }
      const records = queue.splice(0, count);
      this.#pendingBytes -= bytes;
      out.set(partition, { batch: encodeRecordBatch(records), count });
    });
    return out;
  }

  async #round(batches: Map<number, { batch: Uint8Array; count: number }>): Promise<void> {
    const deadline = Date.now() + ROUND_RETRY_MS;
    let delay = 50;
    let last: KafkaCallError | null = null;
    for (;;) {
      const byLeader = new Map<number, number[]>();
      for (const partition of batches.keys()) {
        const leader = this.#metadata.partitions.find((p) => p.partitionIndex === partition)
          ?.leaderId ?? -1;
        if (leader < 0) {
          last = new KafkaCallError(`${this.#topic}-${partition}`, ErrorCode.LEADER_NOT_AVAILABLE);
          continue;
        }
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), partition]);
      }
      await Promise.all([...byLeader].map(async ([leader, partitions]) => {
        let res;
        try {
          const conn = await this.#client.broker(leader);
          res = await this.#client.request(conn, ApiKey.Produce, 9, {
            transactionalId: null,
            acks: -1,
            timeoutMs: REQUEST_TIMEOUT_MS,
            topicData: [{
              name: this.#topic,
              partitionData: partitions.map((p) => ({ index: p, records: batches.get(p)!.batch })),
            }],
          }, REQUEST_TIMEOUT_MS + 5000);
        } catch (err) {
          if (!isRetriable(err)) throw err;
          last = new KafkaCallError(`broker ${leader}`, ErrorCode.NETWORK_EXCEPTION, String(err));
          return;
        }
        for (const r of res.responses.flatMap((t) => t.partitionResponses)) {
          const sent = batches.get(r.index);
          if (sent === undefined) continue;
          if (r.errorCode === ErrorCode.NONE) {
            batches.delete(r.index);
            const base = Number(r.baseOffset);
            const prev = this.results.get(r.index);
            this.results.set(r.index, {
              partition: r.index,
              records: (prev?.records ?? 0) + sent.count,
              firstOffset: prev?.firstOffset ?? base,
              lastOffset: base + sent.count - 1,
            });
            continue;
          }
          const error = new KafkaCallError(
            `${this.#topic}-${r.index}`,
            r.errorCode,
            r.errorMessage ?? r.recordErrors[0]?.batchIndexErrorMessage,
          );
          if (!isRetriableCode(r.errorCode) && !PRODUCE_RETRIABLE.has(r.errorCode)) throw error;
          last = error;
        }
      }));
      if (batches.size === 0) return;
      if (Date.now() + delay > deadline) {
        throw last ?? new KafkaCallError(this.#topic, ErrorCode.REQUEST_TIMED_OUT);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 1000);
      this.#metadata = await this.#client.topicMetadata(this.#topic);
    }
  }
}

/** A progress bar on stderr: bytes of the file read, and records queued. */
class ProgressBar {
  readonly #io: AdminIo;
  readonly #total: number;
  #lastDraw = 0;

  constructor(io: AdminIo, totalBytes: number) {
    this.#io = io;
    this.#total = Math.max(1, totalBytes);
  }

  update(bytesRead: number, records: number, final = false): void {
    const now = Date.now();
    if (!final && now - this.#lastDraw < 100) return;
    this.#lastDraw = now;
    const fraction = Math.min(1, bytesRead / this.#total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = "=".repeat(filled) + " ".repeat(width - filled);
    this.#io.stderr(
      `\r[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${records} records` +
        (final ? "\n" : ""),
    );
  }
}

const produce: VerbSpec = {
  summary: "send lines of stdin (or --file) to a topic as records, acks=all",
  positionals: ["TOPIC"],
  flags: {
    file: { type: "string", arg: "F", doc: "read lines from F instead of stdin" },
    "key-separator": {
      type: "string",
      arg: "SEP",
      doc: "a line is KEY SEP VALUE (split at the first SEP; without SEP: no key)",
    },
  },
  async run({ args, client, io }: CommandContext) {
    const topic = args.positionals[0]!;
    const file = stringFlag(args.values, "file");
    const separatorRaw = stringFlag(args.values, "key-separator");
    const separator = separatorRaw === undefined || separatorRaw === ""
      ? null
      : new TextEncoder().encode(separatorRaw);
    let input: ReadableStream<Uint8Array>;
    let progress: ProgressBar | null = null;
    let opened: Deno.FsFile | null = null;
    if (file !== undefined) {
      try {
        opened = await Deno.open(file, { read: true });
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message.split("\n")[0]}`);
      }
      input = opened.readable;
      if (io.stderrIsTerminal()) progress = new ProgressBar(io, (await opened.stat()).size);
    } else {
      input = io.stdin();
    }
    const reader = input.getReader();
    try {
      const metadata = await client.topicMetadata(topic, `topic ${topic}`, { autoCreate: true });
      const producer = new RoundProducer(client, topic, metadata);
      const splitter = new LineSplitter();
      let bytesRead = 0;
      let records = 0;
      const add = (line: Uint8Array) => {
        const at = separator === null ? -1 : indexOfBytes(line, separator);
        if (at < 0) producer.add(null, line);
        else producer.add(line.slice(0, at), line.slice(at + separator!.length));
        records++;
      };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        bytesRead += value.length;
        for (const line of splitter.push(value)) add(line);
        progress?.update(bytesRead, records);
        producer.kick();
        if (producer.pendingBytes > MAX_PENDING_BYTES) await producer.idle();
      }
      const last = splitter.end();
      if (last !== null) add(last);
      await producer.flush();
      progress?.update(bytesRead, records, true);
      const partitions = [...producer.results.values()].sort((a, b) => a.partition - b.partition);
      if (args.output === "json") {
        io.stdout(formatJson({ topic, records, partitions }));
      } else {
        io.stdout(`produced ${records} records to ${topic}\n`);
      }
      return 0;
    } finally {
      await reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  },
};

/** `tidelog produce` (a noun without verbs). */
export const PRODUCE_COMMAND: VerbSpec = produce;
