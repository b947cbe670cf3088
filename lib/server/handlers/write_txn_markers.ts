/**
 * WriteTxnMarkers (key 27): v0-1, sent by transaction coordinators to partition leaders.
 *
 * Behaviour: for each marker and partition this node leads, appends a control batch (commit
 * or abort, with the producer id and epoch and the coordinator epoch) and answers once it
 * is below the high watermark (markers are written with acks=all, as Kafka does), or
 * REQUEST_TIMED_OUT after 5 s (the coordinator retries). A marker of an older producer
 * epoch gets INVALID_PRODUCER_EPOCH, one of an older coordinator epoch
 * TRANSACTION_COORDINATOR_FENCED; a partition led elsewhere NOT_LEADER_OR_FOLLOWER, one of
 * an unknown topic UNKNOWN_TOPIC_OR_PARTITION, an ISR below `min.insync.replicas`
 * NOT_ENOUGH_REPLICAS. Once a marker is durable in a `__consumer_offsets` partition, the
 * group coordinator makes the transaction's offset commits visible (or drops them).
 *
 * The coordinator on this node uses the same path in process for the partitions it leads.
 */
import { OFFSETS_TOPIC } from "../../group/mod.ts";
import { topicConfigNumber } from "../../metadata/mod.ts";
import { ApiKey, ErrorCode, type WriteTxnMarkersRequest } from "../../protocol/mod.ts";
import {
  type MarkerJob,
  type MarkerResults,
  partitionKey,
  type TxnPartition,
} from "../../txn/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { TimeoutError, withTimeout } from "../../util/timeout.ts";
import { getLogger } from "../../util/log.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";

const log = getLogger(["tidelog", "txn"]);

/**
 * How long a marker waits for the high watermark before REQUEST_TIMED_OUT (the coordinator
 * retries, with the partition's leader of then): shorter than the coordinator's call
 * deadline, so a slow ISR is told apart from a lost leader.
 */
const MARKER_TIMEOUT_MS = 5000;

/** Writes `job`'s markers to the partitions of `partitions` led here. */
export async function writeMarkersLocally(
  services: BrokerServices,
  job: MarkerJob,
  partitions: readonly TxnPartition[],
): Promise<MarkerResults> {
  const results: MarkerResults = new Map();
  const image = services.metadata.image;
  await Promise.all(partitions.map(async (p) => {
    const key = partitionKey(p);
    const topic = image.topic(p.topic);
    if (!topic || p.partition < 0 || p.partition >= topic.partitions.length) {
      results.set(key, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      return;
    }
    const partition = services.replicas.getPartition(p.topic, p.partition);
    if (!partition || !partition.isLeader) {
      results.set(key, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      return;
    }
    try {
      const minIsr = topicConfigNumber(
        topic.configs,
        "min.insync.replicas",
        image.brokerConfigLayers(services.config.nodeId, services.config.staticBrokerConfigs),
      );
      if (partition.isr.length < minIsr) {
        throw new TidelogError(
          ErrorCode.NOT_ENOUGH_REPLICAS,
          `The ISR of ${partition.name} (${partition.isr.length}) is below min.insync.replicas ${minIsr}`,
        );
      }
      const offset = services.replicas.appendMarkerAsLeader(partition, job);
      await withTimeout(
        partition.waitForHighWatermark(offset),
        MARKER_TIMEOUT_MS,
        undefined,
        services.timers,
      );
      if (p.topic === OFFSETS_TOPIC) {
        services.groups.completeTransaction(job.producerId, p.partition, job.commit);
      }
      results.set(key, ErrorCode.NONE);
    } catch (err) {
      const code = err instanceof TidelogError
        ? err.code
        : err instanceof TimeoutError
        ? ErrorCode.REQUEST_TIMED_OUT
        : ErrorCode.KAFKA_STORAGE_ERROR;
      log.info("Transaction marker of producer {producerId} for {partition} refused: {error}", {
        producerId: job.producerId,
        partition: key,
        error: err,
      });
      results.set(key, code);
    }
  }));
  return results;
}

export const writeTxnMarkersHandler: ApiHandler<typeof ApiKey.WriteTxnMarkers> = {
  apiKey: ApiKey.WriteTxnMarkers,
  minVersion: 0,
  maxVersion: 1,
  handle(ctx, req: WriteTxnMarkersRequest) {
    return respond(
      Promise.all(req.markers.map(async (m) => {
        const partitions = m.topics.flatMap((t) =>
          t.partitionIndexes.map((partition) => ({ topic: t.name, partition }))
        );
        const results = await writeMarkersLocally(ctx.services, {
          transactionalId: "",
          producerId: m.producerId,
          producerEpoch: m.producerEpoch,
          coordinatorEpoch: m.coordinatorEpoch,
          commit: m.transactionResult,
          partitions,
        }, partitions);
        return {
          producerId: m.producerId,
          topics: m.topics.map((t) => ({
            name: t.name,
            partitions: t.partitionIndexes.map((partitionIndex) => ({
              partitionIndex,
              errorCode: results.get(partitionKey({ topic: t.name, partition: partitionIndex })) ??
                ErrorCode.UNKNOWN_SERVER_ERROR,
            })),
          })),
        };
      })).then((markers) => ({ markers })),
    );
  },
  errorResponse: (req, code) => ({
    markers: req.markers.map((m) => ({
      producerId: m.producerId,
      topics: m.topics.map((t) => ({
        name: t.name,
        partitions: t.partitionIndexes.map((partitionIndex) => ({
          partitionIndex,
          errorCode: code,
        })),
      })),
    })),
  }),
};
