/**
 * DescribeTopicPartitions (key 75): v0 (KIP-966; the admin client's describeTopics).
 *
 * Behaviour: the listed topics (all topics when the list is empty), sorted by name, each
 * with its partitions' leader, epoch, replicas, ISR and offline replicas, as Metadata
 * gives them. At most `responsePartitionLimit` partitions (capped at Kafka's 2000) are
 * returned; `nextCursor` names the first partition left out, and a request with a cursor
 * starts there. A listed topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION.
 * Eligible leader replicas are not kept (ELR is off), so those lists are empty.
 *
 * Version notes: v0 is flexible.
 */
import { isInternalTopic } from "../topics.ts";
import {
  ApiKey,
  type DescribeTopicPartitionsRequest,
  ErrorCode,
  ZERO_UUID,
} from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { ALL_TOPIC_OPERATIONS, leaderForClients } from "./metadata.ts";

/** Kafka's max.request.partition.size.limit default. */
const MAX_PARTITIONS_PER_RESPONSE = 2000;

export const describeTopicPartitionsHandler: ApiHandler<typeof ApiKey.DescribeTopicPartitions> = {
  apiKey: ApiKey.DescribeTopicPartitions,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, req: DescribeTopicPartitionsRequest) {
    const { services } = ctx;
    const image = services.metadata.image;
    const live = new Set(image.liveBrokers());
    const names = req.topics.length === 0
      ? [...image.topicsByName.keys()]
      : [...new Set(req.topics.map((t) => t.name))];
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const cursor = req.cursor;
    let limit = Math.min(Math.max(req.responsePartitionLimit, 1), MAX_PARTITIONS_PER_RESPONSE);
    const topics = [];
    let nextCursor: { topicName: string; partitionIndex: number } | null = null;
    for (const name of names) {
      if (cursor && name < cursor.topicName) continue;
      const topic = image.topic(name);
      if (!topic) {
        topics.push({
          errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
          name,
          topicId: ZERO_UUID,
          isInternal: false,
          partitions: [],
          topicAuthorizedOperations: ALL_TOPIC_OPERATIONS,
        });
        continue;
      }
      const first = cursor && name === cursor.topicName ? Math.max(cursor.partitionIndex, 0) : 0;
      if (limit === 0) {
        nextCursor = { topicName: name, partitionIndex: first };
        break;
      }
      const partitions = [];
      let index = first;
      for (; index < topic.partitions.length && limit > 0; index++, limit--) {
        const p = topic.partitions[index]!;
        const leader = leaderForClients(services, p.leader);
        partitions.push({
          errorCode: leader === -1 ? ErrorCode.LEADER_NOT_AVAILABLE : ErrorCode.NONE,
          partitionIndex: index,
          leaderId: leader,
          leaderEpoch: p.leaderEpoch,
          replicaNodes: [...p.replicas],
          isrNodes: [...p.isr],
          eligibleLeaderReplicas: [],
          lastKnownElr: [],
          offlineReplicas: p.replicas.filter((r) => !live.has(r)),
        });
      }
      topics.push({
        errorCode: ErrorCode.NONE,
        name,
        topicId: topic.topicId,
        isInternal: isInternalTopic(name),
        partitions,
        topicAuthorizedOperations: ALL_TOPIC_OPERATIONS,
      });
      if (index < topic.partitions.length) {
        nextCursor = { topicName: name, partitionIndex: index };
        break;
      }
    }
    return respond({ topics, nextCursor });
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({
      errorCode: code,
      name: t.name,
      topicId: ZERO_UUID,
      isInternal: false,
      partitions: [],
      topicAuthorizedOperations: ALL_TOPIC_OPERATIONS,
    })),
    nextCursor: null,
  }),
};
