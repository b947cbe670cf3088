/**
 * The applied cluster state: a pure function of the metadata records applied so far.
 * `apply` returns a new image and never mutates the old one, so a reader holding an
 * image sees a consistent snapshot. `toSnapshot`/`fromSnapshot` encode an image
 * deterministically, so a snapshot plus the records after it rebuilds the same image.
 */
import { assert, unreachable } from "../util/assert.ts";
import { crc32c } from "../util/crc32c.ts";
import { type BrokerConfigLayers, NO_BROKER_CONFIGS } from "./topic_config.ts";
import type {
  BrokerEndpoint,
  LeaderRecoveryState,
  MetadataRecord,
  PartitionChangeRecord,
  PartitionRecord,
} from "./records.ts";

/** One partition's replica state. */
export interface PartitionState {
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** -1 when no leader is available. */
  readonly leader: number;
  /** Bumped on every leader change. */
  readonly leaderEpoch: number;
  /** Bumped on every change of this state. */
  readonly partitionEpoch: number;
  readonly leaderRecoveryState: LeaderRecoveryState;
}

/** One topic as the cluster knows it. */
export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  readonly configs: Readonly<Record<string, string>>;
  /** Indexed by partition id; dense from 0. */
  readonly partitions: readonly PartitionState[];
}

/** A registered broker (Kafka's BrokerRegistration). */
export interface BrokerRegistration {
  readonly brokerId: number;
  readonly incarnationId: string;
  readonly brokerEpoch: number;
  /**
   * The image offset once its RegisterBroker record was applied: a broker whose
   * `currentMetadataOffset` has reached it has seen its own registration ("caught up").
   */
  readonly registrationOffset: number;
  readonly endpoints: readonly BrokerEndpoint[];
  readonly rack: string | null;
  readonly fenced: boolean;
  readonly inControlledShutdown: boolean;
}

/** A partition named by topic id and index. */
export interface TopicIdPartition {
  readonly topicId: string;
  readonly partitionId: number;
}

/** Everything an image holds; the constructor's argument. */
export interface MetadataImageState {
  /** Records applied so far (the image's version). */
  readonly offset: number;
  readonly clusterId: string | null;
  readonly topicsById: ReadonlyMap<string, TopicImage>;
  readonly brokers?: ReadonlyMap<number, BrokerRegistration>;
  readonly nextProducerId?: number;
  /** Dynamic broker configs by broker id string ("" = cluster default), by key. */
  readonly brokerConfigs?: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

const SNAPSHOT_MAGIC = 0x544c4d53; // "TLMS"
const SNAPSHOT_VERSION = 1;
const SNAPSHOT_HEADER = 12; // u32 magic | u16 version | u16 reserved | u32 crc32c(payload)
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The whole applied metadata state. */
export class MetadataImage {
  /** Records applied so far (the image's version). */
  readonly offset: number;
  readonly clusterId: string | null;
  readonly topicsById: ReadonlyMap<string, TopicImage>;
  readonly topicsByName: ReadonlyMap<string, TopicImage>;
  /** Registered brokers by id (fenced ones included). */
  readonly brokers: ReadonlyMap<number, BrokerRegistration>;
  /** The first producer id not yet reserved by any broker (ProducerIds records). */
  readonly nextProducerId: number;
  /** Dynamic broker configs by broker id string ("" = cluster-wide default), by key. */
  readonly brokerConfigs: ReadonlyMap<string, Readonly<Record<string, string>>>;

  constructor(state: MetadataImageState) {
    this.offset = state.offset;
    this.clusterId = state.clusterId;
    this.topicsById = state.topicsById;
    this.topicsByName = new Map([...state.topicsById.values()].map((t) => [t.name, t]));
    this.brokers = state.brokers ?? new Map();
    this.nextProducerId = state.nextProducerId ?? 0;
    this.brokerConfigs = state.brokerConfigs ?? new Map();
  }

  /** The dynamic broker configs in effect on `brokerId` (its own over the cluster's). */
  brokerConfigLayers(
    brokerId: number,
    staticConfigs: Readonly<Record<string, string>> = {},
  ): BrokerConfigLayers {
    if (this.brokerConfigs.size === 0 && Object.keys(staticConfigs).length === 0) {
      return NO_BROKER_CONFIGS;
    }
    return {
      broker: this.brokerConfigs.get(String(brokerId)) ?? {},
      cluster: this.brokerConfigs.get("") ?? {},
      static: staticConfigs,
    };
  }

