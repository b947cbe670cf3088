/**
 * The Kafka TCP listener: accepts connections and runs each as a read loop that feeds
 * frames to the {@linkcode Broker} in arrival order, plus a writer that sends responses
 * strictly in request order. A framing or parsing failure closes that connection only.
 */
import type { Logger } from "@logtape/logtape";
import { type Conn, denoNet, type Listener, type NetAddr, type Network } from "../runtime/net.ts";
import { systemTimers, type Timers } from "../runtime/timers.ts";
import { getLogger } from "../util/log.ts";
import type { Broker } from "./broker.ts";
import type { ConnectionHooks } from "./handler.ts";
import { FrameError, FrameReader } from "./frame_reader.ts";

const log = getLogger(["tidelog", "server"]);

/** Requests whose responses may be outstanding on one connection before reading pauses. */
const MAX_IN_FLIGHT = 256;

/** Accepts Kafka connections on one address. */
export class KafkaListener {
  readonly #listener: Listener;
  readonly #broker: Broker;
  readonly #maxRequestBytes: number;
  readonly #timers: Timers;
  readonly #connections = new Set<Connection>();
  #nextId = 1;
  #acceptLoop: Promise<void>;

  private constructor(
    listener: Listener,
    broker: Broker,
    maxRequestBytes: number,
    timers: Timers,
  ) {
    this.#listener = listener;
    this.#broker = broker;
    this.#maxRequestBytes = maxRequestBytes;
    this.#timers = timers;
    this.#acceptLoop = this.#accept();
  }

  /** Starts listening on `hostname:port` (port 0 picks a free one). */
  static listen(
    options: {
      hostname: string;
      port: number;
      maxRequestBytes: number;
      net?: Network;
      timers?: Timers;
    },
    broker: Broker,
  ): KafkaListener {
    const listener = (options.net ?? denoNet).listen({
      hostname: options.hostname,
      port: options.port,
    });
    return new KafkaListener(
      listener,
      broker,
      options.maxRequestBytes,
      options.timers ?? systemTimers,
    );
  }

  /** The bound address (useful when port 0 was asked for). */
  get addr(): NetAddr {
    return this.#listener.addr;
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        log.error("Accept failed: {error}", { error: err });
        await new Promise((r) => this.#timers.setTimeout(() => r(undefined), 100));
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch { /* the peer may already be gone; the read loop will see it */ }
      const c = new Connection(this.#nextId++, conn, this.#broker, this.#maxRequestBytes);
      this.#connections.add(c);
      c.done.finally(() => this.#connections.delete(c));
    }
  }

  /** Stops accepting, closes every connection and waits for them to finish. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#acceptLoop;
    for (const c of this.#connections) c.close();
    await Promise.all([...this.#connections].map((c) => c.done));
  }
}

/** One client connection: a reader that dispatches in order and an in-order writer. */
/** What a response wait yields when the connection closes first. */
const ABANDONED = Symbol("abandoned");

class Connection {
  readonly done: Promise<void>;
  readonly #conn: Conn;
  readonly #broker: Broker;
  readonly #log: Logger;
  readonly #clientHost: string;
  readonly #pending: Promise<Uint8Array | null>[] = [];
  #wakeWriter: (() => void) | null = null;
  #wakeReader: (() => void) | null = null;
  #readerDone = false;
  #closed = false;
  readonly #closeHooks: (() => void)[] = [];
  readonly #closing = Promise.withResolvers<typeof ABANDONED>();
  readonly #hooks: ConnectionHooks = { onClose: (hook) => this.#closeHooks.push(hook) };

  constructor(id: number, conn: Conn, broker: Broker, maxRequestBytes: number) {
    this.#conn = conn;
    this.#broker = broker;
    const remote = conn.remoteAddr;
    this.#log = log.with({ conn: id, remote: `${remote.hostname}:${remote.port}` });
    this.#clientHost = `/${remote.hostname}`;
    this.#log.debug("Connection opened");
    const reader = new FrameReader(conn, maxRequestBytes, broker.requestFrames);
    this.done = Promise.all([this.#readLoop(reader), this.#writeLoop()]).then(() => {
      this.close();
      this.#log.debug("Connection closed");
      for (const hook of this.#closeHooks.splice(0)) {
        try {
          hook();
        } catch (err) {
          this.#log.error("Connection close hook failed: {error}", { error: err });
        }
      }
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.resolve(ABANDONED);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
    this.#wakeWriter?.();
    this.#wakeReader?.();
  }

  async #readLoop(reader: FrameReader): Promise<void> {
    try {
      while (!this.#closed) {
        while (this.#pending.length >= MAX_IN_FLIGHT && !this.#closed) {
          await new Promise<void>((r) => (this.#wakeReader = r));
        }
        const frame = await reader.next();
        if (frame === null) break;
        const outcome = await this.#broker.handleFrame(
          frame,
          this.#log,
          this.#clientHost,
          this.#hooks,
        );
        // A produce has taken effect: its frame's memory may serve the next one.
        if (this.#broker.requestFrames.pooled((frame[0]! << 8) | frame[1]!)) {
          this.#broker.releaseFrame(frame);
        }
        if (outcome.kind === "close") {
          this.#log.warn("Closing connection: {reason}", { reason: outcome.reason });
          this.#enqueue(Promise.resolve(null));
          break;
        }
        this.#enqueue(outcome.frame);
      }
    } catch (err) {
      if (err instanceof FrameError) {
        this.#log.warn("Closing connection: {reason}", { reason: err.message });
      } else if (!this.#closed && !isDisconnect(err)) {
        this.#log.error("Connection read failed: {error}", { error: err });
      }
    } finally {
      this.#readerDone = true;
      this.#wakeWriter?.();
    }
  }

  #enqueue(frame: Promise<Uint8Array | null>): void {
    // Attach a handler now so a rejection is never unhandled while it waits its turn.
    frame.catch(() => {});
    this.#pending.push(frame);
    this.#wakeWriter?.();
  }

  async #writeLoop(): Promise<void> {
    for (;;) {
      // Once closed, responses still waiting (long polls, acks) are abandoned.
      if (this.#closed) return;
      if (this.#pending.length === 0) {
        if (this.#readerDone || this.#closed) return;
        await new Promise<void>((r) => (this.#wakeWriter = r));
        this.#wakeWriter = null;
        continue;
      }
      let bytes: Uint8Array | null | typeof ABANDONED;
      try {
        // Closing does not wait for responses still pending (long polls, acks).
        bytes = await Promise.race([this.#pending[0]!, this.#closing.promise]);
        if (bytes === ABANDONED) return;
      } catch (err) {
        // The broker turns handler failures into error responses; reaching here is a bug.
        this.#log.error("Response failed; closing connection: {error}", { error: err });
        this.close();
        return;
      }
      this.#pending.shift();
      this.#wakeReader?.();
      this.#wakeReader = null;
      if (bytes === null) continue;
      try {
        let written = 0;
        while (written < bytes.length) written += await this.#conn.write(bytes.subarray(written));
        this.#broker.releaseFrame(bytes);
      } catch (err) {
        if (!isDisconnect(err)) this.#log.warn("Write failed: {error}", { error: err });
        this.close();
        return;
      }
    }
  }
}

function isDisconnect(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected;
}
