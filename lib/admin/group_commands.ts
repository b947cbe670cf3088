/**
 * `tidelog group list|describe|reset-offsets|delete`, as Kafka's kafka-consumer-groups:
 * ListGroups v4 (asked of every broker: each lists the groups it coordinates),
 * DescribeGroups v5, OffsetFetch v8, OffsetCommit v8 and DeleteGroups v2 (at the group's
 * coordinator), and ListOffsets v7 (at each partition's leader) for log end offsets and
 * reset targets.
 */
import { ApiKey, type DescribeGroupsResponseDescribedGroup, ErrorCode } from "../protocol/mod.ts";
import { AdminUsageError, listFlag, stringFlag } from "./_args.ts";
import type { CommandContext, VerbSpec } from "./_command.ts";
import { decodeAssignment } from "./_group_member.ts";
import { formatJson, formatTable } from "./_output.ts";
import { type AdminClient, KafkaCallError, partitionKey } from "./admin_client.ts";

/** A group as DescribeGroups tells it, members' assignments decoded. */
interface GroupDescription {
  group: string;
  coordinator: number;
  state: string;
  protocolType: string;
  protocol: string;
  members: {
    memberId: string;
    groupInstanceId: string | null;
    clientId: string;
    host: string;
    assignment: { topic: string; partitions: number[] }[];
  }[];
}

async function describeGroup(client: AdminClient, group: string): Promise<GroupDescription> {
  const { nodeId, g } = await client.retrying(async () => {
    const { nodeId, conn } = await client.coordinator(group);
    const res = await client.request(conn, ApiKey.DescribeGroups, 5, {
      groups: [group],
      includeAuthorizedOperations: false,
    });
    const g: DescribeGroupsResponseDescribedGroup | undefined = res.groups[0];
    if (g === undefined) {
      throw new KafkaCallError(`group ${group}`, ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
    }
    if (g.errorCode !== ErrorCode.NONE) throw new KafkaCallError(`group ${group}`, g.errorCode);
    return { nodeId, g };
  });
  return {
    group,
    coordinator: nodeId,
    state: g.groupState,
    protocolType: g.protocolType,
    protocol: g.protocolData,
    members: g.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId,
      clientId: m.clientId,
      host: m.clientHost,
      assignment: g.protocolType === "consumer"
        ? [...decodeAssignment(m.memberAssignment)].map(([topic, partitions]) => ({
          topic,
          partitions,
        }))
        : [],
    })),
  };
}

/** Committed offsets (≥ 0) of `group`, topic → partition → offset; `topics` null: all. */
async function committedOffsets(
  client: AdminClient,
  group: string,
  topics: { name: string; partitions: number[] }[] | null,
): Promise<Map<string, Map<number, number>>> {
  const g = await client.retrying(async () => {
    const { conn } = await client.coordinator(group);
    const res = await client.request(conn, ApiKey.OffsetFetch, 8, {
      groups: [{
        groupId: group,
        memberId: null,
        memberEpoch: -1,
        topics: topics === null
          ? null
          : topics.map((t) => ({ name: t.name, partitionIndexes: t.partitions })),
      }],
      requireStable: false,
    });
    const g = res.groups[0];
    if (g === undefined) {
      throw new KafkaCallError(`group ${group}`, ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
    }
    if (g.errorCode !== ErrorCode.NONE) throw new KafkaCallError(`group ${group}`, g.errorCode);
    return g;
  });
  const out = new Map<string, Map<number, number>>();
  for (const t of g.topics) {
    for (const p of t.partitions) {
      if (p.errorCode !== ErrorCode.NONE) {
        throw new KafkaCallError(`${t.name}-${p.partitionIndex}`, p.errorCode);
      }
      if (p.committedOffset < 0n) continue;
      const m = out.get(t.name) ?? new Map<number, number>();
      m.set(p.partitionIndex, Number(p.committedOffset));
      out.set(t.name, m);
    }
  }
  return out;
}

const list: VerbSpec = {
  summary: "list the consumer groups of every broker",
  positionals: [],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const md = await client.retrying(() => client.metadata([]));
    const groups = (await Promise.all(md.brokers.map(async (b) => {
      const res = await client.retrying(async () =>
        await client.request(await client.broker(b.nodeId), ApiKey.ListGroups, 4, {
          statesFilter: [],
        })
      );
      if (res.errorCode !== ErrorCode.NONE) {
        throw new KafkaCallError(`broker ${b.nodeId}`, res.errorCode);
      }
      return res.groups.map((g) => ({
        group: g.groupId,
        state: g.groupState,
        protocolType: g.protocolType,
        coordinator: b.nodeId,
      }));
    }))).flat().sort((a, b) => a.group.localeCompare(b.group));
    if (args.output === "json") {
      io.stdout(formatJson(groups));
    } else {
      io.stdout(
        formatTable(
          ["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"],
          groups.map((g) => [g.group, g.state, g.protocolType, String(g.coordinator)]),
        ) + "\n",
      );
    }
    return 0;
  },
};

