/**
 * `tidelog consume TOPIC`: prints records as they arrive, one line each (`--format`, or
 * JSON Lines with `--output json`).
 *
 * Without `--group` it reads every partition itself: it starts at the end (or the start
 * with `--from-beginning`) and fetches (Fetch v12, read_uncommitted, control batches
 * skipped) from each partition's leader, one request per leader per round. With
 * `--group G` it is a member of the classic consumer group G (see `_group_member.ts`):
 * it reads the partitions the group assigns it, from the group's committed offsets (or
 * as above where none is committed), commits every 5 s, on a rebalance and on exit, and
 * leaves the group on exit.
 *
 * It stops after `--count N` records, at the end of every partition with
 * `--exit-at-end` (the high watermarks the fetches report), or on SIGINT/SIGTERM.
 */
import { ApiKey, ErrorCode, type MetadataResponseTopic } from "../protocol/mod.ts";
import { AdminUsageError, intFlag, stringFlag } from "./_args.ts";
import type { CommandContext, VerbSpec } from "./_command.ts";
import { compileFormat, DEFAULT_FORMAT, type RecordFormat, recordJson } from "./_format.ts";
import { GroupMember } from "./_group_member.ts";
import { formatJsonLine } from "./_output.ts";
import { type ConsumedRecord, decodeFetchedRecords, nextOffsetAfter } from "./_records.ts";
import {
  type AdminClient,
  isRetriable,
  isRetriableCode,
  KafkaCallError,
  partitionKey,
} from "./admin_client.ts";

/** A fetch waits this long for data (so an interrupt is seen within it). */
const FETCH_MAX_WAIT_MS = 500;
const PARTITION_MAX_BYTES = 1024 * 1024;
const FETCH_MAX_BYTES = 16 * 1024 * 1024;
/** Kafka's default auto.commit.interval.ms. */
const AUTO_COMMIT_INTERVAL_MS = 5000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where the consumer is in one partition. */
interface Cursor {
  partition: number;
  /** The next offset to print. */
  position: number;
  /** As of the latest fetch; -1 before the first. */
  highWatermark: number;
}

/** Why a fetch loop returned. */
type LoopEnd = "stopped" | "count" | "end" | "rejoin";

interface LoopOptions {
  client: AdminClient;
  topic: string;
  cursors: Map<number, Cursor>;
  /** Called with each record in order; false: stop right after it (the count is reached). */
  emit: (r: ConsumedRecord) => boolean;
  /** Written out at the end of each round. */
  flush: () => void;
  stopped: () => boolean;
  exitAtEnd: boolean;
  /** Where a partition restarts after OFFSET_OUT_OF_RANGE: -2 earliest, -1 latest. */
  resetTo: bigint;
  /** Between rounds (group upkeep); true: leave the loop to rejoin. */
  betweenRounds?: () => Promise<boolean>;
}

