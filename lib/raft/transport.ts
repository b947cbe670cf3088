/**
 * TCP transport for Raft messages (DESIGN §6). Frames are
 * `u32 length | u8 version | payload` (length counts version + payload; payload = one
 * message, see `codec.ts`). Each peer has one reused outbound connection, reconnecting
 * with exponential backoff; queued frames are written in batches, one write per batch.
 * Sending never blocks: a full queue drops the message (Raft retransmits). A malformed
 * or oversized frame closes only the connection it came on, with a warning.
 */
import { type Conn, denoNet, type Listener, type NetAddr, type Network } from "../runtime/net.ts";
import { systemTimers, type TimerHandle, type Timers } from "../runtime/timers.ts";
import { ByteWriter, decodeMessage, messageSize, writeMessage } from "./codec.ts";
import type { Message } from "./messages.ts";
import type { RaftLogger } from "./core.ts";

/** Wire format version of our frames. */
export const FRAME_VERSION = 1;

/** Options for {@linkcode TcpTransport.listen}. */
export interface TransportOptions {
  /** This node's id. */
  id: number;
  /** Address to listen on ("host:port"; port 0 picks a free one). */
  listenAddr: string;
  /** Peers' Raft addresses by node id. */
  peers: ReadonlyMap<number, string>;
  /** Called for every decoded inbound message. */
  onMessage: (m: Message) => void;
  /**
   * Called when an inbound connection from a peer ends (EOF or error) while the
   * transport is open: a hint that the peer may be down.
   */
  onPeerLost?: (id: number) => void;
  /** Frames queued per peer before new ones are dropped. @default 4096 */
  maxQueue?: number;
  /** Largest frame accepted or sent. @default 256 MiB */
  maxFrameBytes?: number;
  logger?: RaftLogger;
  /** Where connections come from (a simulated network in simulations). @default denoNet */
  net?: Network;
  /** Timers for the reconnection backoff (virtual time in simulations). @default systemTimers */
  timers?: Timers;
  /**
   * How long a connection attempt may take before it is abandoned and retried: a connect()
   * to a peer behind a partition otherwise sits in SYN retransmission for about two
   * minutes, holding up everything queued for that peer. @default 2000
   */
  connectTimeoutMs?: number;
  /**
   * A connection we have sent on for this long without hearing anything from its peer is
   * replaced. After a partition heals, a connection whose segments were lost sits in TCP
   * retransmission backoff for seconds; every live Raft peer answers what we send (votes,
   * appends, heartbeats), so silence means the link is stuck, not that the peer is quiet.
   * @default 1000
   */
  silenceMs?: number;
}

const silent: RaftLogger = { debug() {}, info() {}, warn() {} };
const BATCH_BYTES = 1 << 20;

/** Splits "host:port" (IPv6 hosts in brackets). Throws `TypeError` if malformed. */
export function parseAddr(addr: string): { hostname: string; port: number } {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(addr);
  const port = Number(m?.[2]);
  if (m === null || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`Cannot parse address "${addr}": expected host:port`);
  }
  return { hostname: m[1]!, port };
}

class Peer {
  addr: string;
  queue: Uint8Array[] = [];
  queuedBytes = 0;
  conn: Conn | undefined;
  backoffMs = 0;
  wake: (() => void) | undefined;
  timer: TimerHandle | undefined;
  closed = false;
  loop: Promise<void> | undefined;
  /** Since the last silence check: frames queued for, and received from, this peer. */
  sentSinceCheck = false;
  heardSinceCheck = false;
  /** Silence checks the current connection has lived through. */
  connChecks = 0;
  constructor(addr: string) {
    this.addr = addr;
  }
  notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/** Raft messages over TCP. */
export class TcpTransport {
  readonly id: number;
  readonly #listener: Listener;
  readonly #peers = new Map<number, Peer>();
  readonly #inbound = new Set<Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #onMessage: (m: Message) => void;
  readonly #onPeerLost: ((id: number) => void) | undefined;
  readonly #maxQueue: number;
  readonly #maxFrameBytes: number;
  readonly #logger: RaftLogger;
  readonly #net: Network;
  readonly #timers: Timers;
  readonly #connectTimeoutMs: number;
  readonly #silenceTimer: TimerHandle;
  #closed = false;
  /** Aborts connection attempts in progress when the transport closes. */
  readonly #abort = new AbortController();

  private constructor(options: TransportOptions, net: Network, listener: Listener) {
    this.id = options.id;
    this.#listener = listener;
    this.#onMessage = options.onMessage;
    this.#onPeerLost = options.onPeerLost;
    this.#maxQueue = options.maxQueue ?? 4096;
    this.#maxFrameBytes = options.maxFrameBytes ?? 256 << 20;
    this.#logger = options.logger ?? silent;
    this.#net = net;
    this.#timers = options.timers ?? systemTimers;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
    this.#silenceTimer = this.#timers.setInterval(
      () => this.#checkSilence(),
      options.silenceMs ?? 1000,
    );
    for (const [id, addr] of options.peers) if (id !== this.id) this.setPeer(id, addr);
    this.#track(this.#acceptLoop());
  }

