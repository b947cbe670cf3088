/**
 * Controller decisions as pure functions: given the current image and a request, the
 * records that carry it out, or a typed error with Kafka's code. The driver that owns
 * the record log (the Raft leader's metadata store) persists and applies them.
 */
import { ErrorCode } from "../protocol/error_codes.ts";
import { assert } from "../util/assert.ts";
import { TidelogError } from "../util/errors.ts";
import type { MetadataImage, TopicImage } from "./metadata_image.ts";
import type { MetadataRecord, PartitionRecord } from "./records.ts";
import {
  BROKER_LOG_CONFIGS,
  checkBrokerConfigValue,
  checkTopicConfigValue,
  TOPIC_CONFIG_DEFS,
  topicCollisionKey,
  validateTopicConfigs,
  validateTopicName,
} from "./topic_config.ts";

/** Broker-wide defaults the controller applies. */
export interface ControllerDefaults {
  /** Kafka `num.partitions`. */
  numPartitions: number;
  /** Kafka `default.replication.factor`. */
  defaultReplicationFactor: number;
}

/** What the controller knows about the cluster beyond the image. */
export interface ControllerContext {
  /**
   * Broker ids that may receive replicas, ascending, all taken as active (the one-node
   * node passes itself). Absent: the image's registered brokers decide — placement over
   * `image.liveBrokers()` not in controlled shutdown, ISR = the active replicas.
   */
  liveBrokers?: readonly number[];
  defaults: ControllerDefaults;
  /** A fresh topic id (Kafka Uuid string). */
  newTopicId: () => string;
}

/** One topic of a CreateTopics request. */
export interface CreateTopicSpec {
  name: string;
  /** -1: broker default. */
  numPartitions: number;
  /** -1: broker default. */
  replicationFactor: number;
  /** Manual assignment; when non-empty numPartitions and replicationFactor must be -1. */
  assignments: readonly { partitionIndex: number; brokerIds: readonly number[] }[];
  configs: readonly { name: string; value: string | null }[];
}