const describe: VerbSpec = {
  summary: "state, members and, per partition, committed offset, log end offset and lag",
  positionals: ["ID"],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const group = args.positionals[0]!;
    const d = await describeGroup(client, group);
    const committed = await committedOffsets(client, group, null);
    // Kafka answers an unknown group with the Dead state and no offsets.
    if (d.state === "Dead" && committed.size === 0) {
      throw new KafkaCallError("", ErrorCode.GROUP_ID_NOT_FOUND, `no group ${group}`);
    }
    const owner = new Map<string, string>();
    for (const m of d.members) {
      for (const a of m.assignment) {
        for (const p of a.partitions) owner.set(partitionKey(a.topic, p), m.memberId);
      }
    }
    const keys = new Map<string, { topic: string; partition: number }>();
    for (const [topic, parts] of committed) {
      for (const partition of parts.keys()) {
        keys.set(partitionKey(topic, partition), { topic, partition });
      }
    }
    for (const m of d.members) {
      for (const a of m.assignment) {
        for (const partition of a.partitions) {
          keys.set(partitionKey(a.topic, partition), { topic: a.topic, partition });
        }
      }
    }
    const partitions = [...keys.values()].sort((a, b) =>
      a.topic.localeCompare(b.topic) || a.partition - b.partition
    );
    const ends = await client.listOffsets(partitions.map((p) => ({ ...p, timestamp: -1n })));
    const offsets = partitions.map(({ topic, partition }) => {
      const key = partitionKey(topic, partition);
      const committedOffset = committed.get(topic)?.get(partition) ?? null;
      const end = ends.get(key);
      const logEndOffset = end?.offset ?? null;
      return {
        topic,
        partition,
        committedOffset,
        logEndOffset,
        lag: committedOffset !== null && logEndOffset !== null
          ? Math.max(0, logEndOffset - committedOffset)
          : null,
        memberId: owner.get(key) ?? null,
      };
    });
    if (args.output === "json") {
      io.stdout(formatJson({ ...d, offsets }));
      return 0;
    }
    const dash = (n: number | null) => n === null ? "-" : String(n);
    let text = `group ${d.group}  state ${d.state}  protocol ${d.protocolType || "-"}/` +
      `${d.protocol || "-"}  coordinator ${d.coordinator}  members ${d.members.length}\n`;
    if (d.members.length > 0) {
      text += "\n" + formatTable(
        ["MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNMENT"],
        d.members.map((m) => [
          m.memberId,
          m.clientId,
          m.host,
          m.assignment.map((a) => `${a.topic}:${a.partitions.join(",")}`).join(" ") || "-",
        ]),
      ) + "\n";
    }
    if (offsets.length > 0) {
      text += "\n" + formatTable(
        ["TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER-ID"],
        offsets.map((o) => [
          o.topic,
          String(o.partition),
          dash(o.committedOffset),
          dash(o.logEndOffset),
          dash(o.lag),
          o.memberId ?? "-",
        ]),
      ) + "\n";
    }
    io.stdout(text);
    return 0;
  },
};

/** The states in which a group's offsets may be reset (no member could overwrite them). */
const RESETTABLE_STATES = new Set(["Empty", "Dead"]);

