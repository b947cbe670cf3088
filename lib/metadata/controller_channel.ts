/**
 * How a node reaches the controller (DESIGN §7): calls run locally when this node is the
 * Raft leader, else go over the Kafka protocol to the controller's Kafka listener
 * (BrokerRegistration, BrokerHeartbeat, AlterPartition, AllocateProducerIds, and admin
 * requests forwarded as they came). The controller's address comes from its broker
 * registration in the image; the controller registers itself as soon as it is elected.
 *
 * Every call retries, until its deadline, while there is no controller, the controller is
 * not registered yet, the connection fails, or the answer is NOT_CONTROLLER (the
 * leadership moved). Registration and heartbeats keep their own connection to the
 * current controller, so the controller sees this broker's heartbeats stop when the
 * process dies (that connection closes), and nothing else can delay or close it.
 */
import type { Logger } from "@logtape/logtape";
import { KafkaConnection } from "../client/mod.ts";
import {
  ApiKey,
  type DeepPartial,
  ErrorCode,
  type RequestTypes,
  type ResponseTypes,
} from "../protocol/mod.ts";
import { denoNet, type Network } from "../runtime/net.ts";
import { sleep, systemTimers, type Timers } from "../runtime/timers.ts";
import { type Clock, systemClock } from "../util/clock.ts";
import { TidelogError } from "../util/errors.ts";
import { getLogger } from "../util/log.ts";
import { withTimeout } from "../util/timeout.ts";
import type {
  AlterPartitionRequest,
  BrokerHeartbeat,
  BrokerHeartbeatReply,
} from "./cluster_controller.ts";
import {
  asControllerError,
  type BrokerRegistrationInput,
  type ControllerService,
} from "./controller_service.ts";
import type { PartitionState } from "./metadata_image.ts";
import type { LeaderRecoveryState } from "./records.ts";
import type { RaftMetadataStore } from "./raft_metadata_store.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

/** The controller's answer to an AlterPartition request. */
export interface IsrChangeResult {
  errorCode: number;
  /** The partition after the change (absent on error). */
  partition?: Pick<
    PartitionState,
    "leader" | "leaderEpoch" | "isr" | "partitionEpoch" | "leaderRecoveryState"
  >;
}

/** Options of {@linkcode ControllerChannel}. */
export interface ControllerChannelOptions {
  nodeId: number;
  store: RaftMetadataStore;
  controller: ControllerService;
  /** How long one call keeps retrying. @default 5000 */
  callTimeoutMs?: number;
  /** Measures the calls' deadlines. @default systemClock */
  clock?: Clock;
  /** Timers of the retry pauses and of each remote call's timeout. @default systemTimers */
  timers?: Timers;
  /** Where the connections to the controller come from. @default denoNet */
  net?: Network;
  logger?: Logger;
}

const RETRY_MS = 50;
const CONNECT_TIMEOUT_MS = 1000;

class RetryableError extends Error {}

/**
 * From {@linkcode ControllerChannel.forward}: this node became the controller while the
 * request was on its way; the caller should handle it locally.
 */
export class BecameControllerError extends Error {
  constructor() {
    super("This node is the controller now");
    this.name = "BecameControllerError";
  }
}

type Lane = "liveness" | "requests";

/** See the module documentation. */
export class ControllerChannel {
  readonly #o: ControllerChannelOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #net: Network;
  /**
   * Connections to the controller: "liveness" carries registration and heartbeats only
   * (its close tells the controller this broker died, so a slow admin request must never
   * time it out), "requests" everything else.
   */
  readonly #conns = new Map<Lane, { controllerId: number; conn: Promise<KafkaConnection> }>();
  #closed = false;

  constructor(options: ControllerChannelOptions) {
    this.#o = options;
    this.#log = options.logger ?? getLogger(["tidelog", "controller-channel"]);
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#net = options.net ?? denoNet;
  }