/** The records for a topic creation, with the resolved numbers for the response. */
export interface TopicCreationPlan {
  records: MetadataRecord[];
  topicId: string;
  numPartitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

function fail(code: ErrorCode, message: string): never {
  throw new TidelogError(code, message);
}

/** Checks a name against the image: legal, not taken, no '.'/'_' collision. */
function checkNewTopicName(image: MetadataImage, name: string): void {
  validateTopicName(name);
  if (image.topic(name)) fail(ErrorCode.TOPIC_ALREADY_EXISTS, `Topic '${name}' already exists.`);
  const key = topicCollisionKey(name);
  for (const other of image.topicsByName.keys()) {
    if (topicCollisionKey(other) === key) {
      fail(
        ErrorCode.INVALID_TOPIC_EXCEPTION,
        `Topic '${name}' collides with existing topic: ${other}`,
      );
    }
  }
}

/**
 * Replica lists for `count` new partitions over `brokers` (ascending), balanced against
 * the partitions the image already has: each new partition's leader (first replica, the
 * preferred leader) is the broker with the fewest preferred leaderships, then fewest
 * replicas; its followers are those with the fewest replicas, ties broken by ring order
 * after the leader (so an empty cluster gets plain round-robin).
 */
export function assignBalanced(
  image: MetadataImage,
  brokers: readonly number[],
  options: { count: number; replicationFactor: number },
): number[][] {
  const { count, replicationFactor } = options;
  assert(replicationFactor <= brokers.length, "Replication factor above the broker count");
  const leaders = new Map(brokers.map((b) => [b, 0]));
  const replicas = new Map(brokers.map((b) => [b, 0]));
  for (const topic of image.topicsById.values()) {
    for (const p of topic.partitions) {
      const first = p.replicas[0];
      if (first !== undefined && leaders.has(first)) leaders.set(first, leaders.get(first)! + 1);
      for (const r of p.replicas) if (replicas.has(r)) replicas.set(r, replicas.get(r)! + 1);
    }
  }
  const out: number[][] = [];
  for (let i = 0; i < count; i++) {
    let leaderIndex = 0;
    brokers.forEach((b, j) => {
      const best = brokers[leaderIndex]!;
      const byLeaders = leaders.get(b)! - leaders.get(best)!;
      if (byLeaders < 0 || (byLeaders === 0 && replicas.get(b)! < replicas.get(best)!)) {
        leaderIndex = j;
      }
    });
    const leader = brokers[leaderIndex]!;
    leaders.set(leader, leaders.get(leader)! + 1);
    replicas.set(leader, replicas.get(leader)! + 1);
    const chosen = [leader];
    for (let r = 1; r < replicationFactor; r++) {
      let pick: number | undefined;
      for (let k = 1; k < brokers.length; k++) {
        const b = brokers[(leaderIndex + k) % brokers.length]!;
        if (chosen.includes(b)) continue;
        if (pick === undefined || replicas.get(b)! < replicas.get(pick)!) pick = b;
      }
      chosen.push(pick!);
      replicas.set(pick!, replicas.get(pick!)! + 1);
    }
    out.push(chosen);
  }
  return out;
}

/** The brokers a plan may place replicas on, and which of them may join a new ISR. */
interface Placement {
  /** Candidates for automatic placement, ascending. */
  usable: readonly number[];
  /** Brokers a manual assignment may name. */
  known: (brokerId: number) => boolean;
  /** Whether a replica starts in the ISR (and may lead). */
  active: (brokerId: number) => boolean;
}

function placement(image: MetadataImage, ctx: ControllerContext): Placement {
  const listed = ctx.liveBrokers;
  if (listed) {
    return { usable: listed, known: (b) => listed.includes(b), active: () => true };
  }
  return {
    usable: image.liveBrokers().filter((b) => image.isActive(b)),
    known: (b) => image.brokers.has(b),
    active: (b) => image.isActive(b),
  };
}

function checkManualAssignment(
  assignments: readonly { partitionIndex: number; brokerIds: readonly number[] }[],
  first: number,
  brokers: Placement,
): number[][] {
  const sorted = [...assignments].sort((a, b) => a.partitionIndex - b.partitionIndex);
  const rf = sorted[0]?.brokerIds.length ?? 0;
  return sorted.map((a, i) => {
    if (a.partitionIndex !== first + i) {
      fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Partitions must be numbered consecutively from ${first}`,
      );
    }
    if (a.brokerIds.length === 0 || a.brokerIds.length !== rf) {
      fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        "All partitions must have the same, non-zero number of replicas",
      );
    }
    if (new Set(a.brokerIds).size !== a.brokerIds.length) {
      fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Duplicate brokers in assignment of partition ${a.partitionIndex}`,
      );
    }
    for (const b of a.brokerIds) {
      if (!brokers.known(b)) {
        fail(
          ErrorCode.INVALID_REPLICA_ASSIGNMENT,
          `Broker ${b} in the assignment is not available`,
        );
      }
    }
    if (!a.brokerIds.some((b) => brokers.active(b))) {
      fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `All brokers specified in the manual partition assignment for partition ${a.partitionIndex} are fenced or in controlled shutdown.`,
      );
    }
    return [...a.brokerIds];
  });
}

/** New partitions: ISR = the active replicas, leader = the first of them (Kafka). */
function partitionRecords(
  topicId: string,
  first: number,
  replicaLists: number[][],
  brokers: Placement,
): PartitionRecord[] {
  return replicaLists.map((replicas, i) => {
    const isr = replicas.filter((b) => brokers.active(b));
    assert(isr.length > 0, "A new partition needs an active replica");
    return {
      type: "Partition",
      topicId,
      partitionId: first + i,
      replicas,
      isr,
      leader: isr[0]!,
      leaderEpoch: 0,
      partitionEpoch: 0,
    };
  });
}

