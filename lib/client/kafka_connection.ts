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
import type { BufferPool } from "../util/buffer_pool.ts";

type Key = keyof RequestTypes & keyof ResponseTypes;

interface Waiter {
  correlationId: number;
  apiKey: number;
  version: number;
  /** Resolved with the body and the frame it was decoded from. */
  resolve: (body: unknown, frame: Uint8Array) => void;
  reject: (err: Error) => void;
}

/** A response decoded from a pooled frame: call `release` once done with its bytes. */
export interface LoanedResponse<R> {
  response: R;
  /** Gives the frame back to the pool; the response's byte fields must not be used after. */
  release(): void;
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

  readonly #responseBuffers: BufferPool | null;

  private constructor(conn: Conn, clientId: string, responseBuffers: BufferPool | null) {
    this.#conn = conn;
    this.#clientId = clientId;
    this.#responseBuffers = responseBuffers;
    this.#reader = new FrameReader(
      conn,
      1 << 30,
      responseBuffers === null
        ? null
        : { pooled: () => true, acquire: (size) => responseBuffers.acquire(size) },
    );
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
    options: {
      net?: Network;
      timeoutMs?: number;
      timers?: Timers;
      /**
       * Large responses are read into buffers of this pool; {@linkcode requestLoaned}
       * gives them back (a follower's fetch responses, megabytes each).
       */
      responseBuffers?: BufferPool;
    } = {},
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
    return new KafkaConnection(conn, clientId, options.responseBuffers ?? null);
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
          waiter.resolve(body, frame);
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
    return this.#request(apiKey, version, body);
  }

  #request<K extends Key>(
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
    onFrame?: (frame: Uint8Array) => void,
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
      resolve: (b: unknown, frame: Uint8Array) => {
        onFrame?.(frame);
        resolve(b as ResponseTypes[K]);
      },
      reject,
    });
    this.#write(frame).catch(reject);
    return promise;
  }

  /**
   * Like {@linkcode request}, for a connection with `responseBuffers`: the response comes
   * with `release`, which hands its frame back to the pool once the caller is done with
   * the response's bytes (never call it while any of them is still in use).
   */
  async requestLoaned<K extends Key>(
    apiKey: K,
    version: number,
    body: DeepPartial<RequestTypes[K]>,
  ): Promise<LoanedResponse<ResponseTypes[K]>> {
    let frame: Uint8Array | undefined;
    const response = await this.#request(apiKey, version, body, (f) => (frame = f));
    const pool = this.#responseBuffers;
    return { response, release: () => frame && pool?.release(frame) };
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
