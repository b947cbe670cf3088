/**
 * Produce (key 0): v3-11.
 *
 * Behaviour: each partition's batches are validated (magic 2, CRC32C, lengths, record
 * count) and appended in arrival order before the next request of the connection runs;
 * a bad batch fails only its partition (CORRUPT_MESSAGE, MESSAGE_TOO_LARGE) and writes
 * nothing for it. acks=1 is answered once the leader has fsynced the batches (under the
 * default flush policy); acks=-1 once they are below the high watermark, i.e. fsynced on
 * every ISR member (DESIGN §8), or with REQUEST_TIMED_OUT after `timeoutMs`. acks=-1 is
 * refused up front with NOT_ENOUGH_REPLICAS when the ISR is smaller than
 * `min.insync.replicas`, and answered NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank
 * below it while waiting (as Kafka's DelayedProduce). Only the leader appends: other
 * nodes answer NOT_LEADER_OR_FOLLOWER with the current leader (v10+, KIP-951:
 * `currentLeader` and the leader's endpoint in `nodeEndpoints`); a leader that loses
 * leadership while acks wait answers NOT_LEADER_OR_FOLLOWER for them. acks=0 gets no
 * reply; if any partition failed the connection is closed, as Kafka does, so the client
 * notices. A missing topic is auto-created when `auto.create.topics.enable` is on.
 *
 * Idempotent batches (producerId >= 0, from InitProducerId) are checked against the
 * partition's producer state (lib/producer): a retry of one of the producer's last 5
 * batches is answered with success and the original base offset, without writing
 * (KIP-98); a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch
 * INVALID_PRODUCER_EPOCH, a producer id without a sequence INVALID_RECORD.
 *
 * Transactional batches (KIP-98) are checked like idempotent ones; the first of a
 * transaction on a partition is accepted only once the transaction coordinator confirms
 * the partition was added to the producer's open transaction (KIP-890 part 1; see
 * txn_verification.ts): INVALID_TXN_STATE otherwise, NOT_ENOUGH_REPLICAS (retriable) when
 * the coordinator cannot be asked. A non-transactional batch while the producer has a
 * transaction open here is INVALID_TXN_STATE; control batches from clients INVALID_RECORD.
 *
 * Version notes: v0-2 carry magic 0/1 message sets, which are not stored, so they are
 * not served.
 */
import {
  ApiKey,
  BATCH_HEADER_SIZE,
  ErrorCode,
  isControl,
  isTransactional,
  type ProduceRequest,
  type ProduceResponse,
  readBatchHeader,
} from "../../protocol/mod.ts";
import type { DeepPartial } from "../../protocol/mod.ts";
import { topicConfigNumber } from "../../metadata/mod.ts";
import type { Partition } from "../../replication/mod.ts";
import type { Timers } from "../../runtime/timers.ts";
import { errorCodeOf, TidelogError } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { getOrAutoCreateTopic, isInternalTopic } from "../topics.ts";
import type { BrokerServices } from "../services.ts";
import { verifyTransactionPartition } from "../txn_verification.ts";
import { leaderForClients, nodeEndpoints } from "./metadata.ts";

type PartitionResponse = DeepPartial<
  ProduceResponse["responses"][number]["partitionResponses"][number]
>;

/** A partition's append that still has to become acknowledgeable. */
interface PendingAck {
  response: PartitionResponse;
  partition: Partition;
  lastOffset: number;
  /** acks=-1: wait for the high watermark and check min.insync.replicas again. */
  minIsr: number | null;
}

function errorEntry(index: number, code: number, message: string | null = null): PartitionResponse {
  return {
    index,
    errorCode: code,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    errorMessage: message,
  };
}

