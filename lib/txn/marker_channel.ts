/**
 * Delivers transaction markers to partition leaders (Kafka's TransactionMarkerChannelManager):
 * partitions led here are written in process, the others through one WriteTxnMarkers
 * request per leader, over a connection per broker that is opened on first use and
 * replaced when it fails. Every partition gets an answer: NONE once its marker is below
 * the high watermark, or the error that kept it (a missing leader is
 * NOT_LEADER_OR_FOLLOWER, an unreachable one REQUEST_TIMED_OUT or NETWORK_EXCEPTION), which
 * the coordinator retries.
 */
import { KafkaConnection } from "../client/mod.ts";
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import type { Network } from "../runtime/net.ts";
import type { Timers } from "../runtime/timers.ts";
import { getLogger } from "../util/log.ts";
import type { MarkerJob } from "./txn_coordinator.ts";
import type { TxnPartition } from "./txn_record.ts";
import { type MarkerResults, partitionKey } from "./txn_service.ts";

const log = getLogger(["tidelog", "txn"]);

/** A connect to a leader behind a partition must fail, not hang the job. */
const CONNECT_TIMEOUT_MS = 3000;
/** WriteTxnMarkers v1 (flexible), as Kafka 4.x brokers send it. */
const WRITE_TXN_MARKERS_VERSION = 1;

/** What the channel needs from the node. */
export interface MarkerChannelDeps {
  nodeId: number;
  /** The leader of a partition (-1: none), or undefined if the topic does not exist. */
  leaderOf(topic: string, partition: number): number | undefined;
  /** A broker's Kafka endpoint. */
  endpointOf(brokerId: number): { host: string; port: number } | undefined;
  /** Writes markers to partitions led here (the WriteTxnMarkers handler's path). */
  writeLocally(job: MarkerJob, partitions: readonly TxnPartition[]): Promise<MarkerResults>;
  net?: Network;
  timers: Timers;
}

/** Sends markers to partition leaders. */
export class MarkerChannel {
  readonly #deps: MarkerChannelDeps;
  readonly #conns = new Map<number, Promise<KafkaConnection>>();
  #closed = false;

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
    const conn = await this.#connection(brokerId);
    const topics = new Map<string, number[]>();
    for (const p of partitions) topics.set(p.topic, [...(topics.get(p.topic) ?? []), p.partition]);
    let response;
    try {
      response = await conn.request(ApiKey.WriteTxnMarkers, WRITE_TXN_MARKERS_VERSION, {
        markers: [{
          producerId: job.producerId,
          producerEpoch: job.producerEpoch,
          transactionResult: job.commit,
          coordinatorEpoch: job.coordinatorEpoch,
          topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
        }],
      });
    } catch (err) {
      this.#drop(brokerId, conn);
      throw err;
    }
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

  #connection(brokerId: number): Promise<KafkaConnection> {
    const existing = this.#conns.get(brokerId);
    if (existing !== undefined) return existing;
    if (this.#closed) return Promise.reject(new Error("The marker channel is closed"));
    const endpoint = this.#deps.endpointOf(brokerId);
    if (endpoint === undefined) {
      return Promise.reject(new Error(`Broker ${brokerId} has no known endpoint`));
    }
    const conn = KafkaConnection.connect(
      endpoint.host,
      endpoint.port,
      `tidelog-txn-markers-${this.#deps.nodeId}`,
      { net: this.#deps.net, timeoutMs: CONNECT_TIMEOUT_MS, timers: this.#deps.timers },
    );
    this.#conns.set(brokerId, conn);
    const forget = () => {
      if (this.#conns.get(brokerId) === conn) this.#conns.delete(brokerId);
    };
    conn.then((c) => c.closed.finally(forget), forget);
    return conn;
  }

  #drop(brokerId: number, conn: KafkaConnection): void {
    const entry = this.#conns.get(brokerId);
    entry?.then((c) => {
      if (c === conn && this.#conns.get(brokerId) === entry) this.#conns.delete(brokerId);
    }, () => {});
    void conn.close();
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.then((conn) => conn.close(), () => {});
    this.#conns.clear();
  }
}