/** Plans a CreateTopics entry, throwing a {@linkcode TidelogError} with Kafka's code. */
export function planCreateTopic(
  image: MetadataImage,
  spec: CreateTopicSpec,
  ctx: ControllerContext,
): TopicCreationPlan {
  checkNewTopicName(image, spec.name);
  const configs = validateTopicConfigs(spec.configs);
  const brokers = placement(image, ctx);
  let replicaLists: number[][];
  if (spec.assignments.length > 0) {
    if (spec.numPartitions !== -1 || spec.replicationFactor !== -1) {
      fail(
        ErrorCode.INVALID_REQUEST,
        "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
      );
    }
    replicaLists = checkManualAssignment(spec.assignments, 0, brokers);
  } else {
    const numPartitions = spec.numPartitions === -1
      ? ctx.defaults.numPartitions
      : spec.numPartitions;
    const rf = spec.replicationFactor === -1
      ? Math.min(ctx.defaults.defaultReplicationFactor, brokers.usable.length)
      : spec.replicationFactor;
    if (numPartitions <= 0) {
      fail(ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0.");
    }
    if (rf <= 0) {
      fail(ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0.");
    }
    if (rf > brokers.usable.length) {
      fail(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Unable to replicate the partition ${rf} time(s): The target replication factor of ${rf} cannot be reached because only ${brokers.usable.length} broker(s) are registered.`,
      );
    }
    replicaLists = assignBalanced(image, brokers.usable, {
      count: numPartitions,
      replicationFactor: rf,
    });
  }
  const topicId = ctx.newTopicId();
  return {
    records: [
      { type: "Topic", name: spec.name, topicId, configs },
      ...partitionRecords(topicId, 0, replicaLists, brokers),
    ],
    topicId,
    numPartitions: replicaLists.length,
    replicationFactor: replicaLists[0]!.length,
    configs,
  };
}

/** Plans a CreatePartitions entry (grow `topic` to `count` partitions). */
export function planCreatePartitions(
  image: MetadataImage,
  name: string,
  count: number,
  assignments: readonly (readonly number[])[] | null,
  ctx: ControllerContext,
): MetadataRecord[] {
  const topic = image.topic(name);
  if (!topic) fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `The topic '${name}' does not exist.`);
  const current = topic.partitions.length;
  if (count < current) {
    fail(
      ErrorCode.INVALID_PARTITIONS,
      `The topic ${name} currently has ${current} partition(s); ${count} would not be an increase.`,
    );
  }
  if (count === current) {
    fail(ErrorCode.INVALID_PARTITIONS, `Topic already has ${current} partition(s).`);
  }
  const added = count - current;
  const brokers = placement(image, ctx);
  const rf = topic.partitions[0]?.replicas.length ?? 1;
  let replicaLists: number[][];
  if (assignments) {
    if (assignments.length !== added) {
      fail(
        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        `Increasing the number of partitions by ${added} but ${assignments.length} assignments provided.`,
      );
    }
    replicaLists = checkManualAssignment(
      assignments.map((brokerIds, i) => ({ partitionIndex: current + i, brokerIds })),
      current,
      brokers,
    );
  } else {
    if (rf > brokers.usable.length) {
      fail(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `Unable to replicate the new partitions ${rf} time(s) with ${brokers.usable.length} broker(s)`,
      );
    }
    replicaLists = assignBalanced(image, brokers.usable, { count: added, replicationFactor: rf });
  }
  return partitionRecords(topic.topicId, current, replicaLists, brokers);
}

/** Plans the removal of a topic given by name or id. */
export function planDeleteTopic(image: MetadataImage, topic: TopicImage): MetadataRecord[] {
  if (!image.topicsById.has(topic.topicId)) {
    fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${topic.name} does not exist`);
  }
  return [{ type: "RemoveTopic", topicId: topic.topicId }];
}

/** A config resource as AlterConfigs/IncrementalAlterConfigs name it (Kafka's types). */
export interface ConfigResource {
  /** 2 TOPIC, 4 BROKER (others are refused). */
  readonly resourceType: number;
  /** The topic; for a broker its id, or "" for the cluster-wide default. */
  readonly resourceName: string;
}

/** Kafka's AlterConfigOp.OpType. */
export const AlterConfigOp = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const;

/** One IncrementalAlterConfigs operation. */
export interface ConfigOperation {
  readonly name: string;
  readonly op: number;
  readonly value: string | null;
}

const RESOURCE_TOPIC = 2;
const RESOURCE_BROKER = 4;

/** The current overrides of `resource`, the key checker and the record maker for it. */
function configTarget(image: MetadataImage, resource: ConfigResource): {
  current: Readonly<Record<string, string>>;
  check: (name: string, value: string) => string;
  isList: (name: string) => boolean;
  record: (name: string, value: string | null) => MetadataRecord;
} {
  if (resource.resourceType === RESOURCE_TOPIC) {
    const topic = image.topic(resource.resourceName);
    if (!topic) {
      fail(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `Topic ${resource.resourceName} does not exist`);
    }
    return {
      current: topic.configs,
      check: checkTopicConfigValue,
      isList: (name) => TOPIC_CONFIG_DEFS.get(name)?.type === "list",
      record: (name, value) => ({ type: "Config", topicId: topic.topicId, name, value }),
    };
  }
  if (resource.resourceType === RESOURCE_BROKER) {
    const broker = resource.resourceName;
    if (broker !== "" && !/^\d+$/.test(broker)) {
      fail(ErrorCode.INVALID_REQUEST, `Illegal broker id ${broker} in a BROKER resource`);
    }
    return {
      current: image.brokerConfigs.get(broker) ?? {},
      check: checkBrokerConfigValue,
      isList: (name) => TOPIC_CONFIG_DEFS.get(BROKER_LOG_CONFIGS.get(name) ?? "")?.type === "list",
      record: (name, value) => ({ type: "Config", broker, name, value }),
    };
  }
  fail(ErrorCode.INVALID_REQUEST, `Unsupported resource type ${resource.resourceType}`);
}

/** The records that turn `current` overrides into `next`. */
function configDiff(
  current: Readonly<Record<string, string>>,
  next: Readonly<Record<string, string>>,
  record: (name: string, value: string | null) => MetadataRecord,
): MetadataRecord[] {
  const out: MetadataRecord[] = [];
  for (const name of Object.keys(current)) if (!(name in next)) out.push(record(name, null));
  for (const [name, value] of Object.entries(next)) {
    if (current[name] !== value) out.push(record(name, value));
  }
  return out;
}

/**
 * Plans IncrementalAlterConfigs for one resource: SET, DELETE, APPEND and SUBTRACT (the
 * last two only on list configs), as Kafka's ConfigurationControlManager does.
 */
export function planIncrementalAlterConfigs(
  image: MetadataImage,
  resource: ConfigResource,
  ops: readonly ConfigOperation[],
): MetadataRecord[] {
  const target = configTarget(image, resource);
  const seen = new Set<string>();
  for (const o of ops) {
    if (seen.has(o.name)) {
      fail(ErrorCode.INVALID_REQUEST, `Error due to duplicate config keys: ${o.name}`);
    }
    seen.add(o.name);
  }
  const next: Record<string, string> = { ...target.current };
  for (const o of ops) {
    switch (o.op) {
      case AlterConfigOp.SET:
        if (o.value === null) {
          fail(ErrorCode.INVALID_REQUEST, `Null value not supported for: ${o.name}`);
        }
        next[o.name] = target.check(o.name, o.value);
        break;
      case AlterConfigOp.DELETE:
        target.check(o.name, effectiveOrDefault(target.current[o.name], o.name, resource));
        delete next[o.name];
        break;
      case AlterConfigOp.APPEND:
      case AlterConfigOp.SUBTRACT: {
        const verb = o.op === AlterConfigOp.APPEND ? "append" : "subtract";
        if (!target.isList(o.name)) {
          target.check(o.name, effectiveOrDefault(undefined, o.name, resource));
          fail(
            ErrorCode.INVALID_CONFIG,
            `Config value ${verb} is not allowed for config key: ${o.name}`,
          );
        }
        const base = (next[o.name] ?? effectiveOrDefault(undefined, o.name, resource))
          .split(",").map((s) => s.trim()).filter((s) => s !== "");
        const items = (o.value ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
        const merged = o.op === AlterConfigOp.APPEND
          ? [...base, ...items.filter((i) => !base.includes(i))]
          : base.filter((b) => !items.includes(b));
        next[o.name] = target.check(o.name, merged.join(","));
        break;
      }
      default:
        fail(ErrorCode.INVALID_REQUEST, `Unknown alter config operation ${o.op} for ${o.name}`);
    }
  }
  return configDiff(target.current, next, target.record);
}

/** A key's static default (to check that a DELETE or list op names a real key). */
function effectiveOrDefault(
  current: string | undefined,
  name: string,
  resource: ConfigResource,
): string {
  if (current !== undefined) return current;
  const topicKey = resource.resourceType === RESOURCE_BROKER ? BROKER_LOG_CONFIGS.get(name) : name;
  const d = TOPIC_CONFIG_DEFS.get(topicKey ?? "");
  if (!d) {
    fail(
      ErrorCode.INVALID_CONFIG,
      resource.resourceType === RESOURCE_BROKER
        ? `Cannot update these configs dynamically: Set(${name})`
        : `Unknown topic config name: ${name}`,
    );
  }
  return d.defaultValue;
}

/**
 * Plans the legacy AlterConfigs for one resource: the listed configs replace every
 * override of the resource (unlisted ones revert to their defaults).
 */
export function planAlterConfigs(
  image: MetadataImage,
  resource: ConfigResource,
  configs: readonly { name: string; value: string | null }[],
): MetadataRecord[] {
  const target = configTarget(image, resource);
  const next: Record<string, string> = {};
  for (const c of configs) {
    if (c.name in next) {
      fail(ErrorCode.INVALID_REQUEST, `Error due to duplicate config keys: ${c.name}`);
    }
    if (c.value === null) {
      fail(ErrorCode.INVALID_REQUEST, `Null value not supported for: ${c.name}`);
    }
    next[c.name] = target.check(c.name, c.value);
  }
  return configDiff(target.current, next, target.record);
}
