/**
 * Connections to the other brokers, one per broker and lane (so that a slow kind of call,
 * such as markers waiting for a high watermark, never queues a quick one behind it), opened
 * on first use with a connect deadline and dropped when a call fails or passes its own
 * deadline: a broker behind a partition must fail the call, not hang it. For
 * broker-to-broker calls: transaction markers and transaction verification.
 */
import type { Network } from "../runtime/net.ts";
import type { Timers } from "../runtime/timers.ts";
import { withTimeout } from "../util/timeout.ts";
import { KafkaConnection } from "./kafka_connection.ts";

/** A connect to a broker behind a partition must fail, not hang the call. */
const CONNECT_TIMEOUT_MS = 3000;

/** Connections to the other brokers of the cluster. */
export class BrokerConnections {
  readonly #o: {
    clientId: string;
    endpointOf: (brokerId: number) => { host: string; port: number } | undefined;
    net?: Network;
    timers: Timers;
  };
  readonly #conns = new Map<string, Promise<KafkaConnection>>();
  #closed = false;

  constructor(options: {
    clientId: string;
    /** A broker's Kafka endpoint, from the metadata image. */
    endpointOf: (brokerId: number) => { host: string; port: number } | undefined;
    net?: Network;
    timers: Timers;
  }) {
    this.#o = options;
  }

  /**
   * Runs `call` on the `lane` connection to `brokerId` within `timeoutMs` (the connect
   * included); a failed or late call drops the connection (the next one reconnects).
   */
  async call<T>(
    brokerId: number,
    lane: string,
    timeoutMs: number,
    call: (conn: KafkaConnection) => Promise<T>,
  ): Promise<T> {
    const key = `${brokerId}/${lane}`;
    let conn: KafkaConnection | undefined;
    try {
      return await withTimeout(
        this.#connection(brokerId, key).then((c) => call(conn = c)),
        timeoutMs,
        undefined,
        this.#o.timers,
      );
    } catch (err) {
      if (conn !== undefined) this.#drop(key, conn);
      throw err;
    }
  }

  #connection(brokerId: number, key: string): Promise<KafkaConnection> {
    const existing = this.#conns.get(key);
    if (existing !== undefined) return existing;
    if (this.#closed) return Promise.reject(new Error("The broker connections are closed"));
    const endpoint = this.#o.endpointOf(brokerId);
    if (endpoint === undefined) {
      return Promise.reject(new Error(`Broker ${brokerId} has no known endpoint`));
    }
    const conn = KafkaConnection.connect(endpoint.host, endpoint.port, this.#o.clientId, {
      net: this.#o.net,
      timeoutMs: CONNECT_TIMEOUT_MS,
      timers: this.#o.timers,
    });
    this.#conns.set(key, conn);
    const forget = () => {
      if (this.#conns.get(key) === conn) this.#conns.delete(key);
    };
    conn.then((c) => c.closed.finally(forget), forget);
    return conn;
  }

  #drop(key: string, conn: KafkaConnection): void {
    const entry = this.#conns.get(key);
    entry?.then((c) => {
      if (c === conn && this.#conns.get(key) === entry) this.#conns.delete(key);
    }, () => {});
    void conn.close();
  }

  /** Closes every connection; later calls fail. */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.then((conn) => conn.close(), () => {});
    this.#conns.clear();
  }
}