  static readonly EMPTY: MetadataImage = new MetadataImage({
    offset: 0,
    clusterId: null,
    topicsById: new Map(),
  });

  /** The image after `record`. */
  apply(record: MetadataRecord): MetadataImage {
    let topics = this.topicsById;
    let brokers = this.brokers;
    let clusterId = this.clusterId;
    let nextProducerId = this.nextProducerId;
    let brokerConfigs = this.brokerConfigs;
    const offset = this.offset + 1;
    switch (record.type) {
      case "Cluster":
        clusterId ??= record.clusterId;
        break;
      case "Topic": {
        assert(!topics.has(record.topicId), `Topic id ${record.topicId} applied twice`);
        const next = new Map(topics);
        next.set(record.topicId, {
          name: record.name,
          topicId: record.topicId,
          configs: { ...record.configs },
          partitions: [],
        });
        topics = next;
        break;
      }
      case "Partition": {
        const topic = topics.get(record.topicId);
        assert(topic, `Partition record for unknown topic id ${record.topicId}`);
        assert(
          record.partitionId <= topic.partitions.length,
          `Partition ${record.partitionId} of ${topic.name} would leave a gap`,
        );
        topics = withPartition(topics, topic, record.partitionId, partitionState(record));
        break;
      }
      case "PartitionChange": {
        const topic = topics.get(record.topicId);
        assert(topic, `PartitionChange record for unknown topic id ${record.topicId}`);
        const current = topic.partitions[record.partitionId];
        assert(current, `PartitionChange record for unknown partition ${record.partitionId}`);
        topics = withPartition(topics, topic, record.partitionId, mergeChange(current, record));
        break;
      }
      case "RemoveTopic": {
        const next = new Map(topics);
        next.delete(record.topicId);
        topics = next;
        break;
      }
      case "Config": {
        if (record.broker !== undefined) {
          const configs = { ...brokerConfigs.get(record.broker) };
          if (record.value === null) delete configs[record.name];
          else configs[record.name] = record.value;
          const next = new Map(brokerConfigs);
          if (Object.keys(configs).length === 0) next.delete(record.broker);
          else next.set(record.broker, configs);
          brokerConfigs = next;
          break;
        }
        const topic = topics.get(record.topicId ?? "");
        assert(topic, `Config record for unknown topic id ${record.topicId}`);
        const configs = { ...topic.configs };
        if (record.value === null) delete configs[record.name];
        else configs[record.name] = record.value;
        topics = new Map(topics).set(topic.topicId, { ...topic, configs });
        break;
      }
      case "ProducerIds":
        assert(
          record.nextProducerId > nextProducerId,
          `ProducerIds record moves the next producer id back from ${nextProducerId} to ${record.nextProducerId}`,
        );
        nextProducerId = record.nextProducerId;
        break;
      case "RegisterBroker":
        brokers = new Map(brokers).set(record.brokerId, {
          brokerId: record.brokerId,
          incarnationId: record.incarnationId,
          brokerEpoch: record.brokerEpoch,
          registrationOffset: offset,
          endpoints: record.endpoints.map((e) => ({ host: e.host, port: e.port })),
          rack: record.rack,
          fenced: record.fenced,
          inControlledShutdown: false,
        });
        break;
      case "BrokerRegistrationChange": {
        const broker = brokers.get(record.brokerId);
        assert(broker, `BrokerRegistrationChange for unregistered broker ${record.brokerId}`);
        assert(
          broker.brokerEpoch === record.brokerEpoch,
          `BrokerRegistrationChange for broker ${record.brokerId} has epoch ${record.brokerEpoch}, registration has ${broker.brokerEpoch}`,
        );
        brokers = new Map(brokers).set(record.brokerId, {
          ...broker,
          fenced: record.fenced ?? broker.fenced,
          inControlledShutdown: record.inControlledShutdown ?? broker.inControlledShutdown,
        });
        break;
      }
      case "UnregisterBroker": {
        const broker = brokers.get(record.brokerId);
        assert(broker, `UnregisterBroker for unregistered broker ${record.brokerId}`);
        assert(
          broker.brokerEpoch === record.brokerEpoch,
          `UnregisterBroker for broker ${record.brokerId} has epoch ${record.brokerEpoch}, registration has ${broker.brokerEpoch}`,
        );
        const next = new Map(brokers);
        next.delete(record.brokerId);
        brokers = next;
        break;
      }
      default:
        unreachable(record);
    }
    return new MetadataImage({
      offset,
      clusterId,
      topicsById: topics,
      brokers,
      nextProducerId,
      brokerConfigs,
    });
  }