  /** Starts listening on `options.listenAddr`. */
  static listen(options: TransportOptions): TcpTransport {
    const { hostname, port } = parseAddr(options.listenAddr);
    const net = options.net ?? denoNet;
    const listener = net.listen({ hostname, port });
    return new TcpTransport(options, net, listener);
  }

  /** The address actually listened on. */
  get addr(): NetAddr {
    return this.#listener.addr;
  }

  /** Adds or re-addresses a peer. */
  setPeer(id: number, addr: string): void {
    if (id === this.id || this.#closed) return;
    const p = this.#peers.get(id);
    if (p !== undefined) {
      if (p.addr === addr) return;
      p.addr = addr;
      p.conn?.close();
      p.conn = undefined;
      return;
    }
    const peer = new Peer(addr);
    this.#peers.set(id, peer);
    peer.loop = this.#track(this.#sendLoop(id, peer));
  }

  /** Forgets a peer and closes its connection. */
  removePeer(id: number): void {
    const p = this.#peers.get(id);
    if (p === undefined) return;
    this.#peers.delete(id);
    this.#stopPeer(p);
  }

  /** Queues messages for their destinations; never blocks, drops when a queue is full. */
  send(msgs: readonly Message[]): void {
    if (this.#closed) return;
    for (const m of msgs) {
      const p = this.#peers.get(m.to);
      if (p === undefined) continue;
      if (p.queue.length >= this.#maxQueue) {
        this.#logger.debug("Dropping message to {to}: queue full", { to: m.to });
        continue;
      }
      const w = new ByteWriter(5 + messageSize(m));
      w.u32(0);
      w.u8(FRAME_VERSION);
      writeMessage(w, m);
      w.patchU32(0, w.length - 4);
      if (w.length - 4 > this.#maxFrameBytes) {
        this.#logger.warn("Dropping message to {to}: {size} bytes exceed the frame limit", {
          to: m.to,
          size: w.length,
        });
        continue;
      }
      p.queue.push(w.view());
      p.queuedBytes += w.length;
      p.sentSinceCheck = true;
      p.notify();
    }
  }

