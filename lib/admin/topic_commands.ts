/**
 * `tidelog topic create|list|describe|alter-config|delete`: CreateTopics v7, Metadata v12,
 * DescribeConfigs v4, IncrementalAlterConfigs v1 and DeleteTopics v6. Changes go to any
 * bootstrap broker, which forwards them to the controller and answers once its own
 * metadata shows them (so a `describe` right after sees the change).
 */
import { ApiKey, ErrorCode, type MetadataResponseTopic, ZERO_UUID } from "../protocol/mod.ts";
import { AdminUsageError, intFlag, keyValueFlag, listFlag } from "./_args.ts";
import type { CommandContext, VerbSpec } from "./_command.ts";
import { formatJson, formatTable } from "./_output.ts";
import { type AdminClient, KafkaCallError, REQUEST_TIMEOUT_MS } from "./admin_client.ts";

/** DescribeConfigs resource type of a topic. */
const TOPIC_RESOURCE = 2;
/** DescribeConfigs config source of a topic's own override (Kafka's DYNAMIC_TOPIC_CONFIG). */
const SOURCE_TOPIC_CONFIG = 1;
const OP_SET = 0;
const OP_DELETE = 1;

/** One topic as `topic list` and `topic describe` print it. */
interface TopicSummary {
  name: string;
  topicId: string;
  internal: boolean;
  partitions: number;
  replicationFactor: number;
}

function summarize(t: MetadataResponseTopic): TopicSummary {
  return {
    name: t.name ?? "",
    topicId: t.topicId,
    internal: t.isInternal,
    partitions: t.partitions.length,
    replicationFactor: Math.max(0, ...t.partitions.map((p) => p.replicaNodes.length)),
  };
}

