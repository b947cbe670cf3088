/**
 * What handlers may use: this node's identity and settings, the metadata store and the
 * hosted partitions. Built by `lib/node.ts`; tests build their own.
 */
import type { BrokerConnections } from "../client/mod.ts";
import type { GroupService } from "../group/mod.ts";
import type { ProducerIdManager } from "../producer/mod.ts";
import type { TxnService } from "../txn/mod.ts";
import type {
  BrokerLifecycle,
  ControllerChannel,
  ControllerContext,
  ControllerService,
  RaftMetadataStore,
} from "../metadata/mod.ts";
import type { ReplicaManager } from "../replication/mod.ts";
import type { BrokerMetrics } from "./broker_metrics.ts";
import type { Timers } from "../runtime/timers.ts";
import type { Clock } from "../util/clock.ts";

/** Broker-level settings (Kafka's names in comments). */
export interface BrokerConfig {
  nodeId: number;
  /** Host and port that Metadata advertises for this node. */
  advertisedHost: string;
  advertisedPort: number;
  /** `auto.create.topics.enable` */
  autoCreateTopics: boolean;
  /** `num.partitions` */
  numPartitions: number;
  /** `default.replication.factor` */
  defaultReplicationFactor: number;
  /** `socket.request.max.bytes`: larger frames close the connection. */
  maxRequestBytes: number;
  /** `offsets.topic.replication.factor`: min(3, Raft voters). */
  offsetsTopicReplicationFactor: number;
  /** `listeners`: the Kafka listen address, host:port. */
  listenAddress: string;
  /** `log.dirs`: the one directory holding the partition logs. */
  logDir: string;
  /** `controller.quorum.voters`: id@host:port of every Raft voter. */
  quorumVoters: string;
  /**
   * Static broker defaults of topic configs from the `--config` file (`log.retention.ms`,
   * `min.insync.replicas`, ...), by broker key: under the dynamic broker configs.
   */
  staticBrokerConfigs: Readonly<Record<string, string>>;
}

/** Everything a handler can reach. */
export interface BrokerServices {
  readonly config: BrokerConfig;
  readonly metadata: RaftMetadataStore;
  readonly replicas: ReplicaManager;
  /** The consumer-group coordinator for the offsets partitions this node leads. */
  readonly groups: GroupService;
  /** The transaction coordinator for the `__transaction_state` partitions this node leads. */
  readonly txn: TxnService;
  /** Producer ids for idempotent and transactional producers (blocks from the controller). */
  readonly producerIds: ProducerIdManager;
  /** Connections to the other brokers (transaction markers and verification). */
  readonly brokers: BrokerConnections;
  /** Counters the request path updates (rendered at /metrics). */
  readonly metrics: BrokerMetrics;
  readonly clock: Clock;
  /** Timers for request deadlines and long polls. */
  readonly timers: Timers;
  /** The controller's view of the cluster for planning changes. */
  controllerContext(): ControllerContext;
  /** The controller logic (acts only while this node is the Raft leader). */
  readonly controller: ControllerService;
  /** Calls to the controller, wherever it is (local or over the network). */
  readonly controllerChannel: ControllerChannel;
  /** This node's broker registration and heartbeats. */
  readonly lifecycle: BrokerLifecycle;
}