const resetOffsets: VerbSpec = {
  summary: "plan (or with --execute, commit) new offsets for a group's partitions of topics",
  usage: "--topic T... (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO8601) " +
    "[--execute]",
  positionals: ["ID"],
  flags: {
    topic: { type: "string", multiple: true, arg: "T", doc: "a topic to reset (repeatable)" },
    "to-earliest": { type: "boolean", doc: "to each partition's log start" },
    "to-latest": { type: "boolean", doc: "to each partition's end" },
    "to-offset": { type: "string", arg: "N", doc: "to offset N (kept within the log)" },
    "to-datetime": {
      type: "string",
      arg: "ISO8601",
      doc: "to the first record at or after the time (e.g. 2026-01-31T12:00:00Z)",
    },
    execute: { type: "boolean", doc: "commit the plan (the group must be Empty)" },
  },
  async run({ args, client, io }: CommandContext) {
    const group = args.positionals[0]!;
    const topics = [...new Set(listFlag(args.values, "topic"))];
    if (topics.length === 0) throw new AdminUsageError("group reset-offsets: missing --topic T");
    const choices = ["to-earliest", "to-latest", "to-offset", "to-datetime"]
      .filter((f) => args.values[f] !== undefined);
    if (choices.length !== 1) {
      throw new AdminUsageError(
        "group reset-offsets: give exactly one of --to-earliest, --to-latest, --to-offset, " +
          "--to-datetime",
      );
    }
    let toOffset: number | null = null;
    let timestamp: bigint;
    if (args.values["to-earliest"] === true) {
      timestamp = -2n;
    } else if (args.values["to-latest"] === true) {
      timestamp = -1n;
    } else if (args.values["to-offset"] !== undefined) {
      const raw = stringFlag(args.values, "to-offset")!;
      if (!/^\d+$/.test(raw)) {
        throw new AdminUsageError(`--to-offset: expected an offset ≥ 0, got "${raw}"`);
      }
      toOffset = Number(raw);
      timestamp = -2n;
    } else {
      const raw = stringFlag(args.values, "to-datetime")!;
      const ms = /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : NaN;
      if (Number.isNaN(ms)) {
        throw new AdminUsageError(
          `--to-datetime: expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got "${raw}"`,
        );
      }
      timestamp = BigInt(ms);
    }
    const execute = args.values.execute === true;
    const d = await describeGroup(client, group);
    if (execute && !RESETTABLE_STATES.has(d.state)) {
      throw new KafkaCallError(
        "",
        ErrorCode.NON_EMPTY_GROUP,
        `group ${group} is ${d.state} with ${d.members.length} member(s); offsets can only be ` +
          "reset while it is Empty: stop its consumers first",
      );
    }
    const parts: { topic: string; partition: number }[] = [];
    for (const topic of topics) {
      const t = await client.topicMetadata(topic);
      for (const p of t.partitions) parts.push({ topic, partition: p.partitionIndex });
    }
    parts.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    const current = await committedOffsets(
      client,
      group,
      topics.map((name) => ({
        name,
        partitions: parts.filter((p) => p.topic === name).map((p) => p.partition),
      })),
    );
    const queries = parts.map((p) => ({ ...p, timestamp }));
    // --to-offset stays within [log start, end], as kafka-consumer-groups does.
    const bounds = toOffset === null ? null : await client.listOffsets([
      ...parts.map((p) => ({ ...p, timestamp: -2n })),
    ]);
    const ends = await client.listOffsets(parts.map((p) => ({ ...p, timestamp: -1n })));
    const targets = toOffset === null ? await client.listOffsets(queries) : bounds!;
    const plan = parts.map(({ topic, partition }) => {
      const key = partitionKey(topic, partition);
      const end = ends.get(key);
      const target = targets.get(key);
      if (end?.offset == null) {
        throw new KafkaCallError(`${topic}-${partition}`, end?.errorCode ?? -1);
      }
      if (target?.offset == null) {
        throw new KafkaCallError(`${topic}-${partition}`, target?.errorCode ?? -1);
      }
      // A timestamp after the last record answers -1: the end, as Kafka resets it.
      let newOffset = target.offset < 0 ? end.offset : target.offset;
      if (toOffset !== null) newOffset = Math.min(Math.max(toOffset, target.offset), end.offset);
      return {
        topic,
        partition,
        currentOffset: current.get(topic)?.get(partition) ?? null,
        newOffset,
      };
    });
    if (execute) {
      await client.retrying(async () => {
        const { conn } = await client.coordinator(group);
        const res = await client.request(conn, ApiKey.OffsetCommit, 8, {
          groupId: group,
          // An admin commit: no generation or member, accepted only while the group is Empty.
          generationIdOrMemberEpoch: -1,
          memberId: "",
          groupInstanceId: null,
          topics: topics.map((name) => ({
            name,
            partitions: plan.filter((p) => p.topic === name).map((p) => ({
              partitionIndex: p.partition,
              committedOffset: BigInt(p.newOffset),
              committedLeaderEpoch: -1,
              committedMetadata: "",
            })),
          })),
        });
        for (const t of res.topics) {
          for (const p of t.partitions) {
            if (p.errorCode !== ErrorCode.NONE) {
              throw new KafkaCallError(`${t.name}-${p.partitionIndex}`, p.errorCode);
            }
          }
        }
      });
    }
    if (args.output === "json") {
      io.stdout(formatJson({ group, executed: execute, partitions: plan }));
    } else {
      io.stdout(
        formatTable(
          ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
          plan.map((p) => [
            group,
            p.topic,
            String(p.partition),
            p.currentOffset === null ? "-" : String(p.currentOffset),
            String(p.newOffset),
          ]),
        ) + "\n",
      );
      if (!execute) io.stderr("tidelog: plan only, nothing committed; add --execute to apply\n");
    }
    return 0;
  },
};

const del: VerbSpec = {
  summary: "delete an empty group and its committed offsets",
  positionals: ["ID"],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const group = args.positionals[0]!;
    await client.retrying(async () => {
      const { conn } = await client.coordinator(group);
      const res = await client.request(conn, ApiKey.DeleteGroups, 2, { groupsNames: [group] });
      const r = res.results[0];
      if (r === undefined) {
        throw new KafkaCallError("", ErrorCode.UNKNOWN_SERVER_ERROR, "no result");
      }
      if (r.errorCode !== ErrorCode.NONE) throw new KafkaCallError("", r.errorCode);
    });
    io.stdout(
      args.output === "json" ? formatJson({ group, deleted: true }) : `deleted group ${group}\n`,
    );
    return 0;
  },
};

/** The verbs of `tidelog group`. */
export const GROUP_VERBS: Readonly<Record<string, VerbSpec>> = {
  list,
  describe,
  "reset-offsets": resetOffsets,
  delete: del,
};