/** The topic's overridden configs (DescribeConfigs v4, source = the topic's own). */
async function topicOverrides(client: AdminClient, name: string): Promise<Record<string, string>> {
  const res = await client.retrying(async () =>
    await client.request(await client.any(), ApiKey.DescribeConfigs, 4, {
      resources: [{ resourceType: TOPIC_RESOURCE, resourceName: name, configurationKeys: null }],
      includeSynonyms: false,
      includeDocumentation: false,
    })
  );
  const r = res.results[0];
  if (r === undefined) {
    throw new KafkaCallError(`topic ${name}`, ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
  }
  if (r.errorCode !== ErrorCode.NONE) {
    throw new KafkaCallError(`topic ${name}`, r.errorCode, r.errorMessage);
  }
  const out: Record<string, string> = {};
  for (const c of r.configs.filter((c) => c.configSource === SOURCE_TOPIC_CONFIG)) {
    out[c.name] = c.isSensitive ? "(sensitive)" : c.value ?? "";
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

const create: VerbSpec = {
  summary: "create a topic (partitions and replication factor default to the broker's)",
  positionals: ["NAME"],
  flags: {
    partitions: { type: "string", arg: "N", doc: "number of partitions" },
    "replication-factor": { type: "string", arg: "N", doc: "replicas of each partition" },
    config: { type: "string", multiple: true, arg: "K=V", doc: "a topic config (repeatable)" },
  },
  async run({ args, client, io }: CommandContext) {
    const name = args.positionals[0]!;
    const partitions = intFlag(args.values, "partitions", 1, 1_000_000) ?? -1;
    const replicationFactor = intFlag(args.values, "replication-factor", 1, 32767) ?? -1;
    const configs = keyValueFlag(args.values, "config");
    const created = await client.retrying(async () => {
      const res = await client.request(await client.any(), ApiKey.CreateTopics, 7, {
        topics: [{
          name,
          numPartitions: partitions,
          replicationFactor,
          assignments: [],
          configs: [...configs].map(([k, value]) => ({ name: k, value })),
        }],
        timeoutMs: REQUEST_TIMEOUT_MS,
        validateOnly: false,
      });
      const t = res.topics[0];
      if (t === undefined) {
        throw new KafkaCallError("", ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
      }
      if (t.errorCode !== ErrorCode.NONE) throw new KafkaCallError("", t.errorCode, t.errorMessage);
      return t;
    });
    // Wait until every partition has a leader, so a produce right after finds one.
    const topic = await client.retrying(async () => {
      const t = await client.topicMetadata(name, "");
      if (t.partitions.some((p) => p.leaderId < 0)) {
        throw new KafkaCallError(`topic ${name}`, ErrorCode.LEADER_NOT_AVAILABLE);
      }
      return t;
    });
    const summary = { ...summarize(topic), topicId: created.topicId };
    if (args.output === "json") {
      io.stdout(formatJson({ ...summary, configs: Object.fromEntries(configs) }));
    } else {
      io.stdout(
        `created topic ${name}: ${summary.partitions} partitions, replication factor ` +
          `${summary.replicationFactor}, id ${summary.topicId}\n`,
      );
    }
    return 0;
  },
};

const list: VerbSpec = {
  summary: "list topics with their partition count and replication factor",
  positionals: [],
  flags: {
    "exclude-internal": { type: "boolean", doc: "leave out __consumer_offsets and the like" },
  },
  async run({ args, client, io }: CommandContext) {
    const md = await client.retrying(() => client.metadata(null));
    const topics = md.topics.map(summarize)
      .filter((t) => !(args.values["exclude-internal"] === true && t.internal))
      .sort((a, b) => a.name.localeCompare(b.name));
    if (args.output === "json") {
      io.stdout(formatJson(topics));
    } else {
      io.stdout(
        formatTable(
          ["TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL"],
          topics.map((t) => [
            t.name,
            String(t.partitions),
            String(t.replicationFactor),
            t.internal ? "yes" : "no",
          ]),
        ) + "\n",
      );
    }
    return 0;
  },
};

const describe: VerbSpec = {
  summary: "partitions (leader, replicas, ISR) and overridden configs of a topic",
  positionals: ["NAME"],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const name = args.positionals[0]!;
    const topic = await client.topicMetadata(name, "");
    const configs = await topicOverrides(client, name);
    const partitions = [...topic.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex)
      .map((p) => ({
        partition: p.partitionIndex,
        leader: p.leaderId,
        leaderEpoch: p.leaderEpoch,
        replicas: [...p.replicaNodes],
        isr: [...p.isrNodes],
        offlineReplicas: [...p.offlineReplicas],
      }));
    const s = summarize(topic);
    if (args.output === "json") {
      io.stdout(formatJson({
        name: s.name,
        topicId: s.topicId,
        internal: s.internal,
        replicationFactor: s.replicationFactor,
        configs,
        partitions,
      }));
      return 0;
    }
    const configText = Object.entries(configs).map(([k, v]) => `${k}=${v}`).join(", ");
    io.stdout(
      `topic ${s.name}  id ${s.topicId}  partitions ${s.partitions}  replication-factor ` +
        `${s.replicationFactor}${s.internal ? "  internal" : ""}\n` +
        `configs: ${configText === "" ? "(none overridden)" : configText}\n\n` +
        formatTable(
          ["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE"],
          partitions.map((p) => [
            String(p.partition),
            p.leader < 0 ? "none" : String(p.leader),
            String(p.leaderEpoch),
            p.replicas.join(","),
            p.isr.join(","),
            p.offlineReplicas.join(","),
          ]),
        ) + "\n",
    );
    return 0;
  },
};

const alterConfig: VerbSpec = {
  summary: "set or delete topic config overrides (IncrementalAlterConfigs)",
  positionals: ["NAME"],
  flags: {
    set: { type: "string", multiple: true, arg: "K=V", doc: "set an override (repeatable)" },
    delete: { type: "string", multiple: true, arg: "K", doc: "remove an override (repeatable)" },
  },
  async run({ args, client, io }: CommandContext) {
    const name = args.positionals[0]!;
    const set = keyValueFlag(args.values, "set");
    const deleted = listFlag(args.values, "delete");
    if (set.size === 0 && deleted.length === 0) {
      throw new AdminUsageError("topic alter-config: give at least one --set K=V or --delete K");
    }
    const both = deleted.find((k) => set.has(k));
    if (both !== undefined) {
      throw new AdminUsageError(`topic alter-config: ${both} is both set and deleted`);
    }
    await client.retrying(async () => {
      const res = await client.request(await client.any(), ApiKey.IncrementalAlterConfigs, 1, {
        resources: [{
          resourceType: TOPIC_RESOURCE,
          resourceName: name,
          configs: [
            ...[...set].map(([k, value]) => ({ name: k, configOperation: OP_SET, value })),
            ...deleted.map((k) => ({ name: k, configOperation: OP_DELETE, value: null })),
          ],
        }],
        validateOnly: false,
      });
      const r = res.responses[0];
      if (r === undefined) {
        throw new KafkaCallError("", ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
      }
      if (r.errorCode !== ErrorCode.NONE) throw new KafkaCallError("", r.errorCode, r.errorMessage);
    });
    const configs = await topicOverrides(client, name);
    if (args.output === "json") {
      io.stdout(formatJson({ name, configs }));
    } else {
      const text = Object.entries(configs).map(([k, v]) => `${k}=${v}`).join(", ");
      io.stdout(`updated topic ${name}; configs: ${text === "" ? "(none overridden)" : text}\n`);
    }
    return 0;
  },
};

const del: VerbSpec = {
  summary: "delete a topic and its data",
  positionals: ["NAME"],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const name = args.positionals[0]!;
    await client.retrying(async () => {
      const res = await client.request(await client.any(), ApiKey.DeleteTopics, 6, {
        topics: [{ name, topicId: ZERO_UUID }],
        timeoutMs: REQUEST_TIMEOUT_MS,
      });
      const r = res.responses[0];
      if (r === undefined) {
        throw new KafkaCallError("", ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
      }
      if (r.errorCode !== ErrorCode.NONE) throw new KafkaCallError("", r.errorCode, r.errorMessage);
    });
    io.stdout(
      args.output === "json" ? formatJson({ name, deleted: true }) : `deleted topic ${name}\n`,
    );
    return 0;
  },
};

/** The verbs of `tidelog topic`. */
export const TOPIC_VERBS: Readonly<Record<string, VerbSpec>> = {
  create,
  list,
  describe,
  "alter-config": alterConfig,
  delete: del,
};
