/**
 * Metadata records: the only way cluster state changes. Every node applies the same
 * records in the same order to get the same {@linkcode MetadataImage}. Today they are
 * kept in a local journal; the cluster work carries them in the Raft log unchanged.
 */

/** A topic comes into existence (its partitions follow as PartitionRecords). */
export interface TopicRecord {
  readonly type: "Topic";
  readonly name: string;
  readonly topicId: string;
  /** Explicit config overrides; defaults are not stored. */
  readonly configs: Readonly<Record<string, string>>;
}

/** A partition's full replica state (Kafka's PartitionRecord / PartitionChangeRecord). */
export interface PartitionRecord {
  readonly type: "Partition";
  readonly topicId: string;
  readonly partitionId: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** -1 when no leader is available. */
  readonly leader: number;
  readonly leaderEpoch: number;
  readonly partitionEpoch: number;
}

/** A topic and all its partitions are removed. */
export interface RemoveTopicRecord {
  readonly type: "RemoveTopic";
  readonly topicId: string;
}

/** Sets (value) or clears (null) one topic config override. */
export interface ConfigRecord {
  readonly type: "Config";
  readonly topicId: string;
  readonly name: string;
  readonly value: string | null;
}

/** The cluster id, fixed by the first record ever written. */
export interface ClusterRecord {
  readonly type: "Cluster";
  readonly clusterId: string;
}

/**
 * A block of producer ids is reserved for a broker (Kafka's ProducerIdsRecord): every id
 * below `nextProducerId` has been handed out, so none is ever given twice.
 */
export interface ProducerIdsRecord {
  readonly type: "ProducerIds";
  /** The broker that reserved the block ending at `nextProducerId` (exclusive). */
  readonly brokerId: number;
  readonly nextProducerId: number;
}

export type MetadataRecord =
  | ClusterRecord
  | TopicRecord
  | PartitionRecord
  | RemoveTopicRecord
  | ConfigRecord
  | ProducerIdsRecord;
