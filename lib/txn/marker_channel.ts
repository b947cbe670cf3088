/**
 * Delivers transaction markers to partition leaders (Kafka's TransactionMarkerChannelManager):
 * partitions led here are written in process, the others through one WriteTxnMarkers
 * request per leader, over the node's connection to that broker. Every partition gets an answer: NONE once its marker is below
 * the high watermark, or the error that kept it (a missing leader is
 * NOT_LEADER_OR_FOLLOWER, an unreachable one REQUEST_TIMED_OUT or NETWORK_EXCEPTION), which
 * the coordinator retries.
 */
import type { BrokerConnections } from "../client/mod.ts";
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import { getLogger } from "../util/log.ts";
import type { MarkerJob } from "./txn_coordinator.ts";
import type { TxnPartition } from "./txn_record.ts";
import { type MarkerResults, partitionKey } from "./txn_service.ts";

const log = getLogger(["tidelog", "txn"]);

/**
 * How long a WriteTxnMarkers call may take: the leader waits up to 5 s for its high
 * watermark; past this the connection is dropped and the partitions retried (a leader cut
 * off without a reset would otherwise hold the transaction in its Prepare state).
 */
const MARKER_CALL_MS = 10_000;
/** WriteTxnMarkers v1 (flexible), as Kafka 4.x brokers send it. */
const WRITE_TXN_MARKERS_VERSION = 1;

/** What the channel needs from the node. */
export interface MarkerChannelDeps {
  nodeId: number;
  /** The leader of a partition (-1: none), or undefined if the topic does not exist. */
  leaderOf(topic: string, partition: number): number | undefined;
  /** Writes markers to partitions led here (the WriteTxnMarkers handler's path). */
  writeLocally(job: MarkerJob, partitions: readonly TxnPartition[]): Promise<MarkerResults>;
  /** Connections to the other brokers. */
  brokers: BrokerConnections;
}

/** Sends markers to partition leaders. */
export class MarkerChannel {
  readonly #deps: MarkerChannelDeps;

  constructor(deps: MarkerChannelDeps) {
    this.#deps = deps;
  }

  /** Writes `job`'s markers to `partitions`; resolves with a code per partition. */
  async write(job: MarkerJob, partitions: readonly TxnPartition[]): Promise<MarkerResults> {
    const results: MarkerResults = new Map();
    const byLeader = new Map<number, TxnPartition[]>();
    for (const p of partitions) {
      const leader = this.#deps.leaderOf(p.topic, p.partition);
      if (leader === undefined) {
        results.set(partitionKey(p), ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
      } else if (leader < 0) {
        results.set(partitionKey(p), ErrorCode.NOT_LEADER_OR_FOLLOWER);
      } else {
        byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
      }
    }
    await Promise.all([...byLeader].map(async ([leader, list]) => {
      let answer: MarkerResults;
      try {
        answer = leader === this.#deps.nodeId
          ? await this.#deps.writeLocally(job, list)
          : await this.#writeRemote(leader, job, list);
      } catch (err) {
        log.debug("Markers for {transactionalId} to broker {leader} failed: {error}", {
          transactionalId: job.transactionalId,
          leader,
          error: err,
        });
        answer = new Map(list.map((p) => [partitionKey(p), ErrorCode.NETWORK_EXCEPTION]));
      }
      for (const p of list) {
        results.set(partitionKey(p), answer.get(partitionKey(p)) ?? ErrorCode.UNKNOWN_SERVER_ERROR);
      }
    }));
    return results;
  }

  async #writeRemote(
    brokerId: number,
    job: MarkerJob,
    partitions: readonly TxnPartition[],
  ): Promise<MarkerResults> {
    const topics = new Map<string, number[]>();
    for (const p of partitions) topics.set(p.topic, [...(topics.get(p.topic) ?? []), p.partition]);
    const response = await this.#deps.brokers.call(
      brokerId,
      "markers",
      MARKER_CALL_MS,
      (conn) =>
        conn.request(ApiKey.WriteTxnMarkers, WRITE_TXN_MARKERS_VERSION, {
          markers: [{
            producerId: job.producerId,
            producerEpoch: job.producerEpoch,
            transactionResult: job.commit,
            coordinatorEpoch: job.coordinatorEpoch,
            topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
          }],
        }),
    );
    const results: MarkerResults = new Map();
    for (const m of response.markers) {
      for (const t of m.topics) {
        for (const p of t.partitions) {
          results.set(
            partitionKey({ topic: t.name, partition: p.partitionIndex }),
            p.errorCode as ErrorCode,
          );
        }
      }
    }
    return results;
  }
}