  /** Registers this broker; resolves with its broker epoch. */
  registerBroker(req: BrokerRegistrationInput, timeoutMs?: number): Promise<number> {
    return this.#call(
      () => this.#o.controller.registerBroker(req),
      async (conn) => {
        const r = await conn.request(ApiKey.BrokerRegistration, 0, {
          brokerId: req.brokerId,
          clusterId: req.clusterId,
          incarnationId: req.incarnationId,
          listeners: req.endpoints.map((e) => ({
            name: "PLAINTEXT",
            host: e.host,
            port: e.port,
            securityProtocol: 0,
          })),
          features: [],
          rack: req.rack,
        });
        throwIfError(r.errorCode, "BrokerRegistration");
        return Number(r.brokerEpoch);
      },
      timeoutMs,
      "liveness",
    );
  }

  /** Sends one heartbeat. */
  heartbeat(hb: BrokerHeartbeat, timeoutMs?: number): Promise<BrokerHeartbeatReply> {
    return this.#call(
      () => this.#o.controller.heartbeat(hb),
      async (conn) => {
        const r = await conn.request(ApiKey.BrokerHeartbeat, 0, {
          brokerId: hb.brokerId,
          brokerEpoch: BigInt(hb.brokerEpoch),
          currentMetadataOffset: BigInt(hb.currentMetadataOffset),
          wantFence: hb.wantFence,
          wantShutDown: hb.wantShutDown,
        });
        throwIfError(r.errorCode, "BrokerHeartbeat");
        return {
          errorCode: r.errorCode as ErrorCode,
          isCaughtUp: r.isCaughtUp,
          isFenced: r.isFenced,
          shouldShutDown: r.shouldShutDown,
          // Not on the wire: the broker learns it from its own registration in the image.
          inControlledShutdown: false,
        };
      },
      timeoutMs,
      "liveness",
    );
  }

  /** Asks the controller to change a partition's ISR (Kafka's AlterPartition). */
  alterPartition(req: AlterPartitionRequest, timeoutMs?: number): Promise<IsrChangeResult> {
    return this.#call<IsrChangeResult>(
      async () => {
        const r = await this.#o.controller.alterPartition(req);
        return r.partition ? { errorCode: r.errorCode, partition: r.partition } : {
          errorCode: r.errorCode,
        } as IsrChangeResult;
      },
      async (conn) => {
        const r = await conn.request(ApiKey.AlterPartition, 2, {
          brokerId: req.brokerId,
          brokerEpoch: BigInt(req.brokerEpoch),
          topics: [{
            topicId: req.topicId,
            partitions: [{
              partitionIndex: req.partitionId,
              leaderEpoch: req.leaderEpoch,
              newIsr: [...req.newIsr],
              leaderRecoveryState: req.leaderRecoveryState ?? 0,
              partitionEpoch: req.partitionEpoch,
            }],
          }],
        });
        throwIfError(r.errorCode, "AlterPartition");
        const p = r.topics[0]?.partitions[0];
        if (!p) throw new Error("AlterPartition response without the partition");
        if (p.errorCode === ErrorCode.NOT_CONTROLLER) throw new RetryableError("NOT_CONTROLLER");
        return p.errorCode !== ErrorCode.NONE ? { errorCode: p.errorCode } : {
          errorCode: p.errorCode,
          partition: {
            leader: p.leaderId,
            leaderEpoch: p.leaderEpoch,
            isr: p.isr,
            partitionEpoch: p.partitionEpoch,
            leaderRecoveryState: p.leaderRecoveryState as LeaderRecoveryState,
          },
        };
      },
      timeoutMs,
    );
  }

  /** Reserves a block of producer ids. */
  allocateProducerIds(
    brokerId: number,
    brokerEpoch: number,
    timeoutMs?: number,
  ): Promise<{ start: number; length: number }> {
    return this.#call(
      () => this.#o.controller.allocateProducerIds(brokerId, brokerEpoch),
      async (conn) => {
        const r = await conn.request(ApiKey.AllocateProducerIds, 0, {
          brokerId,
          brokerEpoch: BigInt(brokerEpoch),
        });
        throwIfError(r.errorCode, "AllocateProducerIds");
        return { start: Number(r.producerIdStart), length: r.producerIdLen };
      },
      timeoutMs,
    );
  }

  /**
   * Sends an admin request to the controller as it came (same version) and resolves with
   * its response; `notController(response)` says whether the controller had moved (then
   * the request is sent again to the new one). Rejects with
   * {@linkcode BecameControllerError} if this node is (or becomes) the controller.
   */
  forward<K extends Key>(
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
    notController: (response: ResponseTypes[K]) => boolean,
    timeoutMs?: number,
  ): Promise<ResponseTypes[K]> {
    return this.#call(
      () => Promise.reject(new BecameControllerError()),
      async (conn) => {
        const r = await conn.request(apiKey, version, body);
        if (notController(r)) throw new RetryableError("NOT_CONTROLLER");
        return r;
      },
      timeoutMs,
    );
  }

  async #call<T>(
    local: () => Promise<T>,
    remote: (conn: KafkaConnection) => Promise<T>,
    timeoutMs = this.#o.callTimeoutMs ?? 5000,
    lane: Lane = "requests",
  ): Promise<T> {
    const deadline = this.#clock.nowMs() + timeoutMs;
    let lastError: unknown = undefined;
    while (!this.#closed) {
      const store = this.#o.store;
      try {
        if (store.isController()) {
          try {
            // Bounded like a remote call: a proposal this node made as controller can wait
            // for a quorum that is gone (and a heartbeat loop waits for this answer).
            return await withTimeout(
              local(),
              Math.max(1, deadline - this.#clock.nowMs()),
              undefined,
              this.#timers,
            );
          } catch (err) {
            const mapped = asControllerError(err);
            if (mapped instanceof TidelogError && mapped.code === ErrorCode.NOT_CONTROLLER) {
              throw new RetryableError(mapped.message);
            }
            throw mapped;
          }
        }
        const controllerId = store.controllerId();
        if (controllerId === null) throw new RetryableError("No controller is known");
        const conn = await this.#connection(controllerId, lane);
        const remaining = Math.max(1, deadline - this.#clock.nowMs());
        return await withTimeout(
          remote(conn),
          remaining,
          () => this.#dropConnection(conn, lane),
          this.#timers,
        );
      } catch (err) {
        if (err instanceof BecameControllerError) throw err;
        const retryable = err instanceof RetryableError ||
          (err instanceof TidelogError && err.code === ErrorCode.NOT_CONTROLLER) ||
          !(err instanceof TidelogError);
        if (!retryable) throw err;
        lastError = err;
        if (!(err instanceof RetryableError) && !(err instanceof TidelogError)) {
          // A connection failure: the next attempt reconnects.
          this.#conns.delete(lane);
        }
      }
      if (this.#clock.nowMs() >= deadline) break;
      await sleep(this.#timers, RETRY_MS);
    }
    throw new TidelogError(
      this.#closed ? ErrorCode.NOT_CONTROLLER : ErrorCode.REQUEST_TIMED_OUT,
      `The controller did not answer: ${
        lastError instanceof Error ? lastError.message : lastError
      }`,
    );
  }

  /** The `lane` connection to `controllerId`'s Kafka listener (opened on first use). */
  #connection(controllerId: number, lane: Lane): Promise<KafkaConnection> {
    const current = this.#conns.get(lane);
    if (current?.controllerId === controllerId) return current.conn;
    this.#conns.delete(lane);
    current?.conn.then((c) => c.close(), () => {});
    const endpoint = this.#o.store.image.brokers.get(controllerId)?.endpoints[0];
    if (!endpoint) {
      return Promise.reject(
        new RetryableError(`Controller ${controllerId} has not registered its address yet`),
      );
    }
    // A connect to a controller behind a partition must fail, not hang: the heartbeat
    // loop waits for it, and a broker that stops heartbeating is fenced.
    const conn = KafkaConnection.connect(
      endpoint.host,
      endpoint.port,
      `tidelog-broker-${this.#o.nodeId}`,
      { net: this.#net, timeoutMs: CONNECT_TIMEOUT_MS, timers: this.#timers },
    );
    const entry = { controllerId, conn };
    this.#conns.set(lane, entry);
    const forget = () => {
      if (this.#conns.get(lane) === entry) this.#conns.delete(lane);
    };
    conn.then((c) => c.closed.finally(forget), forget);
    this.#log.debug("Connecting to controller {id} at {host}:{port} ({lane})", {
      id: controllerId,
      host: endpoint.host,
      port: endpoint.port,
      lane,
    });
    return conn;
  }

  #dropConnection(conn: KafkaConnection, lane: Lane): void {
    const entry = this.#conns.get(lane);
    entry?.conn.then((c) => {
      if (c === conn && this.#conns.get(lane) === entry) this.#conns.delete(lane);
    }, () => {});
    void conn.close();
  }

  /** Closes the connection; calls in progress fail. */
  close(): void {
    this.#closed = true;
    for (const { conn } of this.#conns.values()) conn.then((c) => c.close(), () => {});
    this.#conns.clear();
  }
}

function throwIfError(code: number, api: string): void {
  if (code === ErrorCode.NONE) return;
  if (code === ErrorCode.NOT_CONTROLLER) throw new RetryableError("NOT_CONTROLLER");
  throw new TidelogError(code as ErrorCode, `${api} failed with error code ${code}`);
}
