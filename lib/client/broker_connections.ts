/**
 * One connection per broker, opened on first use (with a connect deadline: a broker behind
 * a partition must fail the call, not hang it) and forgotten when it closes or a request on
 * it fails; for broker-to-broker calls such as transaction markers and transaction
 * verification.
 */
import type { Network } from "../runtime/net.ts";
import type { Timers } from "../runtime/timers.ts";
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
  readonly #conns = new Map<number, Promise<KafkaConnection>>();
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
   * Runs `call` on the connection to `brokerId`; a failed call drops the connection (the
   * next one reconnects).
   */
  async call<T>(brokerId: number, call: (conn: KafkaConnection) => Promise<T>): Promise<T> {
    const conn = await this.#connection(brokerId);
    try {
      return await call(conn);
    } catch (err) {
      this.#drop(brokerId, conn);
      throw err;
    }
  }

  #connection(brokerId: number): Promise<KafkaConnection> {
    const existing = this.#conns.get(brokerId);
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

  /** Closes every connection; later calls fail. */
  close(): void {
    this.#closed = true;
    for (const c of this.#conns.values()) c.then((conn) => conn.close(), () => {});
    this.#conns.clear();
  }
}