/** The starting offsets (-2 earliest, -1 latest) of `partitions`; throws for a partition error. */
async function startOffsets(
  client: AdminClient,
  topic: string,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, number>> {
  const answers = await client.listOffsets(
    partitions.map((partition) => ({ topic, partition, timestamp })),
  );
  const out = new Map<number, number>();
  for (const partition of partitions) {
    const a = answers.get(partitionKey(topic, partition));
    if (a === undefined || a.offset === null) {
      throw new KafkaCallError(`${topic}-${partition}`, a?.errorCode ?? -1);
    }
    out.set(partition, a.offset);
  }
  return out;
}

/** Fetches rounds until a stop condition; see the module doc. */
async function fetchLoop(o: LoopOptions): Promise<LoopEnd> {
  let metadata: MetadataResponseTopic = await o.client.topicMetadata(o.topic);
  for (;;) {
    if (o.stopped()) return "stopped";
    if (o.betweenRounds !== undefined && await o.betweenRounds()) return "rejoin";
    if (
      o.exitAtEnd &&
      [...o.cursors.values()].every((c) => c.position >= c.highWatermark && c.highWatermark >= 0)
    ) {
      return "end";
    }
    if (o.cursors.size === 0) {
      // Nothing assigned (more members than partitions): wait for a rebalance or a stop.
      if (o.exitAtEnd) return "end";
      await sleep(FETCH_MAX_WAIT_MS);
      continue;
    }
    const byLeader = new Map<number, Cursor[]>();
    let stale = false;
    for (const cursor of o.cursors.values()) {
      const leader = metadata.partitions.find((p) => p.partitionIndex === cursor.partition)
        ?.leaderId ?? -1;
      if (leader < 0) {
        stale = true;
        continue;
      }
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), cursor]);
    }
    const responses = await Promise.all([...byLeader].map(async ([leader, cursors]) => {
      try {
        const conn = await o.client.broker(leader);
        return await o.client.request(conn, ApiKey.Fetch, 12, {
          replicaId: -1,
          maxWaitMs: FETCH_MAX_WAIT_MS,
          minBytes: 1,
          maxBytes: FETCH_MAX_BYTES,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [{
            topic: o.topic,
            partitions: cursors.map((c) => ({
              partition: c.partition,
              currentLeaderEpoch: -1,
              fetchOffset: BigInt(c.position),
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: PARTITION_MAX_BYTES,
            })),
          }],
          forgottenTopicsData: [],
          rackId: "",
        });
      } catch (err) {
        if (!isRetriable(err)) throw err;
        stale = true;
        return null;
      }
    }));
    for (const res of responses) {
      if (res === null) continue;
      if (res.errorCode !== ErrorCode.NONE) {
        if (!isRetriableCode(res.errorCode)) throw new KafkaCallError(o.topic, res.errorCode);
        stale = true;
        continue;
      }
      for (const p of res.responses.flatMap((t) => t.partitions)) {
        const cursor = o.cursors.get(p.partitionIndex);
        if (cursor === undefined) continue;
        if (p.errorCode === ErrorCode.OFFSET_OUT_OF_RANGE) {
          const start = await startOffsets(o.client, o.topic, [cursor.partition], o.resetTo);
          cursor.position = start.get(cursor.partition)!;
          continue;
        }
        if (p.errorCode !== ErrorCode.NONE) {
          if (!isRetriableCode(p.errorCode)) {
            throw new KafkaCallError(`${o.topic}-${p.partitionIndex}`, p.errorCode);
          }
          stale = true;
          continue;
        }
        cursor.highWatermark = Number(p.highWatermark);
        const bytes = p.records ?? new Uint8Array(0);
        for (const record of decodeFetchedRecords(bytes, cursor.partition, cursor.position)) {
          cursor.position = record.offset + 1;
          if (!o.emit(record)) {
            o.flush();
            return "count";
          }
        }
        // Past transaction markers and records compaction removed.
        const next = nextOffsetAfter(bytes);
        if (next !== null && next > cursor.position) cursor.position = next;
      }
    }
    o.flush();
    if (stale) {
      await sleep(100);
      metadata = await o.client.topicMetadata(o.topic);
    }
  }
}

/** Positions to commit: topic → partition → next offset. */
function positions(topic: string, cursors: Map<number, Cursor>): Map<string, Map<number, number>> {
  return new Map([[topic, new Map([...cursors.values()].map((c) => [c.partition, c.position]))]]);
}