export const produceHandler: ApiHandler<typeof ApiKey.Produce> = {
  apiKey: ApiKey.Produce,
  minVersion: 3,
  maxVersion: 11,
  async handle(ctx, req: ProduceRequest) {
    const { services, log } = ctx;
    const acks = req.acks;
    const responses: { name: string; partitionResponses: PartitionResponse[] }[] = [];
    const pending: PendingAck[] = [];
    const leaders = new Set<number>();
    let failed = false;
    for (const topicData of req.topicData) {
      const partitionResponses: PartitionResponse[] = [];
      responses.push({ name: topicData.name, partitionResponses });
      let topicError: number = ErrorCode.NONE;
      if (acks !== 0 && acks !== 1 && acks !== -1) topicError = ErrorCode.INVALID_REQUIRED_ACKS;
      else if (isInternalTopic(topicData.name)) topicError = ErrorCode.INVALID_TOPIC_EXCEPTION;
      else {
        try {
          const topic = await getOrAutoCreateTopic(services, topicData.name, true);
          if (!topic) topicError = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
        } catch (err) {
          topicError = errorCodeOf(err);
        }
      }
      for (const p of topicData.partitionData) {
        if (topicError !== ErrorCode.NONE) {
          partitionResponses.push(errorEntry(p.index, topicError));
          failed = true;
          services.metrics.failedProduce.inc({ topic: topicData.name });
          continue;
        }
        const partition = services.replicas.getPartition(topicData.name, p.index);
        if (!partition || !partition.isLeader) {
          const state = services.metadata.image.topic(topicData.name)?.partitions[p.index];
          if (!state) {
            partitionResponses.push(errorEntry(p.index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION));
          } else {
            partitionResponses.push({
              ...errorEntry(p.index, ErrorCode.NOT_LEADER_OR_FOLLOWER),
              currentLeader: {
                leaderId: leaderForClients(services, state.leader),
                leaderEpoch: state.leaderEpoch,
              },
            });
            const leader = leaderForClients(services, state.leader);
            if (leader >= 0) leaders.add(leader);
          }
          failed = true;
          services.metrics.failedProduce.inc({ topic: topicData.name });
          continue;
        }
        try {
          const stillVerified = await verifyTransaction(
            services,
            req.transactionalId,
            partition,
            p.records,
          );
          const image = services.metadata.image;
          const topic = image.topicsById.get(partition.topicId);
          const isrSize = partition.isr.length;
          const minIsr = topic
            ? topicConfigNumber(
              topic.configs,
              "min.insync.replicas",
              image.brokerConfigLayers(services.config.nodeId, services.config.staticBrokerConfigs),
            )
            : 1;
          if (acks === -1 && isrSize < minIsr) {
            throw new TidelogError(
              ErrorCode.NOT_ENOUGH_REPLICAS,
              `The size of the current ISR ${isrSize} is insufficient to satisfy the min.isr requirement of ${minIsr} for partition ${partition.name}`,
            );
          }
          if (!stillVerified()) {
            // A marker (or a truncation) came while the coordinator was asked: ask again.
            throw new TidelogError(
              ErrorCode.NOT_ENOUGH_REPLICAS,
              `The transaction state of ${partition.name} changed during verification`,
            );
          }
          const result = services.replicas.appendAsLeader(partition, p.records);
          if (!result.duplicate) {
            const labels = { topic: topicData.name };
            services.metrics.messagesIn.inc(labels, result.lastOffset - result.baseOffset + 1);
            services.metrics.bytesIn.inc(labels, p.records?.length ?? 0);
          }
          const response: PartitionResponse = {
            index: p.index,
            errorCode: ErrorCode.NONE,
            baseOffset: BigInt(result.baseOffset),
            logAppendTimeMs: BigInt(result.logAppendTimeMs),
            logStartOffset: BigInt(partition.log.logStartOffset),
          };
          partitionResponses.push(response);
          pending.push({
            response,
            partition,
            lastOffset: result.lastOffset,
            minIsr: acks === -1 ? minIsr : null,
          });
        } catch (err) {
          if (!(err instanceof TidelogError)) throw err;
          log.info("Produce to {partition} refused with {code}: {message}", {
            partition: partition.name,
            code: err.code,
            message: err.message,
          });
          // Kafka answers with a message only for record validation errors
          // (LogAppendResult.hasCustomErrorMessage); the rest is in our log line.
          const custom = err.code === ErrorCode.INVALID_RECORD ||
            err.code === ErrorCode.INVALID_TIMESTAMP;
          partitionResponses.push(errorEntry(p.index, err.code, custom ? err.message : null));
          failed = true;
          services.metrics.failedProduce.inc({ topic: topicData.name });
        }
      }
    }
    if (acks === 0) {
      return failed
        ? { kind: "close", reason: "acks=0 produce failed for some partitions" }
        : { kind: "silent" };
    }
    return respond(
      waitForAcks(ctx.services.timers, pending, req.timeoutMs).then(() => ({
        responses,
        nodeEndpoints: nodeEndpoints(services, leaders),
      })),
    );
  },
  errorResponse: (req, code) => ({
    responses: req.topicData.map((t) => ({
      name: t.name,
      partitionResponses: t.partitionData.map((p) => errorEntry(p.index, code)),
    })),
  }),
};

