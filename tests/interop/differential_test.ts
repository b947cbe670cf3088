/**
 * Differential test: Apache Kafka 4.1.2 (one node, `tests/_helpers/kafka_reference.ts`) is
 * the reference. The same scripted requests go, with explicit versions over our raw
 * protocol client, to Kafka and to a one-node Tidelog, and the responses are compared field
 * by field after the normalisations in {@linkcode NORMALISATIONS} (one list, each with its
 * reason; nothing else is hidden).
 *
 * The script is the table {@linkcode CASES}: each case is one test step that runs against
 * both brokers (cases share state: topics created by earlier cases, the group's member id)
 * and yields what is compared. A request version is the highest that Kafka, Tidelog and our
 * codec all serve, as a Java client negotiates it. A case whose APIs Tidelog does not
 * advertise yet is reported as "skipped: not served yet". A case marked `known` differs from
 * Kafka today: its step is named "MISMATCH (known) ..." and its error names the lib/ file
 * to fix; it still fails until Tidelog answers as Kafka does, and the summary then says
 * to drop the mark. A mismatch in an unmarked case is listed as "MISMATCH (new)".
 *
 * A mismatch prints each differing field: path, Kafka's value, Tidelog's value (error
 * codes with their names). Debugging aids: `DIFF_DUMP=FILE` appends every case's
 * normalised answers as JSON lines; `DIFF_RAW_MESSAGES=1` compares error message texts.
 */
import { TestCluster } from "../_helpers/cluster.ts";
import { needsJava } from "../_helpers/java.ts";
import { KafkaReference } from "../_helpers/kafka_reference.ts";
import { KafkaConnection } from "../../lib/client/mod.ts";
import {
  ApiKey,
  apiName,
  decodeRecords,
  type DeepPartial,
  encodeData,
  encodeRecordBatch,
  ErrorCode,
  errorName,
  type KafkaRecord,
  readBatchHeader,
  type RequestTypes,
  type ResponseTypes,
  schemaVersionRange,
  ZERO_UUID,
} from "../../lib/protocol/mod.ts";
import { crc32c } from "../../lib/util/crc32c.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

/** One differing field. */
interface Difference {
  path: string;
  kafka: unknown;
  tidelog: unknown;
}

/** One scripted scenario, run against both brokers. */
interface Case {
  name: string;
  /** The APIs it sends: if Tidelog does not advertise one, the case is skipped. */
  apis: readonly Key[];
  /** A mismatch known today: what differs and the lib/ file responsible. */
  known?: string;
  /**
   * Differences Tidelog makes on purpose (each listed in the closing note): a
   * difference whose path matches is reported in the summary, not failed.
   */
  intentional?: readonly Intentional[];
  /** Sends the script to one broker; resolves with what is compared. */
  run(side: Side): Promise<unknown>;
  /** A comparison other than "equal after normalisation" (ApiVersions). */
  compare?(kafka: unknown, tidelog: unknown): Difference[];
}

/** Debugging aid: compare error message texts too. */
const RAW_MESSAGES = Deno.env.get("DIFF_RAW_MESSAGES") === "1";
/** Debugging aid: a file to which every case's normalised answers are appended (JSON lines). */
const DUMP = Deno.env.get("DIFF_DUMP");

/**
 * What legitimately differs between two brokers, matched on the field path with array
 * indices dropped (`topics[].partitions[].leaderId`). Nothing else is normalised.
 */
const NORMALISATIONS: {
  path: RegExp;
  reason: string;
  apply(value: unknown, side: Side): unknown;
}[] = [
  {
    path: /(^|\.)port$/,
    reason: "each broker listens on its own free port (hosts are 127.0.0.1 and node ids 1 on both)",
    apply: (v, side) => v === side.port ? "<own port>" : v,
  },
  {
    path: /(^|\.)clusterId$/,
    reason: "a random id chosen when the cluster is formatted",
    apply: (v) => typeof v === "string" && v !== "" ? "<cluster id>" : v,
  },
  {
    path: /(^|\.)topicId$/,
    reason: "random per topic: replaced by the name of the topic it identifies on that broker",
    apply: (v, side) => side.topicLabel(v),
  },
  {
    path: /(^|\.)memberId$|^leader$/,
    reason: "the coordinator generates `clientId-<random uuid>`: numbered by first appearance",
    apply: (v, side) => side.label("member", v),
  },
  {
    path: /(^|\.)producerId$/,
    reason: "allocated by the controller in blocks whose start depends on the cluster's history",
    apply: (v, side) => typeof v === "bigint" && v >= 0n ? side.label("producer", String(v)) : v,
  },
  {
    path: /(^|\.)errorMessage$/,
    reason: "free text for people (DIFF_RAW_MESSAGES=1 compares it); whether there is one is " +
      'still compared, with null and "" both meaning none, as Kafka itself uses both',
    apply: (v) => v === "" ? null : typeof v === "string" && !RAW_MESSAGES ? "<message>" : v,
  },
  {
    path: /(^|\.)configs$/,
    reason: "Kafka lists a resource's configs in hash-map order: sorted by name",
    apply: (v) => sortBy(v, "name"),
  },
  {
    path: /(^|\.)partitions$/,
    reason: "Kafka lists a topic's partitions in hash-map order: sorted by index",
    apply: (v) => sortBy(v, "partitionIndex"),
  },
  {
    path: /(^|\.)replicaElectionResults$/,
    reason: "Kafka lists ElectLeaders' topics in hash-map order: sorted by name",
    apply: (v) => sortBy(v, "topic"),
  },
  {
    path: /(^|\.)logDir$/,
    reason: "each broker's own temporary directory",
    apply: (v) => typeof v === "string" && v !== "" ? "<log dir>" : v,
  },
  {
    path: /(^|\.)(totalBytes|usableBytes)$/,
    reason: "the file system's size and free space at the moment of the request",
    apply: (v) => typeof v === "bigint" && v >= 0n ? "<bytes>" : v,
  },
];

