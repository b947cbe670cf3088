/**
 * Metadata records: the only way cluster state changes. Every node applies the same
 * records in the same order to get the same {@linkcode MetadataImage}. They travel in
 * the Raft log, in batches (one Raft entry per proposal).
 */

/** A topic comes into existence (its partitions follow as PartitionRecords). */
export interface TopicRecord {
  readonly type: "Topic";
  readonly name: string;
  readonly topicId: string;
  /** Explicit config overrides; defaults are not stored. */
  readonly configs: Readonly<Record<string, string>>;
}

/**
 * Kafka's LeaderRecoveryState: 0 RECOVERED (the normal state), 1 RECOVERING (set by an
 * unclean election until the new leader reports it has recovered through AlterPartition).
 */
export type LeaderRecoveryState = 0 | 1;

/** A partition's full replica state (Kafka's PartitionRecord). */
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
  /** Absent in records written before the cluster work: RECOVERED (0). */
  readonly leaderRecoveryState?: LeaderRecoveryState;
}

/**
 * A change to an existing partition (Kafka's PartitionChangeRecord); an absent field is
 * unchanged. Applying it bumps `partitionEpoch`, and bumps `leaderEpoch` whenever `leader`
 * is present (as Kafka: the controller writes `leader` only to change it, or to force
 * an epoch bump).
 */
export interface PartitionChangeRecord {
  readonly type: "PartitionChange";
  readonly topicId: string;
  readonly partitionId: number;
  /** The new leader, -1 for none. */
  readonly leader?: number;
  readonly isr?: readonly number[];
  readonly replicas?: readonly number[];
  readonly leaderRecoveryState?: LeaderRecoveryState;
}

/** A topic and all its partitions are removed. */
export interface RemoveTopicRecord {
  readonly type: "RemoveTopic";
  readonly topicId: string;
}

/**
 * Sets (value) or clears (null) one config: a topic's override (`topicId`), or a dynamic
 * broker config (`broker`: the broker id, or "" for the cluster-wide default) as Kafka's
 * ConfigRecord with resource type BROKER.
 */
export interface ConfigRecord {
  readonly type: "Config";
  /** The topic's id; absent for a broker config. */
  readonly topicId?: string;
  /** A broker config: the broker id as a decimal string, or "" for the cluster default. */
  readonly broker?: string;
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

/** One listener of a broker (Kafka's RegisterBrokerRecord endpoint, one per listener). */
export interface BrokerEndpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * A broker registers (Kafka's RegisterBrokerRecord). A registration of an id that is
 * already registered replaces the old one, with its new incarnation and epoch. The
 * controller always writes `fenced: true`: a broker is unfenced only once it has caught
 * up with the metadata log (BrokerRegistrationChange).
 */
export interface RegisterBrokerRecord {
  readonly type: "RegisterBroker";
  readonly brokerId: number;
  /** A uuid the broker process picks at start: tells a restart from a retry. */
  readonly incarnationId: string;
  /** Assigned by the controller, increasing per broker id (the metadata offset at registration). */
  readonly brokerEpoch: number;
  readonly endpoints: readonly BrokerEndpoint[];
  readonly rack: string | null;
  readonly fenced: boolean;
}

/** Fences/unfences a broker or marks its controlled shutdown (Kafka's BrokerRegistrationChangeRecord). */
export interface BrokerRegistrationChangeRecord {
  readonly type: "BrokerRegistrationChange";
  readonly brokerId: number;
  /** Must equal the current registration's epoch. */
  readonly brokerEpoch: number;
  /** Absent: unchanged. */
  readonly fenced?: boolean;
  /** Absent: unchanged. */
  readonly inControlledShutdown?: boolean;
}

/** A broker's registration is removed (Kafka's UnregisterBrokerRecord). */
export interface UnregisterBrokerRecord {
  readonly type: "UnregisterBroker";
  readonly brokerId: number;
  /** Must equal the current registration's epoch. */
  readonly brokerEpoch: number;
}

export type MetadataRecord =
  | ClusterRecord
  | TopicRecord
  | PartitionRecord
  | RemoveTopicRecord
  | ConfigRecord
  | ProducerIdsRecord
  | RegisterBrokerRecord
  | BrokerRegistrationChangeRecord
  | UnregisterBrokerRecord
  | PartitionChangeRecord;