  /** Stops listening, closes every connection and waits for all background work. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#timers.clearInterval(this.#silenceTimer);
    this.#listener.close();
    for (const p of this.#peers.values()) this.#stopPeer(p);
    this.#peers.clear();
    for (const c of this.#inbound) tryClose(c);
    this.#inbound.clear();
    await Promise.allSettled([...this.#tasks]);
  }

  #stopPeer(p: Peer): void {
    p.closed = true;
    if (p.timer !== undefined) this.#timers.clearTimeout(p.timer);
    p.timer = undefined;
    if (p.conn !== undefined) tryClose(p.conn);
    p.conn = undefined;
    p.notify();
  }

  #checkSilence(): void {
    for (const [id, p] of this.#peers) {
      if (p.conn !== undefined && p.connChecks >= 1 && p.sentSinceCheck && !p.heardSinceCheck) {
        this.#logger.info("Replacing the Raft connection to {peer}: nothing heard from it", {
          peer: id,
        });
        tryClose(p.conn);
        p.conn = undefined;
        p.notify();
      }
      p.connChecks = p.conn === undefined ? 0 : p.connChecks + 1;
      p.sentSinceCheck = false;
      p.heardSinceCheck = false;
    }
  }

  #track(task: Promise<void>): Promise<void> {
    const t = task.catch((err) => {
      this.#logger.warn("Raft transport task failed: {error}", { error: String(err) });
    }).finally(() => this.#tasks.delete(t));
    this.#tasks.add(t);
    return t;
  }

  async #sendLoop(id: number, p: Peer): Promise<void> {
    while (!p.closed) {
      if (p.queue.length === 0) {
        await new Promise<void>((resolve) => (p.wake = resolve));
        continue;
      }
      if (p.conn === undefined) {
        try {
          const { hostname, port } = parseAddr(p.addr);
          const attempt = new AbortController();
          const ms = this.#connectTimeoutMs;
          const timer = this.#timers.setTimeout(
            () => attempt.abort(new Error(`No connection within ${ms} ms`)),
            ms,
          );
          const conn = await this.#net.connect({
            hostname,
            port,
            signal: AbortSignal.any([this.#abort.signal, attempt.signal]),
          }).finally(() => this.#timers.clearTimeout(timer));
          if (p.closed) {
            tryClose(conn);
            return;
          }
          conn.setNoDelay(true);
          p.conn = conn;
          p.connChecks = 0;
          if (p.backoffMs > 0) {
            this.#logger.info("Raft connection to {peer} at {addr} re-established", {
              peer: id,
              addr: p.addr,
            });
          }
          p.backoffMs = 0;
        } catch (err) {
          // Stale messages are useless by the time the peer is back: drop them.
          p.queue = [];
          p.queuedBytes = 0;
          if (p.backoffMs === 0) {
            this.#logger.warn("Cannot connect to Raft peer {peer} at {addr}: {error}", {
              peer: id,
              addr: p.addr,
              error: String(err),
            });
          }
          p.backoffMs = Math.min(Math.max(p.backoffMs * 2, 25), 1000);
          await new Promise<void>((resolve) => {
            p.wake = resolve;
            p.timer = this.#timers.setTimeout(() => {
              p.timer = undefined;
              p.notify();
            }, p.backoffMs);
          });
          if (p.timer !== undefined) this.#timers.clearTimeout(p.timer);
          p.timer = undefined;
          continue;
        }
      }
      // Batch queued frames into one write.
      let n = 0;
      let bytes = 0;
      while (n < p.queue.length && (n === 0 || bytes + p.queue[n]!.length <= BATCH_BYTES)) {
        bytes += p.queue[n]!.length;
        n++;
      }
      const frames = p.queue.splice(0, n);
      p.queuedBytes -= bytes;
      let buf: Uint8Array;
      if (frames.length === 1) buf = frames[0]!;
      else {
        buf = new Uint8Array(bytes);
        let off = 0;
        for (const f of frames) {
          buf.set(f, off);
          off += f.length;
        }
      }
      const conn = p.conn;
      try {
        let off = 0;
        while (off < buf.length) off += await conn.write(buf.subarray(off));
      } catch (err) {
        if (!p.closed) {
          this.#logger.warn("Raft connection to {peer} failed: {error}", {
            peer: id,
            error: String(err),
          });
        }
        tryClose(conn);
        if (p.conn === conn) p.conn = undefined;
      }
    }
  }

  async #acceptLoop(): Promise<void> {
    try {
      for (;;) {
        let conn: Conn;
        try {
          conn = await this.#listener.accept();
        } catch (err) {
          // As Deno's listener iterator: a closed listener ends the loop.
          if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
            break;
          }
          throw err;
        }
        if (this.#closed) {
          tryClose(conn);
          break;
        }
        conn.setNoDelay(true);
        this.#inbound.add(conn);
        this.#track(this.#readLoop(conn));
      }
    } catch (err) {
      if (!this.#closed) throw err;
    }
  }

  async #readLoop(conn: Conn): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    let buf = new Uint8Array(0);
    let start = 0;
    let end = 0;
    const remote = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    let peer = 0;
    try {
      while (!this.#closed) {
        let n: number | null;
        try {
          n = await conn.read(chunk);
        } catch {
          break;
        }
        if (n === null) break;
        // Append to the pending buffer, compacting or growing it as needed.
        if (end + n > buf.length) {
          const live = end - start;
          const next = live + n > buf.length
            ? new Uint8Array(Math.max(2 * buf.length, live + n, 65536))
            : buf;
          next.set(buf.subarray(start, end), 0);
          buf = next;
          end = live;
          start = 0;
        }
        buf.set(chunk.subarray(0, n), end);
        end += n;
        while (end - start >= 4) {
          const len = new DataView(buf.buffer, buf.byteOffset + start, 4).getUint32(0);
          if (len < 1 || len > this.#maxFrameBytes) {
            this.#logger.warn("Closing Raft connection from {remote}: bad frame length {len}", {
              remote,
              len,
            });
            return;
          }
          if (end - start < 4 + len) break;
          const version = buf[start + 4]!;
          if (version !== FRAME_VERSION) {
            this.#logger.warn("Closing Raft connection from {remote}: frame version {version}", {
              remote,
              version,
            });
            return;
          }
          let m: Message;
          try {
            m = decodeMessage(buf.subarray(start + 5, start + 4 + len));
          } catch (err) {
            this.#logger.warn("Closing Raft connection from {remote}: malformed frame: {error}", {
              remote,
              error: String(err),
            });
            return;
          }
          start += 4 + len;
          peer = m.from;
          const from = this.#peers.get(peer);
          if (from !== undefined) from.heardSinceCheck = true;
          if (m.to === this.id) this.#onMessage(m);
        }
        if (start === end) start = end = 0;
      }
    } finally {
      this.#inbound.delete(conn);
      tryClose(conn);
      if (!this.#closed && peer !== 0) this.#onPeerLost?.(peer);
    }
  }
}

function tryClose(c: Conn): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