const consume: VerbSpec = {
  summary: "print a topic's records, alone or as a member of a consumer group",
  positionals: ["TOPIC"],
  flags: {
    "from-beginning": {
      type: "boolean",
      doc: "start at the earliest offset (with --group: where nothing is committed)",
    },
    group: { type: "string", arg: "G", doc: "consume as a member of group G, committing" },
    format: {
      type: "string",
      arg: "FMT",
      doc: "%k key %v value %p partition %o offset %t timestamp %h headers (default %v)",
    },
    count: { type: "string", arg: "N", doc: "exit after N records" },
    "exit-at-end": { type: "boolean", doc: "exit once every partition is read to its end" },
  },
  async run({ args, client, io }: CommandContext) {
    const topic = args.positionals[0]!;
    const group = stringFlag(args.values, "group");
    if (group === "") throw new AdminUsageError("consume: --group needs a non-empty id");
    const count = intFlag(args.values, "count", 1);
    const format: RecordFormat = compileFormat(stringFlag(args.values, "format") ?? DEFAULT_FORMAT);
    if (args.output === "json" && args.values.format !== undefined) {
      throw new AdminUsageError("consume: --format and --output json exclude each other");
    }
    const fromBeginning = args.values["from-beginning"] === true;
    const exitAtEnd = args.values["exit-at-end"] === true;
    const resetTo = fromBeginning ? -2n : -1n;

    let interrupted = false;
    const { promise: interruptedSignal, resolve: onInterrupt } = Promise.withResolvers<void>();
    const stopListening = io.onInterrupt(() => {
      interrupted = true;
      onInterrupt();
    });
    let printed = 0;
    let out = "";
    const emit = (r: ConsumedRecord) => {
      out += args.output === "json" ? formatJsonLine(recordJson(topic, r)) : format.render(r);
      printed++;
      return count === undefined || printed < count;
    };
    const flush = () => {
      if (out === "") return;
      const text = out;
      out = "";
      io.stdout(text);
    };
    try {
      const metadata = await client.topicMetadata(topic);
      const all = metadata.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b);
      if (group === undefined) {
        const start = await startOffsets(client, topic, all, resetTo);
        const cursors = new Map(all.map((p) => [p, {
          partition: p,
          position: start.get(p)!,
          highWatermark: -1,
        }]));
        await fetchLoop({
          client,
          topic,
          cursors,
          emit,
          flush,
          stopped: () => interrupted,
          exitAtEnd,
          resetTo,
        });
        return 0;
      }
      const member = new GroupMember(client, group, [topic]);
      let cursors = new Map<number, Cursor>();
      let left = false;
      try {
        for (;;) {
          const joining = member.join();
          // An interrupt while the coordinator holds the join (a rebalance) ends at once.
          const joined = await Promise.race([joining, interruptedSignal.then(() => null)]);
          if (joined === null) {
            joining.catch(() => {}); // settles when the connections close
            return 0;
          }
          const assigned = joined.get(topic) ?? [];
          const committed = await member.committed(topic, assigned);
          const missing = assigned.filter((p) => !committed.has(p));
          const start = missing.length === 0
            ? new Map<number, number>()
            : await startOffsets(client, topic, missing, resetTo);
          cursors = new Map(assigned.map((p) => [p, {
            partition: p,
            position: committed.get(p) ?? start.get(p)!,
            highWatermark: -1,
          }]));
          let lastCommit = Date.now();
          const end = await fetchLoop({
            client,
            topic,
            cursors,
            emit,
            flush,
            stopped: () => interrupted,
            exitAtEnd,
            resetTo,
            betweenRounds: async () => {
              if (member.needsRejoin) return true;
              if (Date.now() - lastCommit >= AUTO_COMMIT_INTERVAL_MS) {
                lastCommit = Date.now();
                // A commit refused for a rebalance is retried after the rejoin.
                await member.commit(positions(topic, cursors)).catch((err) => {
                  if (!member.needsRejoin) throw err;
                });
              }
              return member.needsRejoin;
            },
          });
          if (end !== "rejoin") break;
          await member.commit(positions(topic, cursors)).catch((err) => {
            if (!member.needsRejoin) throw err;
          });
        }
        await member.commit(positions(topic, cursors));
        await member.leave();
        left = true;
      } finally {
        if (!left) {
          // Already failing, or interrupted while joining: leave without hiding the error.
          await member.leave().catch(() => member.stop());
        }
      }
      return 0;
    } finally {
      flush();
      stopListening();
    }
  },
};

/** `tidelog consume` (a noun without verbs). */
export const CONSUME_COMMAND: VerbSpec = consume;