  /** The image after all of `records`, in order. */
  applyAll(records: Iterable<MetadataRecord>): MetadataImage {
    return [...records].reduce((image: MetadataImage, r) => image.apply(r), this);
  }

  /** Topic by name, if it exists. */
  topic(name: string): TopicImage | undefined {
    return this.topicsByName.get(name);
  }

  /** One partition's state, if the topic id and partition exist. */
  partition(tp: TopicIdPartition): PartitionState | undefined {
    return this.topicsById.get(tp.topicId)?.partitions[tp.partitionId];
  }

  /** Ids of registered, unfenced brokers, ascending (brokers in controlled shutdown included). */
  liveBrokers(): number[] {
    return [...this.brokers.values()].filter((b) => !b.fenced).map((b) => b.brokerId)
      .sort((a, b) => a - b);
  }

  /**
   * Whether `brokerId` may lead or join an ISR: registered, unfenced and not in
   * controlled shutdown (Kafka's ClusterControlManager.isActive).
   */
  isActive(brokerId: number): boolean {
    const b = this.brokers.get(brokerId);
    return b !== undefined && !b.fenced && !b.inControlledShutdown;
  }

  /** Partitions whose leader is `brokerId`, by topic id then partition. */
  partitionsLedBy(brokerId: number): TopicIdPartition[] {
    return this.#partitionsWhere((p) => p.leader === brokerId);
  }

  /** Partitions with `brokerId` in the ISR or as leader, by topic id then partition. */
  partitionsWithBrokerInIsr(brokerId: number): TopicIdPartition[] {
    return this.#partitionsWhere((p) => p.leader === brokerId || p.isr.includes(brokerId));
  }

  /** Partitions without a leader, by topic id then partition. */
  partitionsWithoutLeader(): TopicIdPartition[] {
    return this.#partitionsWhere((p) => p.leader === -1);
  }

  /** Whether `brokerId` is in the ISR of `tp` (false for an unknown partition). */
  isInIsr(brokerId: number, tp: TopicIdPartition): boolean {
    return this.partition(tp)?.isr.includes(brokerId) ?? false;
  }

  #partitionsWhere(pred: (p: PartitionState) => boolean): TopicIdPartition[] {
    const out: TopicIdPartition[] = [];
    const ids = [...this.topicsById.keys()].sort(compareStrings);
    for (const topicId of ids) {
      this.topicsById.get(topicId)!.partitions.forEach((p, partitionId) => {
        if (pred(p)) out.push({ topicId, partitionId });
      });
    }
    return out;
  }

  /**
   * A deterministic encoding of this image: equal images (as {@linkcode imageEquals}
   * sees them) give equal bytes. Layout: `u32 magic "TLMS" | u16 version | u16 0 |
   * u32 crc32c(payload) | payload`, the payload being the UTF-8 JSON of
   * {@linkcode canonicalImage}.
   */
  toSnapshot(): Uint8Array {
    const payload = encoder.encode(JSON.stringify(canonicalImage(this)));
    const out = new Uint8Array(SNAPSHOT_HEADER + payload.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, SNAPSHOT_MAGIC);
    view.setUint16(4, SNAPSHOT_VERSION);
    view.setUint16(6, 0);
    view.setUint32(8, crc32c(payload));
    out.set(payload, SNAPSHOT_HEADER);
    return out;
  }

