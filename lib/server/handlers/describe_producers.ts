/**
 * DescribeProducers (key 61): v0.
 *
 * Behaviour: for each partition this node leads, the idempotent producers its producer
 * state remembers: id, epoch, last sequence and timestamp of the newest batch, the epoch of
 * the coordinator that wrote its last transaction marker, and the first offset of its open
 * transaction (-1 when none is open), as `kafka-transactions describe-producers` shows.
 * Any replica answers from its own log, as Kafka's Partition.activeProducerState does
 * (`kafka-transactions describe-producers --broker-id` and `find-hanging` ask followers);
 * a partition of a missing topic gets UNKNOWN_TOPIC_OR_PARTITION, one with no replica here
 * NOT_LEADER_OR_FOLLOWER.
 *
 * Version notes: v0 is flexible.
 */
import { ApiKey, type DescribeProducersRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

export const describeProducersHandler: ApiHandler<typeof ApiKey.DescribeProducers> = {
  apiKey: ApiKey.DescribeProducers,
  minVersion: 0,
  maxVersion: 0,
  handle(ctx, req: DescribeProducersRequest) {
    const { services } = ctx;
    const image = services.metadata.image;
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => {
        const fail = (errorCode: number, errorMessage: string) => ({
          partitionIndex,
          errorCode,
          errorMessage,
          activeProducers: [],
        });
        const topic = image.topic(t.name);
        if (!topic || partitionIndex < 0 || partitionIndex >= topic.partitions.length) {
          return fail(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `This server does not host ${t.name}-${partitionIndex}.`,
          );
        }
        const partition = services.replicas.getPartition(t.name, partitionIndex);
        if (!partition || partition.closed) {
          return fail(
            ErrorCode.NOT_LEADER_OR_FOLLOWER,
            `This node holds no replica of ${t.name}-${partitionIndex}.`,
          );
        }
        return {
          partitionIndex,
          errorCode: ErrorCode.NONE,
          errorMessage: null,
          activeProducers: partition.producerState.state.entries().map((e) => {
            const last = e.batches[e.batches.length - 1];
            return {
              producerId: e.producerId,
              producerEpoch: e.producerEpoch,
              lastSequence: last?.lastSeq ?? -1,
              lastTimestamp: BigInt(last?.timestamp ?? -1),
              coordinatorEpoch: e.coordinatorEpoch ?? -1,
              currentTxnStartOffset: BigInt(e.currentTxnFirstOffset ?? -1),
            };
          }),
        };
      }),
    }));
    return respond({ topics });
  },
  errorResponse: (req, code) => ({
    topics: req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitionIndexes.map((partitionIndex) => ({
        partitionIndex,
        errorCode: code,
        errorMessage: null,
        activeProducers: [],
      })),
    })),
  }),
};
