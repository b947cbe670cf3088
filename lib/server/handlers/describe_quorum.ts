/**
 * DescribeQuorum (key 55): v0-2.
 *
 * Behaviour: describes the metadata quorum (`__cluster_metadata`, partition 0) from this
 * node's own Raft view: leaderId (-1 if unknown), leaderEpoch = the Raft term,
 * highWatermark = the commit index, and the voters. On the Raft leader each voter's
 * logEndOffset is its match index (this node: its last index); elsewhere only this
 * node's own last index is known and the others are -1. Observers are always empty
 * (every node is a voter). A request that is not exactly one topic
 * `__cluster_metadata` with one partition 0 gets UNKNOWN_TOPIC_OR_PARTITION for each
 * partition it names, as Kafka's `KafkaRaftClient.handleDescribeQuorumRequest` does.
 *
 * Deviation from Kafka: Kafka forwards this API to the active controller and a
 * non-leader answers NOT_LEADER_OR_FOLLOWER. Here every node answers with its own view,
 * which is what `tidelog status` shows per node.
 *
 * Version notes: v1 adds lastFetchTimestamp / lastCaughtUpTimestamp (-1 for voters, as
 * we do not track follower fetch times; the leader's own lastCaughtUpTimestamp is now);
 * v2 adds error messages, replicaDirectoryId (zero: no directory ids) and `nodes`, the
 * registered brokers' listeners (name "PLAINTEXT").
 */
import {
  ApiKey,
  type DescribeQuorumRequest,
  type DescribeQuorumResponse,
  type DescribeQuorumResponseReplicaState,
  ErrorCode,
  ZERO_UUID,
} from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";

/** The metadata log's topic name in Kafka's KRaft. */
export const METADATA_TOPIC = "__cluster_metadata";
const METADATA_PARTITION = 0;

/** Whether `req` names exactly the metadata partition (Kafka's `hasValidTopicPartition`). */
function isMetadataPartition(req: DescribeQuorumRequest): boolean {
  if (req.topics.length !== 1) return false;
  const topic = req.topics[0]!;
  return topic.topicName === METADATA_TOPIC && topic.partitions.length === 1 &&
    topic.partitions[0]!.partitionIndex === METADATA_PARTITION;
}

/** Every partition of `req` with `code` (Kafka's `getPartitionLevelErrorResponse`). */
function partitionErrors(
  req: DescribeQuorumRequest,
  code: number,
  message: string | null,
): Partial<DescribeQuorumResponse> {
  return {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topics: req.topics.map((t) => ({
      topicName: t.topicName,
      partitions: t.partitions.map((p) => ({
        partitionIndex: p.partitionIndex,
        errorCode: code,
        errorMessage: message,
        leaderId: -1,
        leaderEpoch: -1,
        highWatermark: -1n,
        currentVoters: [],
        observers: [],
      })),
    })),
    nodes: [],
  };
}

/** The quorum as this node sees it. */
export function describeQuorum(services: BrokerServices): Partial<DescribeQuorumResponse> {
  const st = services.metadata.status();
  const isLeader = st.role === "leader";
  const now = BigInt(services.clock.nowMs());
  const voters: DescribeQuorumResponseReplicaState[] = [...st.voters].sort((a, b) => a - b).map(
    (id) => {
      const self = id === st.id;
      const logEnd = self ? st.lastIndex : isLeader ? st.match[id] ?? -1 : -1;
      return {
        replicaId: id,
        replicaDirectoryId: ZERO_UUID,
        logEndOffset: BigInt(logEnd),
        lastFetchTimestamp: -1n,
        lastCaughtUpTimestamp: self && isLeader ? now : -1n,
      };
    },
  );
  const brokers = [...services.metadata.image.brokers.values()].sort((a, b) =>
    a.brokerId - b.brokerId
  );
  return {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topics: [{
      topicName: METADATA_TOPIC,
      partitions: [{
        partitionIndex: METADATA_PARTITION,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        leaderId: st.leader ?? -1,
        leaderEpoch: st.term,
        highWatermark: BigInt(st.commit),
        currentVoters: voters,
        observers: [],
      }],
    }],
    nodes: brokers.map((b) => ({
      nodeId: b.brokerId,
      listeners: b.endpoints.map((e) => ({ name: "PLAINTEXT", host: e.host, port: e.port })),
    })),
  };
}

export const describeQuorumHandler: ApiHandler<typeof ApiKey.DescribeQuorum> = {
  apiKey: ApiKey.DescribeQuorum,
  minVersion: 0,
  maxVersion: 2,
  handle(ctx, req) {
    if (!isMetadataPartition(req)) {
      return respond(
        partitionErrors(
          req,
          ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          "This server does not host this topic-partition.",
        ),
      );
    }
    return respond(describeQuorum(ctx.services));
  },
  errorResponse: (_req, code) => ({ errorCode: code, topics: [], nodes: [] }),
};
