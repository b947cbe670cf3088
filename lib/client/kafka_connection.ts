/**
 * A minimal pipelined Kafka protocol connection: sends requests with increasing
 * correlation ids and matches responses in order. Used by the benchmark load generator,
 * tests that need exact control over requests, and (later) replica fetchers.
 */
import {
  decodeResponseFrame,
  type DeepPartial,
  encodeRequestFrame,
  type RequestTypes,
  type ResponseTypes,
} from "../protocol/mod.ts";
import { type Conn, denoNet, type Network } from "../runtime/net.ts";
import { systemTimers, type Timers } from "../runtime/timers.ts";
import { TimeoutError } from "../util/timeout.ts";
import { FrameReader } from "../server/frame_reader.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

interface Waiter {
  correlationId: number;
  apiKey: number;
  version: number;
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
}

/** One TCP connection to a Kafka broker. */
export class KafkaConnection {
  readonly #conn: Conn;
  readonly #reader: FrameReader;
  readonly #waiters: Waiter[] = [];
  readonly #clientId: string;
  #nextCorrelationId = 1;
  #closed = false;
  #readLoop: Promise<void>;
  #writeChain: Promise<void> = Promise.resolve();

  private constructor(conn: Conn, clientId: string) {
    this.#conn = conn;
    this.#clientId = clientId;
    this.#reader = new FrameReader(conn, 1 << 30);
    this.#readLoop = this.#read();
  }

  /**
   * Connects to `hostname:port` (over `options.net`, the real network by default). With
   * `timeoutMs`, an attempt still unanswered then is abandoned (a connect to an address
   * behind a partition otherwise waits out the kernel's SYN retries, about two minutes).
   */
  static async connect(
    hostname: string,
    port: number,
    clientId = "tidelog-client",
    options: { net?: Network; timeoutMs?: number; timers?: Timers } = {},
  ): Promise<KafkaConnection> {
    const net = options.net ?? denoNet;
    let conn: Conn;
    if (options.timeoutMs === undefined) {
      conn = await net.connect({ hostname, port });
    } else {
      const timers = options.timers ?? systemTimers;
      const ms = options.timeoutMs;
      const attempt = new AbortController();
      const timer = timers.setTimeout(
        () => attempt.abort(new TimeoutError(ms)),
        ms,
      );
      try {
        conn = await net.connect({ hostname, port, signal: attempt.signal });
      } catch (err) {
        throw attempt.signal.aborted ? new TimeoutError(ms) : err;
      } finally {
        timers.clearTimeout(timer);
      }
    }
    conn.setNoDelay(true);
    return new KafkaConnection(conn, clientId);
  }

  async #read(): Promise<void> {
    let failure: Error = new Error("Connection closed");
    try {
      for (;;) {
        const frame = await this.#reader.next();
        if (frame === null) break;
        const waiter = this.#waiters.shift();
        if (!waiter) throw new Error("Response without a pending request");
        try {
          const { correlationId, body } = decodeResponseFrame(
            waiter.apiKey as Key,
            waiter.version,
            frame,
          );
          if (correlationId !== waiter.correlationId) {
            throw new Error(
              `Correlation id ${correlationId} does not match ${waiter.correlationId}`,
            );
          }
          waiter.resolve(body);
        } catch (err) {
          waiter.reject(err as Error);
        }
      }
    } catch (err) {
      if (!this.#closed) failure = err as Error;
    }
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w.reject(failure);
  }

  /** Sends a request and resolves with its decoded response. */
  request<K extends Key>(
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
  ): Promise<ResponseTypes[K]> {
    const correlationId = this.#nextCorrelationId++;
    const frame = encodeRequestFrame(
      apiKey,
      version,
      { correlationId, clientId: this.#clientId },
      body,
    );
    const { promise, resolve, reject } = Promise.withResolvers<ResponseTypes[K]>();
    this.#waiters.push({
      correlationId,
      apiKey,
      version,
      resolve: resolve as (b: unknown) => void,
      reject,
    });
    this.#write(frame).catch(reject);
    return promise;
  }

  /** Sends a request that gets no response (acks=0 produce). */
  send<K extends Key>(
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
  ): Promise<void> {
    const frame = encodeRequestFrame(apiKey, version, {
      correlationId: this.#nextCorrelationId++,
      clientId: this.#clientId,
    }, body);
    return this.#write(frame);
  }

  /** Writes raw bytes (tests of malformed input). */
  writeRaw(bytes: Uint8Array): Promise<void> {
    return this.#write(bytes);
  }

  #write(bytes: Uint8Array): Promise<void> {
    const p = this.#writeChain.then(async () => {
      if (this.#closed) throw new Error("Connection closed");
      let written = 0;
      while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
    });
    this.#writeChain = p.catch(() => {});
    return p;
  }

  /** Resolves when the broker closes the connection. */
  get closed(): Promise<void> {
    return this.#readLoop;
  }

  /** Closes the connection; pending requests are rejected. */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
    await this.#readLoop;
  }
}