  /**
   * The image `bytes` (from {@linkcode MetadataImage.toSnapshot}) encode.
   * @throws {SyntaxError} when the bytes are not an intact snapshot of a known version
   */
  static fromSnapshot(bytes: Uint8Array): MetadataImage {
    if (bytes.length < SNAPSHOT_HEADER) {
      throw new SyntaxError(`Cannot decode metadata snapshot: ${bytes.length} bytes is too short`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint32(0) !== SNAPSHOT_MAGIC) {
      throw new SyntaxError("Cannot decode metadata snapshot: bad magic");
    }
    const version = view.getUint16(4);
    if (version !== SNAPSHOT_VERSION) {
      throw new SyntaxError(`Cannot decode metadata snapshot: unknown version ${version}`);
    }
    const payload = bytes.subarray(SNAPSHOT_HEADER);
    if (crc32c(payload) !== view.getUint32(8)) {
      throw new SyntaxError("Cannot decode metadata snapshot: checksum mismatch");
    }
    let json: unknown;
    try {
      json = JSON.parse(decoder.decode(payload));
    } catch (err) {
      throw new SyntaxError(`Cannot decode metadata snapshot: ${(err as Error).message}`);
    }
    return fromCanonical(json);
  }
}

/** The plain, ordered form of an image: what snapshots encode and tests compare. */
export interface CanonicalImage {
  offset: number;
  clusterId: string | null;
  nextProducerId: number;
  /** By broker id. */
  brokers: BrokerRegistration[];
  /** By topic id; configs by name. */
  topics: {
    topicId: string;
    name: string;
    configs: [string, string][];
    partitions: PartitionState[];
  }[];
  /** Dynamic broker configs by broker id string ("" = cluster default); absent when none. */
  brokerConfigs?: [string, [string, string][]][];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The canonical (sorted, plain-object) form of `image`, with fixed key order. */
export function canonicalImage(image: MetadataImage): CanonicalImage {
  return {
    offset: image.offset,
    clusterId: image.clusterId,
    nextProducerId: image.nextProducerId,
    brokers: [...image.brokers.values()].sort((a, b) => a.brokerId - b.brokerId).map((b) => ({
      brokerId: b.brokerId,
      incarnationId: b.incarnationId,
      brokerEpoch: b.brokerEpoch,
      registrationOffset: b.registrationOffset,
      endpoints: b.endpoints.map((e) => ({ host: e.host, port: e.port })),
      rack: b.rack,
      fenced: b.fenced,
      inControlledShutdown: b.inControlledShutdown,
    })),
    topics: [...image.topicsById.values()].sort((a, b) => compareStrings(a.topicId, b.topicId))
      .map((t) => ({
        topicId: t.topicId,
        name: t.name,
        configs: Object.entries(t.configs).sort((a, b) => compareStrings(a[0], b[0])),
        partitions: t.partitions.map(copyPartition),
      })),
    // Absent when empty, so images without broker configs encode as they always did.
    ...(image.brokerConfigs.size === 0 ? {} : {
      brokerConfigs: [...image.brokerConfigs].sort((a, b) => compareStrings(a[0], b[0])).map((
        [broker, configs],
      ): [string, [string, string][]] => [
        broker,
        Object.entries(configs).sort((a, b) => compareStrings(a[0], b[0])),
      ]),
    }),
  };
}

/** Whether two images hold the same state (topic and broker order aside). */
export function imageEquals(a: MetadataImage, b: MetadataImage): boolean {
  return JSON.stringify(canonicalImage(a)) === JSON.stringify(canonicalImage(b));
}

function copyPartition(p: PartitionState): PartitionState {
  return {
    replicas: [...p.replicas],
    isr: [...p.isr],
    leader: p.leader,
    leaderEpoch: p.leaderEpoch,
    partitionEpoch: p.partitionEpoch,
    leaderRecoveryState: p.leaderRecoveryState,
  };
}

function partitionState(record: PartitionRecord): PartitionState {
  return copyPartition({ ...record, leaderRecoveryState: record.leaderRecoveryState ?? 0 });
}

/** Kafka's PartitionRegistration.merge. */
function mergeChange(p: PartitionState, record: PartitionChangeRecord): PartitionState {
  const leaderChanged = record.leader !== undefined;
  return copyPartition({
    replicas: record.replicas ?? p.replicas,
    isr: record.isr ?? p.isr,
    leader: leaderChanged ? record.leader! : p.leader,
    leaderEpoch: leaderChanged ? p.leaderEpoch + 1 : p.leaderEpoch,
    partitionEpoch: p.partitionEpoch + 1,
    leaderRecoveryState: record.leaderRecoveryState ?? p.leaderRecoveryState,
  });
}

function withPartition(
  topics: ReadonlyMap<string, TopicImage>,
  topic: TopicImage,
  partitionId: number,
  state: PartitionState,
): Map<string, TopicImage> {
  const partitions = [...topic.partitions];
  partitions[partitionId] = state;
  return new Map(topics).set(topic.topicId, { ...topic, partitions });
}

// --- snapshot decoding: every field is checked, a bad one is a SyntaxError ---

function bad(what: string): never {
  throw new SyntaxError(`Cannot decode metadata snapshot: invalid ${what}`);
}

function int(v: unknown, what: string): number {
  return Number.isSafeInteger(v) ? v as number : bad(what);
}

function str(v: unknown, what: string): string {
  return typeof v === "string" ? v : bad(what);
}

function bool(v: unknown, what: string): boolean {
  return typeof v === "boolean" ? v : bad(what);
}

function arr(v: unknown, what: string): unknown[] {
  return Array.isArray(v) ? v : bad(what);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : bad(what);
}

function ints(v: unknown, what: string): number[] {
  return arr(v, what).map((x) => int(x, what));
}

function fromCanonical(json: unknown): MetadataImage {
  const o = obj(json, "image");
  const brokers = new Map<number, BrokerRegistration>();
  for (const raw of arr(o.brokers, "brokers")) {
    const b = obj(raw, "broker");
    const brokerId = int(b.brokerId, "brokerId");
    brokers.set(brokerId, {
      brokerId,
      incarnationId: str(b.incarnationId, "incarnationId"),
      brokerEpoch: int(b.brokerEpoch, "brokerEpoch"),
      registrationOffset: int(b.registrationOffset, "registrationOffset"),
      endpoints: arr(b.endpoints, "endpoints").map((raw) => {
        const e = obj(raw, "endpoint");
        return { host: str(e.host, "endpoint host"), port: int(e.port, "endpoint port") };
      }),
      rack: b.rack === null ? null : str(b.rack, "rack"),
      fenced: bool(b.fenced, "fenced"),
      inControlledShutdown: bool(b.inControlledShutdown, "inControlledShutdown"),
    });
  }
  const topics = new Map<string, TopicImage>();
  for (const raw of arr(o.topics, "topics")) {
    const t = obj(raw, "topic");
    const topicId = str(t.topicId, "topicId");
    const configs: Record<string, string> = {};
    for (const kv of arr(t.configs, "configs")) {
      const [k, v] = arr(kv, "config");
      configs[str(k, "config name")] = str(v, "config value");
    }
    const partitions = arr(t.partitions, "partitions").map((raw): PartitionState => {
      const p = obj(raw, "partition");
      const lrs = int(p.leaderRecoveryState, "leaderRecoveryState");
      return {
        replicas: ints(p.replicas, "replicas"),
        isr: ints(p.isr, "isr"),
        leader: int(p.leader, "leader"),
        leaderEpoch: int(p.leaderEpoch, "leaderEpoch"),
        partitionEpoch: int(p.partitionEpoch, "partitionEpoch"),
        leaderRecoveryState: lrs === 0 || lrs === 1 ? lrs : bad("leaderRecoveryState"),
      };
    });
    topics.set(topicId, { name: str(t.name, "topic name"), topicId, configs, partitions });
  }
  const brokerConfigs = new Map<string, Record<string, string>>();
  for (const raw of o.brokerConfigs === undefined ? [] : arr(o.brokerConfigs, "brokerConfigs")) {
    const [broker, entries] = arr(raw, "broker configs");
    const configs: Record<string, string> = {};
    for (const kv of arr(entries, "broker config entries")) {
      const [k, v] = arr(kv, "broker config");
      configs[str(k, "broker config name")] = str(v, "broker config value");
    }
    brokerConfigs.set(str(broker, "broker config resource"), configs);
  }
  return new MetadataImage({
    brokerConfigs,
    offset: int(o.offset, "offset"),
    clusterId: o.clusterId === null ? null : str(o.clusterId, "clusterId"),
    topicsById: topics,
    brokers,
    nextProducerId: int(o.nextProducerId, "nextProducerId"),
  });
}