/**
 * Before a transaction's first batch on `partition`: asks the coordinator that the
 * partition is in the producer's open transaction; throws the produce error if not.
 * Returns a check to make in the same step as the append: false if a marker (or a
 * truncation) came meanwhile, which may have ended the transaction verified.
 */
async function verifyTransaction(
  services: BrokerServices,
  transactionalId: string | null,
  partition: Partition,
  records: Uint8Array | null,
): Promise<() => boolean> {
  const always = () => true;
  if (records === null) return always;
  // Every producer with a transactional batch here and no transaction open yet (clients
  // send one batch per partition; a request with more is checked batch by batch).
  const producers = new Map<bigint, number>();
  for (let pos = 0; pos + BATCH_HEADER_SIZE <= records.length;) {
    const h = readBatchHeader(records, pos);
    if (h.sizeInBytes <= 0) break;
    pos += h.sizeInBytes;
    if (!isTransactional(h) || isControl(h) || h.producerId < 0n) continue;
    if (transactionalId === null) {
      // As Kafka: transactional records need the transactional id they belong to.
      throw new TidelogError(
        ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        `Transactional records for ${partition.name} without a transactional id`,
      );
    }
    producers.set(h.producerId, h.producerEpoch);
  }
  if (transactionalId === null) return always;
  const state = partition.producerState.state;
  for (const id of state.ongoingTransactions().keys()) producers.delete(id);
  if (producers.size === 0) return always;
  const markers = state.markersAppended;
  for (const [producerId, producerEpoch] of producers) {
    const code = await verifyTransactionPartition(
      services,
      { transactionalId, producerId, producerEpoch },
      partition.topic,
      partition.partitionId,
    );
    if (code !== ErrorCode.NONE) {
      throw new TidelogError(
        code,
        `${partition.name} is not in an open transaction of ${transactionalId} (producer ${producerId}, epoch ${producerEpoch})`,
      );
    }
  }
  return () => partition.producerState.state === state && state.markersAppended === markers;
}

/**
 * Waits until every pending append is below its partition's high watermark, marking
 * those still waiting after `timeoutMs` as REQUEST_TIMED_OUT (and those whose wait
 * failed, e.g. a failed fsync, as KAFKA_STORAGE_ERROR).
 */
async function waitForAcks(
  timers: Timers,
  pending: PendingAck[],
  timeoutMs: number,
): Promise<void> {
  if (pending.length === 0) return;
  const waits = pending.map(async (p) => {
    try {
      if (p.minIsr === null) {
        await p.partition.waitLocalDurable(p.lastOffset);
      } else {
        await p.partition.waitForHighWatermark(p.lastOffset);
        if (p.partition.isr.length < p.minIsr) {
          p.response.errorCode = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND;
        }
      }
    } catch (err) {
      p.response.errorCode = err instanceof TidelogError ? err.code : ErrorCode.KAFKA_STORAGE_ERROR;
    }
    return true;
  });
  let timer: ReturnType<Timers["setTimeout"]> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = timers.setTimeout(() => resolve(false), Math.max(0, timeoutMs));
  });
  const settled = pending.map(() => false);
  const all = Promise.all(waits.map((w, i) => w.then(() => (settled[i] = true))));
  const finished = await Promise.race([all.then(() => true), timeout]);
  timers.clearTimeout(timer);
  if (finished) return;
  pending.forEach((p, i) => {
    if (!settled[i]) p.response.errorCode = ErrorCode.REQUEST_TIMED_OUT;
  });
}
