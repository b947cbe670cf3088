/**
 * The applied cluster state: a pure function of the metadata records applied so far.
 * `apply` returns a new image and never mutates the old one, so a reader holding an
 * image sees a consistent snapshot.
 */
import { assert, unreachable } from "../util/assert.ts";
import type { MetadataRecord, PartitionRecord } from "./records.ts";

/** One partition's replica state. */
export type PartitionState = Omit<PartitionRecord, "type" | "topicId">;

/** One topic as the cluster knows it. */
export interface TopicImage {
  readonly name: string;
  readonly topicId: string;
  readonly configs: Readonly<Record<string, string>>;
  /** Indexed by partition id; dense from 0. */
  readonly partitions: readonly PartitionState[];
}

/** The whole applied metadata state. */
export class MetadataImage {
  /** Records applied so far (the image's version). */
  readonly offset: number;
  readonly clusterId: string | null;
  readonly topicsById: ReadonlyMap<string, TopicImage>;
  readonly topicsByName: ReadonlyMap<string, TopicImage>;
  /** The first producer id not yet reserved by any broker (ProducerIds records). */
  readonly nextProducerId: number;

  constructor(
    offset: number,
    clusterId: string | null,
    topicsById: ReadonlyMap<string, TopicImage>,
    nextProducerId = 0,
  ) {
    this.offset = offset;
    this.clusterId = clusterId;
    this.topicsById = topicsById;
    this.topicsByName = new Map([...topicsById.values()].map((t) => [t.name, t]));
    this.nextProducerId = nextProducerId;
  }

  static readonly EMPTY: MetadataImage = new MetadataImage(0, null, new Map());

  /** The image after `record`. */
  apply(record: MetadataRecord): MetadataImage {
    const topics = new Map(this.topicsById);
    let clusterId = this.clusterId;
    let nextProducerId = this.nextProducerId;
    switch (record.type) {
      case "Cluster":
        clusterId ??= record.clusterId;
        break;
      case "Topic":
        assert(!topics.has(record.topicId), `Topic id ${record.topicId} applied twice`);
        topics.set(record.topicId, {
          name: record.name,
          topicId: record.topicId,
          configs: { ...record.configs },
          partitions: [],
        });
        break;
      case "Partition": {
        const topic = topics.get(record.topicId);
        assert(topic, `Partition record for unknown topic id ${record.topicId}`);
        assert(
          record.partitionId <= topic.partitions.length,
          `Partition ${record.partitionId} of ${topic.name} would leave a gap`,
        );
        const partitions = [...topic.partitions];
        const { type: _t, topicId: _id, ...state } = record;
        partitions[record.partitionId] = state;
        topics.set(record.topicId, { ...topic, partitions });
        break;
      }
      case "RemoveTopic":
        topics.delete(record.topicId);
        break;
      case "Config": {
        const topic = topics.get(record.topicId);
        assert(topic, `Config record for unknown topic id ${record.topicId}`);
        const configs = { ...topic.configs };
        if (record.value === null) delete configs[record.name];
        else configs[record.name] = record.value;
        topics.set(record.topicId, { ...topic, configs });
        break;
      }
      case "ProducerIds":
        assert(
          record.nextProducerId > nextProducerId,
          `ProducerIds record moves the next producer id back from ${nextProducerId} to ${record.nextProducerId}`,
        );
        nextProducerId = record.nextProducerId;
        break;
      default:
        unreachable(record);
    }
    return new MetadataImage(this.offset + 1, clusterId, topics, nextProducerId);
  }

  /** The image after all of `records`, in order. */
  applyAll(records: Iterable<MetadataRecord>): MetadataImage {
    return [...records].reduce((image: MetadataImage, r) => image.apply(r), this);
  }

  /** Topic by name, if it exists. */
  topic(name: string): TopicImage | undefined {
    return this.topicsByName.get(name);
  }
}