/** A copy of `v` (if an array of objects with `key`) sorted by that key. */
function sortBy(v: unknown, key: string): unknown {
  if (!Array.isArray(v) || !v.every((x) => x !== null && typeof x === "object" && key in x)) {
    return v;
  }
  return [...v].sort((a, b) => {
    const x = a[key] as string | number;
    const y = b[key] as string | number;
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** The run's fixed inputs, the same for both brokers. */
const T0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
const TOPIC_A = "diff-a"; // 1 partition: produce, fetch, offsets, the group's topic
const TOPIC_B = "diff-b"; // 3 partitions with overrides: configs, CreatePartitions
const GROUP = "diff-group";
const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

const BATCH_1: KafkaRecord[] = [
  {
    key: bytes("k0"),
    value: bytes("v0"),
    headers: [{ key: "h", value: bytes("1") }],
    timestampMs: T0,
  },
  { key: null, value: bytes("v1"), timestampMs: T0 + 1000 },
  { key: bytes("k2"), value: null, timestampMs: T0 + 2000 },
];
// Out of timestamp order, so that MAX_TIMESTAMP (offset 3) differs from LATEST (5).
const BATCH_2: KafkaRecord[] = [
  { key: bytes("k3"), value: bytes("v3"), timestampMs: T0 + 10_000 },
  { key: bytes("k4"), value: bytes("v4"), timestampMs: T0 + 5000 },
];

/** One broker under test: a connection plus what the script learnt about it. */
class Side {
  readonly name: "kafka" | "tidelog";
  readonly host = "127.0.0.1";
  readonly port: number;
  readonly versions = new Map<number, { min: number; max: number }>();
  /** Topic name → id, from CreateTopics and Metadata answers. */
  readonly topicIds = new Map<string, string>();
  /** Values the script carries between cases (member id, generation). */
  readonly state = new Map<string, unknown>();
  readonly #labels = new Map<string, string>();
  readonly #counts = new Map<string, number>();
  #conn: KafkaConnection | null = null;
  #open = false;
  #script: Script;

  constructor(name: "kafka" | "tidelog", port: number, script: Script) {
    this.name = name;
    this.port = port;
    this.#script = script;
  }

  /** The connection, reopened if the broker closed it. */
  async conn(): Promise<KafkaConnection> {
    if (this.#conn === null || !this.#open) {
      const conn = await KafkaConnection.connect(this.host, this.port, "differential");
      this.#conn = conn;
      this.#open = true;
      conn.closed.finally(() => {
        if (this.#conn === conn) this.#open = false;
      });
    }
    return this.#conn;
  }

  /** Sends one request at the version both brokers and the codec serve. */
  async request<K extends Key>(
    apiKey: K,
    body: DeepPartial<RequestTypes[K]>,
    version = this.#script.version(apiKey),
  ): Promise<ResponseTypes[K]> {
    return await (await this.conn()).request(apiKey, version, body);
  }

  /** `<kind #n>`, numbered by first appearance on this broker. */
  label(kind: string, value: unknown): unknown {
    if (typeof value !== "string" || value === "") return value;
    const key = `${kind}\0${value}`;
    let label = this.#labels.get(key);
    if (label === undefined) {
      const n = (this.#counts.get(kind) ?? 0) + 1;
      this.#counts.set(kind, n);
      label = `<${kind} #${n}>`;
      this.#labels.set(key, label);
    }
    return label;
  }

  /** `<id of NAME>` for a topic id this broker gave out, else `<unknown uuid #n>`. */
  topicLabel(value: unknown): unknown {
    if (typeof value !== "string" || value === ZERO_UUID) return value;
    for (const [name, id] of this.topicIds) if (id === value) return `<id of ${name}>`;
    return this.label("unknown uuid", value);
  }

  async close(): Promise<void> {
    await this.#conn?.close().catch(() => {});
  }
}

/** Versions negotiated from both brokers' ApiVersions. */
class Script {
  kafka: Side | null = null;
  tidelog: Side | null = null;

  /** Whether Tidelog advertises `apiKey`. */
  served(apiKey: number): boolean {
    return this.tidelog!.versions.has(apiKey);
  }

  /** The highest version Kafka, Tidelog and our codec all serve. */
  version(apiKey: Key): number {
    const k = this.kafka!.versions.get(apiKey);
    const t = this.tidelog!.versions.get(apiKey);
    const s = schemaVersionRange(apiKey);
    if (k === undefined || t === undefined || s === undefined) {
      throw new Error(
        `${apiName(apiKey)} is not served by ${k === undefined ? "Kafka" : "Tidelog"}`,
      );
    }
    const max = Math.min(k.max, t.max, s.max);
    if (max < Math.max(k.min, t.min, s.min)) {
      throw new Error(`${apiName(apiKey)}: Kafka, Tidelog and the codec share no version`);
    }
    return max;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Throws unless `code` is NONE (for a case's set-up requests, which are not compared). */
function expectOk(what: string, code: number, side: Side): void {
  if (code !== ErrorCode.NONE) {
    throw new Error(`${side.name}: set-up ${what} failed with ${errorName(code)}`);
  }
}

/**
 * Sends a request again while its error code (as `code` reads it) is one a client
 * retries (the coordinator or a producer-id block still being set up), for up to 60 s;
 * the final answer is what is compared.
 */
async function retrying<T>(
  send: () => Promise<T>,
  code: (res: T) => number,
  alsoRetriable: number[] = [],
): Promise<T> {
  const retriable: number[] = [
    ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    ...alsoRetriable,
  ];
  const deadline = Date.now() + 60_000;
  for (;;) {
    const res = await send();
    if (!retriable.includes(code(res)) || Date.now() > deadline) return res;
    await sleep(100);
  }
}

/** Polls Metadata until `topic` has `partitions` partitions, each with a leader. */
async function waitForTopic(side: Side, topic: string, partitions: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const md = await side.request(ApiKey.Metadata, {
      topics: [{ name: topic, topicId: ZERO_UUID }],
      allowAutoTopicCreation: false,
    });
    const t = md.topics[0];
    if (
      t !== undefined && t.errorCode === ErrorCode.NONE && t.partitions.length === partitions &&
      t.partitions.every((p) => p.leaderId >= 0)
    ) {
      side.topicIds.set(topic, t.topicId);
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`${side.name}: ${topic} has no leader for each of ${partitions} partitions`);
    }
    await sleep(50);
  }
}

/** CreateTopics for one topic (the request every CreateTopics case sends). */
async function createTopic(
  side: Side,
  name: string,
  numPartitions: number,
  replicationFactor: number,
  configs: Record<string, string> = {},
) {
  const res = await side.request(ApiKey.CreateTopics, {
    topics: [{
      name,
      numPartitions,
      replicationFactor,
      assignments: [],
      configs: Object.entries(configs).map(([k, value]) => ({ name: k, value })),
    }],
    timeoutMs: 30_000,
    validateOnly: false,
  });
  for (const t of res.topics) {
    if (t.errorCode === ErrorCode.NONE) {
      side.topicIds.set(t.name, t.topicId);
      await waitForTopic(side, t.name, t.numPartitions);
    }
  }
  return res;
}

function produce(side: Side, topic: string, partition: number, records: Uint8Array, acks = 1) {
  return side.request(ApiKey.Produce, {
    transactionalId: null,
    acks,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
}

function fetchFrom(side: Side, topic: string, offset: bigint) {
  return side.request(ApiKey.Fetch, {
    maxWaitMs: 100,
    minBytes: 1,
    maxBytes: 1 << 20,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{
      topic,
      topicId: side.topicIds.get(topic) ?? ZERO_UUID,
      partitions: [{
        partition: 0,
        currentLeaderEpoch: -1,
        fetchOffset: offset,
        lastFetchedEpoch: -1,
        logStartOffset: -1n,
        partitionMaxBytes: 1 << 20,
      }],
    }],
    forgottenTopicsData: [],
    rackId: "",
  });
}

function listOffsets(side: Side, topic: string, timestamp: bigint) {
  return side.request(ApiKey.ListOffsets, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{
      name: topic,
      partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp }],
    }],
    timeoutMs: 10_000,
  });
}

function describeTopicConfigs(side: Side, topic: string) {
  return side.request(ApiKey.DescribeConfigs, {
    resources: [{ resourceType: 2, resourceName: topic, configurationKeys: null }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
}

/**
 * DescribeConfigs of `topic`, polled (up to 10 s) until `done` holds for its values: a
 * broker applies a committed config change to its own metadata asynchronously (Kafka's
 * answer right after an alter can still show the old value), so the settled state is
 * what is compared.
 */
async function describeSettled(
  side: Side,
  topic: string,
  done: (values: Map<string, { value: string | null; source: number }>) => boolean,
) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await describeTopicConfigs(side, topic);
    const values = new Map(
      (res.results[0]?.configs ?? []).map((
        c,
      ) => [c.name, { value: c.value, source: c.configSource }]),
    );
    if (done(values) || Date.now() > deadline) return res;
    await sleep(50);
  }
}

/** A consumer-protocol payload (`int16 version` + struct), as the Java consumer sends. */
function consumerProtocol(
  name: "ConsumerProtocolSubscription" | "ConsumerProtocolAssignment",
  value: Record<string, unknown>,
): Uint8Array {
  const body = encodeData(name, 3, value);
  const out = new Uint8Array(2 + body.length);
  out[1] = 3;
  out.set(body, 2);
  return out;
}

/** A RecordBatch of `records` from an idempotent producer (id, epoch, base sequence). */
function idempotentBatch(records: KafkaRecord[], producerId: bigint, epoch: number): Uint8Array {
  const batch = encodeRecordBatch(records);
  const v = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  v.setBigInt64(43, producerId);
  v.setInt16(51, epoch);
  v.setInt32(53, 0);
  v.setUint32(17, crc32c(batch.subarray(21)));
  return batch;
}

const API_VERSIONS_REQUEST = {
  clientSoftwareName: "tidelog-differential",
  clientSoftwareVersion: "1.0",
};

/** A difference made on purpose. */
interface Intentional {
  path: RegExp;
  why: string;
}

/** Intentional differences shared by several cases. */
const OLD_VERSIONS: Intentional[] = [
  {
    path: /^apiKeys\[\w+ \(\d+\)\]\.minVersion$/,
    why: "Tidelog also serves versions Kafka 4 removed (KIP-896), for older clients " +
      "(kafka-python 2.0, older librdkafka; DESIGN.md §4)",
  },
  {
    path:
      /^apiKeys\[(BrokerRegistration|BrokerHeartbeat|AlterPartition|AllocateProducerIds) \(\d+\)\]$/,
    why: "Tidelog serves the controller APIs on its one listener (DESIGN.md §7); Kafka on " +
      "its CONTROLLER listener",
  },
];

/** The script. Order matters: later cases use what earlier ones created. */
const CASES: Case[] = [
  {
    name: "ApiVersions: every API Tidelog advertises, Kafka serves with a range that includes ours",
    apis: [ApiKey.ApiVersions],
    intentional: OLD_VERSIONS,
    run: (s) => s.request(ApiKey.ApiVersions, API_VERSIONS_REQUEST, 3),
    compare(kafka, tidelog) {
      const k = kafka as ResponseTypes[typeof ApiKey.ApiVersions];
      const t = tidelog as ResponseTypes[typeof ApiKey.ApiVersions];
      const out: Difference[] = [];
      if (k.errorCode !== t.errorCode) {
        out.push({ path: "errorCode", kafka: k.errorCode, tidelog: t.errorCode });
      }
      const ks = new Map(k.apiKeys.map((a) => [a.apiKey, a]));
      for (const a of t.apiKeys) {
        const r = ks.get(a.apiKey);
        const path = `apiKeys[${apiName(a.apiKey) ?? "?"} (${a.apiKey})]`;
        if (r === undefined) {
          out.push({
            path,
            kafka: "<not advertised>",
            tidelog: `v${a.minVersion}-${a.maxVersion}`,
          });
          continue;
        }
        if (r.minVersion > a.minVersion) {
          out.push({ path: `${path}.minVersion`, kafka: r.minVersion, tidelog: a.minVersion });
        }
        if (r.maxVersion < a.maxVersion) {
          out.push({ path: `${path}.maxVersion`, kafka: r.maxVersion, tidelog: a.maxVersion });
        }
      }
      return out;
    },
  },
  // --- CreateTopics ---
  {
    name: "CreateTopics: ok (1 partition; 3 partitions with config overrides)",
    apis: [ApiKey.CreateTopics, ApiKey.Metadata],
    run: async (s) => ({
      a: await createTopic(s, TOPIC_A, 1, 1),
      b: await createTopic(s, TOPIC_B, 3, 1, {
        "retention.ms": "3600000",
        "max.message.bytes": "2000000",
      }),
    }),
  },
  {
    name: "CreateTopics: -1 partitions and replication factor take the broker defaults",
    apis: [ApiKey.CreateTopics, ApiKey.Metadata],
    run: (s) => createTopic(s, "diff-defaults", -1, -1),
  },
  {
    name: "CreateTopics: already exists",
    apis: [ApiKey.CreateTopics],
    run: (s) => createTopic(s, TOPIC_A, 1, 1),
  },
  {
    name: "CreateTopics: invalid partitions (0)",
    apis: [ApiKey.CreateTopics],
    run: (s) => createTopic(s, "diff-bad-partitions", 0, 1),
  },
  {
    name: "CreateTopics: invalid replication factor (3 on 1 broker; 0)",
    apis: [ApiKey.CreateTopics],
    run: async (s) => ({
      three: await createTopic(s, "diff-bad-rf", 1, 3),
      zero: await createTopic(s, "diff-bad-rf", 1, 0),
    }),
  },
  {
    name: "CreateTopics: invalid names (a slash; '..'; 250 characters)",
    apis: [ApiKey.CreateTopics],
    run: async (s) => ({
      slash: await createTopic(s, "bad/name", 1, 1),
      dots: await createTopic(s, "..", 1, 1),
      long: await createTopic(s, "x".repeat(250), 1, 1),
    }),
  },
  {
    name: "CreateTopics: invalid config (unknown name; bad value)",
    apis: [ApiKey.CreateTopics],
    run: async (s) => ({
      unknown: await createTopic(s, "diff-bad-config", 1, 1, { "no.such.config": "1" }),
      value: await createTopic(s, "diff-bad-config", 1, 1, { "retention.ms": "soon" }),
    }),
  },
  // --- Metadata ---
  {
    name: "Metadata: a topic",
    apis: [ApiKey.Metadata],
    run: (s) =>
      s.request(ApiKey.Metadata, {
        topics: [{ name: TOPIC_B, topicId: ZERO_UUID }],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }),
  },
  {
    name: "Metadata: unknown topic, allowAutoTopicCreation false",
    apis: [ApiKey.Metadata],
    run: (s) =>
      s.request(ApiKey.Metadata, {
        topics: [{ name: "diff-no-such-topic", topicId: ZERO_UUID }],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      }),
  },
  // --- Produce ---
  {
    name: "Produce: acks=1, two good batches",
    apis: [ApiKey.Produce],
    run: async (s) => ({
      first: await produce(s, TOPIC_A, 0, encodeRecordBatch(BATCH_1)),
      second: await produce(s, TOPIC_A, 0, encodeRecordBatch(BATCH_2)),
    }),
  },
  {
    name: "Produce: unknown partition",
    apis: [ApiKey.Produce],
    run: (s) => produce(s, TOPIC_A, 7, encodeRecordBatch(BATCH_1)),
  },
  {
    name: "Produce: corrupt CRC",
    apis: [ApiKey.Produce],
    run: (s) => {
      const batch = encodeRecordBatch(BATCH_1);
      batch[batch.length - 1]! ^= 0xff;
      return produce(s, TOPIC_A, 0, batch);
    },
  },
  // --- Fetch ---
  {
    name: "Fetch: from offset 0",
    apis: [ApiKey.Fetch],
    run: (s) => fetchFrom(s, TOPIC_A, 0n),
  },
  {
    name: "Fetch: offset out of range",
    apis: [ApiKey.Fetch],
    run: (s) => fetchFrom(s, TOPIC_A, 1000n),
  },
  // --- ListOffsets ---
  {
    name: "ListOffsets: earliest",
    apis: [ApiKey.ListOffsets],
    run: (s) => listOffsets(s, TOPIC_A, -2n),
  },
  {
    name: "ListOffsets: latest",
    apis: [ApiKey.ListOffsets],
    run: (s) => listOffsets(s, TOPIC_A, -1n),
  },
  {
    name: "ListOffsets: by timestamp (between records; after the last)",
    apis: [ApiKey.ListOffsets],
    run: async (s) => ({
      between: await listOffsets(s, TOPIC_A, BigInt(T0 + 1500)),
      after: await listOffsets(s, TOPIC_A, BigInt(T0 + 60_000)),
    }),
  },
  {
    name: "ListOffsets: max timestamp",
    apis: [ApiKey.ListOffsets],
    run: (s) => listOffsets(s, TOPIC_A, -3n),
  },
  // --- Groups: one member's life ---
  {
    name: "FindCoordinator: a group (retried while the coordinator is not available)",
    apis: [ApiKey.FindCoordinator],
    run: (s) =>
      retrying(
        () =>
          s.request(ApiKey.FindCoordinator, { keyType: 0, key: GROUP, coordinatorKeys: [GROUP] }),
        (res) => res.coordinators[0]?.errorCode ?? res.errorCode,
      ),
  },
  {
    name: "JoinGroup: without a member id (MEMBER_ID_REQUIRED)",
    apis: [ApiKey.JoinGroup],
    run: async (s) => {
      // Kafka may name its coordinator before it has loaded the group's partition, and
      // then answers NOT_COORDINATOR for a while (under load); clients retry.
      const res = await retrying(
        () => s.request(ApiKey.JoinGroup, joinRequest("")),
        (r) => r.errorCode,
        [ErrorCode.NOT_COORDINATOR],
      );
      s.state.set("memberId", res.memberId);
      return res;
    },
  },
  {
    name: "JoinGroup: with the member id",
    apis: [ApiKey.JoinGroup],
    run: async (s) => {
      const res = await s.request(ApiKey.JoinGroup, joinRequest(s.state.get("memberId") as string));
      s.state.set("generationId", res.generationId);
      return res;
    },
  },
  {
    name: "SyncGroup: the leader's assignment",
    apis: [ApiKey.SyncGroup],
    run: (s) =>
      s.request(ApiKey.SyncGroup, {
        groupId: GROUP,
        generationId: s.state.get("generationId") as number,
        memberId: s.state.get("memberId") as string,
        groupInstanceId: null,
        protocolType: "consumer",
        protocolName: "range",
        assignments: [{
          memberId: s.state.get("memberId") as string,
          assignment: consumerProtocol("ConsumerProtocolAssignment", {
            assignedPartitions: [{ topic: TOPIC_A, partitions: [0] }],
            userData: null,
          }),
        }],
      }),
  },
  {
    name: "Heartbeat: the member; an unknown member",
    apis: [ApiKey.Heartbeat],
    run: async (s) => ({
      member: await s.request(ApiKey.Heartbeat, {
        groupId: GROUP,
        generationId: s.state.get("generationId") as number,
        memberId: s.state.get("memberId") as string,
        groupInstanceId: null,
      }),
      unknown: await s.request(ApiKey.Heartbeat, {
        groupId: GROUP,
        generationId: s.state.get("generationId") as number,
        memberId: "no-such-member",
        groupInstanceId: null,
      }),
    }),
  },
  {
    name: "OffsetCommit: the member commits offset 3 of diff-a-0",
    apis: [ApiKey.OffsetCommit],
    run: (s) =>
      s.request(ApiKey.OffsetCommit, {
        groupId: GROUP,
        generationIdOrMemberEpoch: s.state.get("generationId") as number,
        memberId: s.state.get("memberId") as string,
        groupInstanceId: null,
        topics: [{
          name: TOPIC_A,
          partitions: [{
            partitionIndex: 0,
            committedOffset: 3n,
            committedLeaderEpoch: 0,
            committedMetadata: "diff",
          }],
        }],
      }),
  },
  {
    name: "OffsetFetch: the group's committed offset; all topics; an unknown group",
    apis: [ApiKey.OffsetFetch],
    run: async (s) => ({
      partition: await s.request(ApiKey.OffsetFetch, {
        groups: [{
          groupId: GROUP,
          memberId: null,
          memberEpoch: -1,
          topics: [{ name: TOPIC_A, partitionIndexes: [0] }],
        }],
        requireStable: false,
      }),
      all: await s.request(ApiKey.OffsetFetch, {
        groups: [{ groupId: GROUP, memberId: null, memberEpoch: -1, topics: null }],
        requireStable: false,
      }),
      unknownGroup: await s.request(ApiKey.OffsetFetch, {
        groups: [{
          groupId: "diff-no-such-group",
          memberId: null,
          memberEpoch: -1,
          topics: [{ name: TOPIC_A, partitionIndexes: [0] }],
        }],
        requireStable: false,
      }),
    }),
  },
  {
    name: "DescribeGroups: the stable group; an unknown group",
    apis: [ApiKey.DescribeGroups],
    run: (s) =>
      s.request(ApiKey.DescribeGroups, {
        groups: [GROUP, "diff-no-such-group"],
        includeAuthorizedOperations: false,
      }),
  },
  {
    name: "ListGroups: no filter; filtered by state Stable and by type classic",
    apis: [ApiKey.ListGroups],
    run: async (s) => ({
      all: await s.request(ApiKey.ListGroups, { statesFilter: [], typesFilter: [] }),
      stable: await s.request(ApiKey.ListGroups, { statesFilter: ["Stable"], typesFilter: [] }),
      classic: await s.request(ApiKey.ListGroups, { statesFilter: [], typesFilter: ["classic"] }),
    }),
  },
  {
    name: "LeaveGroup: the member leaves; DescribeGroups then shows an empty group",
    apis: [ApiKey.LeaveGroup, ApiKey.DescribeGroups],
    run: async (s) => ({
      leave: await s.request(ApiKey.LeaveGroup, {
        groupId: GROUP,
        memberId: "",
        members: [{
          memberId: s.state.get("memberId") as string,
          groupInstanceId: null,
          reason: "differential test done",
        }],
      }),
      describe: await s.request(ApiKey.DescribeGroups, {
        groups: [GROUP],
        includeAuthorizedOperations: false,
      }),
    }),
  },
  {
    name: "DeleteGroups: the empty group; an unknown group",
    apis: [ApiKey.DeleteGroups],
    run: (s) => s.request(ApiKey.DeleteGroups, { groupsNames: [GROUP, "diff-no-such-group"] }),
  },
  {
    name: "DescribeCluster: brokers and controller",
    apis: [ApiKey.DescribeCluster],
    run: (s) =>
      s.request(ApiKey.DescribeCluster, {
        includeClusterAuthorizedOperations: false,
        endpointType: 1,
      }),
  },
  // --- Configs, partitions, deletion ---
  {
    name: "DescribeConfigs: a topic with overrides (every config name, value and source)",
    apis: [ApiKey.DescribeConfigs],
    run: (s) => describeTopicConfigs(s, TOPIC_B),
  },
  {
    name: "DescribeConfigs: unknown topic",
    apis: [ApiKey.DescribeConfigs],
    run: (s) => describeTopicConfigs(s, "diff-no-such-topic"),
  },
  {
    name: 'DescribeConfigs: the cluster-wide dynamic broker defaults (BROKER "")',
    apis: [ApiKey.DescribeConfigs],
    run: (s) =>
      s.request(ApiKey.DescribeConfigs, {
        resources: [{ resourceType: 4, resourceName: "", configurationKeys: null }],
        includeSynonyms: false,
        includeDocumentation: false,
      }),
  },
  {
    name: "CreatePartitions: 3 -> 4 (ok, then Metadata)",
    apis: [ApiKey.CreatePartitions, ApiKey.Metadata],
    run: async (s) => {
      const res = await s.request(ApiKey.CreatePartitions, {
        topics: [{ name: TOPIC_B, count: 4, assignments: null }],
        timeoutMs: 30_000,
        validateOnly: false,
      });
      if (res.results[0]?.errorCode === ErrorCode.NONE) await waitForTopic(s, TOPIC_B, 4);
      return res;
    },
  },
  {
    name: "CreatePartitions: decreasing (4 -> 2); the same count; unknown topic",
    apis: [ApiKey.CreatePartitions],
    run: async (s) => {
      const create = (name: string, count: number) =>
        s.request(ApiKey.CreatePartitions, {
          topics: [{ name, count, assignments: null }],
          timeoutMs: 30_000,
          validateOnly: false,
        });
      return {
        decrease: await create(TOPIC_B, 2),
        same: await create(TOPIC_B, 4),
        unknown: await create("diff-no-such-topic", 2),
      };
    },
  },
  {
    name: "DeleteTopics: ok (a fresh topic), then Metadata shows it unknown",
    apis: [ApiKey.DeleteTopics, ApiKey.CreateTopics, ApiKey.Metadata],
    run: async (s) => {
      const created = await createTopic(s, "diff-delete-me", 1, 1);
      expectOk("CreateTopics diff-delete-me", created.topics[0]!.errorCode, s);
      const deleted = await s.request(ApiKey.DeleteTopics, {
        topics: [{ name: "diff-delete-me", topicId: ZERO_UUID }],
        topicNames: ["diff-delete-me"],
        timeoutMs: 30_000,
      });
      // The deletion reaches the broker's metadata asynchronously: poll (up to 10 s).
      const deadline = Date.now() + 10_000;
      for (;;) {
        const metadata = await s.request(ApiKey.Metadata, {
          topics: [{ name: "diff-delete-me", topicId: ZERO_UUID }],
          allowAutoTopicCreation: false,
          includeTopicAuthorizedOperations: false,
        });
        const gone = metadata.topics[0]?.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        if (gone || Date.now() > deadline) return { deleted, metadata };
        await sleep(50);
      }
    },
  },
  {
    name: "DeleteTopics: unknown topic",
    apis: [ApiKey.DeleteTopics],
    run: (s) =>
      s.request(ApiKey.DeleteTopics, {
        topics: [{ name: "diff-no-such-topic", topicId: ZERO_UUID }],
        topicNames: ["diff-no-such-topic"],
        timeoutMs: 30_000,
      }),
  },
  // --- APIs being added to Tidelog: skipped until its ApiVersions advertises them ---
  {
    name: "IncrementalAlterConfigs: SET and DELETE on a topic, then DescribeConfigs",
    apis: [ApiKey.IncrementalAlterConfigs, ApiKey.DescribeConfigs],
    run: async (s) => ({
      alter: await s.request(ApiKey.IncrementalAlterConfigs, {
        resources: [{
          resourceType: 2,
          resourceName: TOPIC_B,
          configs: [
            { name: "retention.ms", configOperation: 0, value: "7200000" },
            { name: "max.message.bytes", configOperation: 1, value: null },
          ],
        }],
        validateOnly: false,
      }),
      describe: await describeSettled(
        s,
        TOPIC_B,
        (c) =>
          c.get("retention.ms")?.value === "7200000" && c.get("max.message.bytes")?.source !== 1,
      ),
    }),
  },
  {
    name: "IncrementalAlterConfigs: unknown config; bad value; unknown topic; validateOnly",
    apis: [ApiKey.IncrementalAlterConfigs],
    run: async (s) => {
      const alter = (name: string, key: string, value: string, validateOnly = false) =>
        s.request(ApiKey.IncrementalAlterConfigs, {
          resources: [{
            resourceType: 2,
            resourceName: name,
            configs: [{ name: key, configOperation: 0, value }],
          }],
          validateOnly,
        });
      return {
        unknownConfig: await alter(TOPIC_B, "no.such.config", "1"),
        badValue: await alter(TOPIC_B, "retention.ms", "soon"),
        unknownTopic: await alter("diff-no-such-topic", "retention.ms", "1000"),
        validateOnly: await alter(TOPIC_B, "retention.ms", "1000", true),
      };
    },
  },
  {
    name: "AlterConfigs: replaces a topic's overrides, then DescribeConfigs; a bad value",
    apis: [ApiKey.AlterConfigs, ApiKey.DescribeConfigs],
    run: async (s) => {
      const alter = (key: string, value: string) =>
        s.request(ApiKey.AlterConfigs, {
          resources: [{ resourceType: 2, resourceName: TOPIC_B, configs: [{ name: key, value }] }],
          validateOnly: false,
        });
      return {
        alter: await alter("segment.ms", "3600000"),
        describe: await describeSettled(
          s,
          TOPIC_B,
          (c) => c.get("segment.ms")?.value === "3600000" && c.get("retention.ms")?.source !== 1,
        ),
        badValue: await alter("segment.ms", "soon"),
      };
    },
  },
  {
    name: "DescribeLogDirs: one partition",
    apis: [ApiKey.DescribeLogDirs],
    run: (s) =>
      s.request(ApiKey.DescribeLogDirs, { topics: [{ topic: TOPIC_A, partitions: [0] }] }),
  },
  {
    name: "DescribeProducers: none (plain batches); an idempotent producer after InitProducerId",
    apis: [ApiKey.DescribeProducers, ApiKey.InitProducerId, ApiKey.Produce],
    run: async (s) => {
      const none = await s.request(ApiKey.DescribeProducers, {
        topics: [{ name: TOPIC_A, partitionIndexes: [0] }],
      });
      const init = await retrying(() =>
        s.request(ApiKey.InitProducerId, {
          transactionalId: null,
          transactionTimeoutMs: 60_000,
          producerId: -1n,
          producerEpoch: -1,
        }), (res) => res.errorCode);
      const produced = await produce(
        s,
        TOPIC_B,
        1,
        idempotentBatch(BATCH_2, init.producerId, init.producerEpoch),
        -1,
      );
      const one = await s.request(ApiKey.DescribeProducers, {
        topics: [{ name: TOPIC_B, partitionIndexes: [1] }, {
          name: "diff-no-such-topic",
          partitionIndexes: [0],
        }],
      });
      return { none, init, produced, one };
    },
  },
  {
    name: "ElectLeaders: preferred, not needed; unknown topic; all partitions",
    apis: [ApiKey.ElectLeaders],
    run: async (s) => ({
      named: await s.request(ApiKey.ElectLeaders, {
        electionType: 0,
        topicPartitions: [
          { topic: TOPIC_B, partitions: [0, 1] },
          { topic: "diff-no-such-topic", partitions: [0] },
        ],
        timeoutMs: 10_000,
      }),
      all: await s.request(ApiKey.ElectLeaders, {
        electionType: 0,
        topicPartitions: null,
        timeoutMs: 10_000,
      }),
    }),
  },
  {
    name: "ListPartitionReassignments: all; one topic",
    apis: [ApiKey.ListPartitionReassignments],
    run: async (s) => ({
      all: await s.request(ApiKey.ListPartitionReassignments, { timeoutMs: 10_000, topics: null }),
      topic: await s.request(ApiKey.ListPartitionReassignments, {
        timeoutMs: 10_000,
        topics: [{ name: TOPIC_B, partitionIndexes: [0, 1] }],
      }),
    }),
  },
  {
    name: "AlterPartitionReassignments: cancelling when none is in progress",
    apis: [ApiKey.AlterPartitionReassignments],
    run: (s) =>
      s.request(ApiKey.AlterPartitionReassignments, {
        timeoutMs: 10_000,
        topics: [{ name: TOPIC_B, partitions: [{ partitionIndex: 0, replicas: null }] }],
      }),
  },
  {
    name: "DescribeAcls / CreateAcls / DeleteAcls: no authorizer configured",
    apis: [ApiKey.DescribeAcls, ApiKey.CreateAcls, ApiKey.DeleteAcls],
    run: async (s) => {
      const acl = {
        resourceType: 2,
        resourceName: TOPIC_A,
        resourcePatternType: 3,
        principal: "User:alice",
        host: "*",
        operation: 3,
        permissionType: 3,
      };
      return {
        describe: await s.request(ApiKey.DescribeAcls, {
          resourceTypeFilter: 1,
          resourceNameFilter: null,
          patternTypeFilter: 1,
          principalFilter: null,
          hostFilter: null,
          operation: 1,
          permissionType: 1,
        }),
        create: await s.request(ApiKey.CreateAcls, { creations: [acl] }),
        delete: await s.request(ApiKey.DeleteAcls, {
          filters: [{
            resourceTypeFilter: 2,
            resourceNameFilter: TOPIC_A,
            patternTypeFilter: 3,
            principalFilter: "User:alice",
            hostFilter: "*",
            operation: 3,
            permissionType: 3,
          }],
        }),
      };
    },
  },
  {
    name: "DescribeTopicPartitions: a topic; an unknown topic",
    apis: [ApiKey.DescribeTopicPartitions],
    run: (s) =>
      s.request(ApiKey.DescribeTopicPartitions, {
        topics: [{ name: TOPIC_B }, { name: "diff-no-such-topic" }],
        responsePartitionLimit: 2000,
        cursor: null,
      }),
  },
  {
    name:
      "DeleteRecords: up to offset 1 (then ListOffsets earliest); beyond the end; unknown partition",
    apis: [ApiKey.DeleteRecords, ApiKey.ListOffsets],
    run: async (s) => {
      const del = (partitionIndex: number, offset: bigint) =>
        s.request(ApiKey.DeleteRecords, {
          topics: [{ name: TOPIC_A, partitions: [{ partitionIndex, offset }] }],
          timeoutMs: 10_000,
        });
      return {
        ok: await del(0, 1n),
        earliest: await listOffsets(s, TOPIC_A, -2n),
        beyond: await del(0, 100n),
        unknownPartition: await del(9, 1n),
      };
    },
  },
];

function joinRequest(memberId: string) {
  return {
    groupId: GROUP,
    sessionTimeoutMs: 30_000,
    rebalanceTimeoutMs: 60_000,
    memberId,
    groupInstanceId: null,
    protocolType: "consumer",
    protocols: [{
      name: "range",
      metadata: consumerProtocol("ConsumerProtocolSubscription", {
        topics: [TOPIC_A],
        userData: null,
        ownedPartitions: [],
        generationId: -1,
        rackId: null,
      }),
    }],
    reason: null,
  };
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A `records` field as its batches' headers and records (a readable diff), else hex. */
function decodeBatches(b: Uint8Array): unknown {
  try {
    const batches: unknown[] = [];
    for (let pos = 0; pos + 61 <= b.length;) {
      const h = readBatchHeader(b, pos);
      if (pos + h.sizeInBytes > b.length) break;
      const one = b.subarray(pos, pos + h.sizeInBytes);
      batches.push({
        ...h,
        records: decodeRecords(one).map((r) => ({
          ...r,
          key: r.key === null ? null : new TextDecoder().decode(r.key),
          value: r.value === null ? null : new TextDecoder().decode(r.value),
          headers: r.headers.map((x) => ({
            key: x.key,
            value: x.value === null ? null : new TextDecoder().decode(x.value),
          })),
        })),
      });
      pos += h.sizeInBytes;
    }
    return { batches, bytes: b.length };
  } catch {
    return hex(b);
  }
}

/**
 * Applies {@linkcode NORMALISATIONS} and turns byte arrays into comparable values. `path`
 * has array indices dropped.
 */
function normalise(value: unknown, side: Side, path = ""): unknown {
  for (const n of NORMALISATIONS) {
    if (path !== "" && n.path.test(path)) value = n.apply(value, side);
  }
  if (value instanceof Uint8Array) {
    return /(^|\.)records$/.test(path) ? decodeBatches(value) : hex(value);
  }
  if (Array.isArray(value)) return value.map((v) => normalise(v, side, `${path}[]`));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = normalise(v, side, path === "" ? k : `${path}.${k}`);
    }
    return out;
  }
  return value;
}

/** Every differing leaf of `a` (Kafka) and `b` (Tidelog). */
function differences(a: unknown, b: unknown, path = "", out: Difference[] = []): Difference[] {
  const isObj = (x: unknown) => x !== null && typeof x === "object" && !Array.isArray(x);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const p = `${path}[${i}]`;
      if (i >= a.length) out.push({ path: p, kafka: "<absent>", tidelog: b[i] });
      else if (i >= b.length) out.push({ path: p, kafka: a[i], tidelog: "<absent>" });
      else differences(a[i], b[i], p, out);
    }
  } else if (isObj(a) && isObj(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) {
      const p = path === "" ? k : `${path}.${k}`;
      if (!(k in ao)) out.push({ path: p, kafka: "<absent>", tidelog: bo[k] });
      else if (!(k in bo)) out.push({ path: p, kafka: ao[k], tidelog: "<absent>" });
      else differences(ao[k], bo[k], p, out);
    }
  } else if (!Object.is(a, b)) {
    out.push({ path: path || "<root>", kafka: a, tidelog: b });
  }
  return out;
}

function show(v: unknown): string {
  const text = typeof v === "string" ? v : JSON.stringify(
    v,
    (_k, x) => typeof x === "bigint" ? `${x}n` : x,
  ) ?? String(v);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

/** Error codes are shown with their names. */
function showField(path: string, v: unknown): string {
  return /errorCode$/i.test(path) && typeof v === "number" ? `${v} (${errorName(v)})` : show(v);
}

function formatDifferences(diffs: Difference[]): string {
  return diffs.map((d) =>
    `  ${d.path}\n    kafka:   ${showField(d.path, d.kafka)}\n    tidelog: ${
      showField(d.path, d.tidelog)
    }`
  ).join("\n");
}

/** Runs `c` on one side; a thrown error becomes the compared value. */
async function runSide(c: Case, side: Side): Promise<unknown> {
  try {
    return await c.run(side);
  } catch (err) {
    return { thrown: (err as Error).message };
  }
}

Deno.test({
  name: "differential: Tidelog answers the scripted requests as Apache Kafka 4.1.2 does",
  ...needsJava(),
}, async (t) => {
  const began = performance.now();
  await using kafka = await KafkaReference.start({ size: 1 });
  await using tidelog = await TestCluster.start({
    size: 1,
    args: ["--group-initial-rebalance-delay-ms", "0"],
  });
  await tidelog.waitForBrokers(1);
  const script = new Script();
  const k = new Side("kafka", kafka.nodes[0]!.port, script);
  const tl = new Side("tidelog", tidelog.nodes[0]!.kafkaPort, script);
  script.kafka = k;
  script.tidelog = tl;
  const mismatches: { name: string; diffs: Difference[]; known: string | undefined }[] = [];
  const skipped: string[] = [];
  const fixed: string[] = [];
  const intentional = new Set<string>();
  try {
    for (const side of [k, tl]) {
      const av = await side.request(ApiKey.ApiVersions, API_VERSIONS_REQUEST, 3);
      for (const a of av.apiKeys) {
        side.versions.set(a.apiKey, { min: a.minVersion, max: a.maxVersion });
      }
    }
    for (const c of CASES) {
      const missing = c.apis.filter((api) => !script.served(api));
      if (missing.length > 0) {
        const why = `skipped: not served yet: ${missing.map((a) => apiName(a)).join(", ")}`;
        skipped.push(`${c.name} (${why})`);
        await t.step({ name: `${c.name} (${why})`, ignore: true, fn: () => {} });
        continue;
      }
      const name = c.known === undefined ? c.name : `MISMATCH (known) ${c.name}`;
      await t.step(name, async () => {
        const [kr, tr] = await Promise.all([runSide(c, k), runSide(c, tl)]);
        const kn = normalise(kr, k);
        const tn = normalise(tr, tl);
        if (DUMP !== undefined) {
          await Deno.writeTextFile(
            DUMP,
            JSON.stringify(
              { case: c.name, kafka: kn, tidelog: tn },
              (_k, x) => typeof x === "bigint" ? `${x}n` : x,
            ) + "\n",
            { append: true },
          );
        }
        const all = c.compare ? c.compare(kr, tr) : differences(kn, tn);
        const diffs = all.filter((d) => {
          const why = c.intentional?.find((i) => i.path.test(d.path))?.why;
          if (why !== undefined) intentional.add(`${d.path}: ${why}`);
          return why === undefined;
        });
        if (diffs.length === 0 && c.known !== undefined) fixed.push(c.name);
        if (diffs.length > 0) {
          mismatches.push({ name: c.name, diffs, known: c.known });
          const versions = c.apis.map((a) => `${apiName(a)} v${script.version(a)}`).join(", ");
          throw new Error(
            `Tidelog differs from Kafka (${versions}):\n${formatDifferences(diffs)}` +
              (c.known === undefined ? "" : `\nKnown mismatch: ${c.known}`),
          );
        }
      });
    }
  } finally {
    await k.close();
    await tl.close();
    // deno-lint-ignore no-console -- the summary a person reads after the run
    console.error(
      `\ndifferential: ${CASES.length} cases, ${mismatches.length} mismatching, ${skipped.length} skipped; ` +
        `Kafka started in ${kafka.startupMs.format} + ${kafka.startupMs.ready} ms; ` +
        `${Math.round(performance.now() - began)} ms in all` +
        mismatches.map((m) =>
          `\n- MISMATCH${
            m.known === undefined ? " (new)" : ""
          } ${m.name}: ${m.diffs.length} field(s)` +
          (m.known === undefined ? "" : `\n    ${m.known}`)
        ).join("") +
        skipped.map((s) => `\n- ${s}`).join("") +
        fixed.map((f) => `\n- matches Kafka now, drop its known mark: ${f}`).join("") +
        [...intentional].map((i) => `\n- intentional: ${i}`).join(""),
    );
  }
});
