/**
 * A simulated TCP/IP network between simulated machines ({@linkcode SimHost}), at the level
 * TCP shows to programs: a connection carries bytes in order, exactly once, or breaks.
 * What the network does to packets appears as what TCP makes of it:
 *
 * - latency per link, and loss (a lost segment is resent after the retransmission
 *   timeout, which doubles while segments keep failing, up to 120 s as in Linux; later
 *   bytes wait behind it);
 * - cuts (a blackhole route: nothing crosses, in one direction or both, for all traffic
 *   between two machines or for one server port only, e.g. Raft but not Kafka): bytes wait
 *   and are resent at the backed-off timeout, so they arrive some time after the cut
 *   heals, and a connect keeps resending its SYN (1, 2, 4 ... s) until it gives up with
 *   TimedOut after about 127 s;
 * - a process that exits or is killed: the kernel closes its sockets (FIN, or RST when
 *   unread data is dropped), so peers see end of stream or ConnectionReset; a connect
 *   to a port nobody listens on is refused;
 * - a machine that loses power sends nothing: peers' bytes are resent into the void until
 *   it is back, and then its kernel answers them with RST.
 *
 * Every delivery is an event of the receiving process, so a paused process (SIGSTOP)
 * receives nothing until it resumes, while its peers' connects and writes still complete
 * (the kernel buffers), as on a real machine.
 */
import type { Conn, Listener, NetAddr, Network } from "../../../lib/runtime/mod.ts";
import type { Random } from "../../../lib/util/random.ts";
import type { Scheduler, SimProcess } from "./scheduler.ts";

const RTO_MIN_MS = 200;
const RTO_MAX_MS = 120_000;
/** Linux's SYN retransmissions (tcp_syn_retries = 6): 1 + 2 + 4 + ... + 64 s. */
const SYN_RETRIES_MS = [1000, 2000, 4000, 8000, 16000, 32000, 64000];

type Segment =
  | { readonly kind: "data"; readonly bytes: Uint8Array }
  | { readonly kind: "fin" }
  | { readonly kind: "rst" };

/** Link conditions the harness sets while a run goes on. */
export interface LinkFaults {
  /** One-way latency of a segment from `from` to `to`, in ms. */
  latencyMs(from: string, to: string): number;
  /** Probability that a segment from `from` to `to` is lost (and resent). */
  lossRate(from: string, to: string): number;
}

/** A simulated machine: a name (its address), listeners, power. */
export class SimHost {
  readonly name: string;
  readonly network: SimNetwork;
  readonly listeners = new Map<number, SimListener>();
  /** Open connection ends of the current processes, to reset on power loss. */
  readonly ends = new Set<ConnEnd>();
  #nextPort = 40_000;
  #up = true;

  constructor(network: SimNetwork, name: string) {
    this.network = network;
    this.name = name;
  }

  get up(): boolean {
    return this.#up;
  }

  ephemeralPort(): number {
    return this.#nextPort++;
  }

  /** A {@linkcode Network} for a process running on this machine. */
  netFor(proc: SimProcess): Network {
    return {
      listen: ({ port }) => this.#listen(proc, port),
      connect: ({ hostname, port, signal }) =>
        this.network.connect(proc, this, hostname, port, signal),
    };
  }

  #listen(proc: SimProcess, port: number): Listener {
    const p = port === 0 ? this.ephemeralPort() : port;
    const existing = this.listeners.get(p);
    if (existing !== undefined && !existing.closed && existing.proc.state !== "dead") {
      throw new Deno.errors.AddrInUse(`Address already in use (os error 98): ${this.name}:${p}`);
    }
    const l = new SimListener(this, proc, p);
    this.listeners.set(p, l);
    proc.onDeath(() => l.close());
    return l;
  }

  /**
   * Power failure: every process here must already be dead (killed by the harness with
   * `silent` set on its ends); nothing is sent, and segments arriving while the machine is
   * down are lost (their senders resend them).
   */
  powerOff(): void {
    this.#up = false;
    for (const end of this.ends) end.vanish();
    this.ends.clear();
    this.listeners.clear();
  }

  powerOn(): void {
    this.#up = true;
  }
}

/** The network: machines, link faults, cuts. */
export class SimNetwork {
  readonly scheduler: Scheduler;
  readonly random: Random;
  readonly hosts = new Map<string, SimHost>();
  faults: LinkFaults = { latencyMs: () => 0.1, lossRate: () => 0 };
  /** Cut directions: "a>b" (all traffic from a to b) or "a>b:port" (to or from that server port). */
  readonly #cuts = new Set<string>();
  /** Bytes delivered (for the trace). */
  bytesDelivered = 0;

  constructor(scheduler: Scheduler, random: Random) {
    this.scheduler = scheduler;
    this.random = random;
  }

  addHost(name: string): SimHost {
    const h = new SimHost(this, name);
    this.hosts.set(name, h);
    return h;
  }

  /** Cuts traffic from `from` to `to` (all of it, or that of connections to `port`). */
  cut(from: string, to: string, port?: number): void {
    this.#cuts.add(port === undefined ? `${from}>${to}` : `${from}>${to}:${port}`);
  }

  /** Heals one cut made by {@linkcode cut} with the same arguments. */
  heal(from: string, to: string, port?: number): void {
    this.#cuts.delete(port === undefined ? `${from}>${to}` : `${from}>${to}:${port}`);
  }

  /** Heals every cut. */
  healAll(): void {
    this.#cuts.clear();
  }

  get cutCount(): number {
    return this.#cuts.size;
  }

  /** Whether a segment from `from` to `to` of a connection to server port `port` crosses. */
  passes(from: string, to: string, port: number): boolean {
    const dest = this.hosts.get(to);
    if (dest === undefined || !dest.up) return false;
    return !this.#cuts.has(`${from}>${to}`) && !this.#cuts.has(`${from}>${to}:${port}`);
  }

  connect(
    proc: SimProcess,
    from: SimHost,
    hostname: string,
    port: number,
    signal?: AbortSignal,
  ): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      const to = this.hosts.get(hostname);
      let attempt = 0;
      let aborted = false;
      signal?.addEventListener("abort", () => {
        aborted = true;
        proc.schedule(
          0,
          () => reject(new DOMException("The signal has been aborted", "AbortError")),
        );
      }, { once: true });
      const syn = () => {
        if (aborted) return;
        if (to === undefined) {
          proc.schedule(
            0,
            () => reject(new Deno.errors.NetworkUnreachable(`No route to ${hostname}`)),
          );
          return;
        }
        const there = this.faults.latencyMs(from.name, to.name);
        const back = this.faults.latencyMs(to.name, from.name);
        if (this.passes(from.name, to.name, port) && this.passes(to.name, from.name, port)) {
          const listener = to.listeners.get(port);
          if (listener === undefined || listener.closed || listener.proc.state === "dead") {
            proc.schedule(there + back, () =>
              reject(
                new Deno.errors.ConnectionRefused(
                  `Connection refused (os error 111): ${hostname}:${port}`,
                ),
              ));
            return;
          }
          const clientPort = from.ephemeralPort();
          const client = new ConnEnd(this, proc, from, clientPort, to, port, port);
          const server = new ConnEnd(this, listener.proc, to, port, from, clientPort, port);
          client.peer = server;
          server.peer = client;
          from.ends.add(client);
          client.attach();
          // The kernel completes the handshake whatever the server process is doing.
          this.scheduler.schedule(null, there, () => listener.enqueue(server));
          proc.schedule(there + back, () => resolve(client));
          return;
        }
        const wait = SYN_RETRIES_MS[attempt++];
        if (wait === undefined) {
          proc.schedule(0, () =>
            reject(
              new Deno.errors.TimedOut(`Connection timed out (os error 110): ${hostname}:${port}`),
            ));
          return;
        }
        proc.schedule(wait, syn);
      };
      syn();
    });
  }
}

/** A listening socket. */
export class SimListener implements Listener {
  readonly host: SimHost;
  readonly proc: SimProcess;
  readonly addr: NetAddr;
  closed = false;
  readonly #backlog: ConnEnd[] = [];
  readonly #waiting: { resolve: (c: Conn) => void; reject: (e: Error) => void }[] = [];

  constructor(host: SimHost, proc: SimProcess, port: number) {
    this.host = host;
    this.proc = proc;
    this.addr = { transport: "tcp", hostname: host.name, port };
  }

  /** A connection the kernel accepted: hand it to a waiting accept(), or queue it. */
  enqueue(end: ConnEnd): void {
    if (this.closed || this.proc.state === "dead") {
      end.refuse();
      return;
    }
    this.host.ends.add(end);
    end.attach();
    const w = this.#waiting.shift();
    if (w !== undefined) this.proc.schedule(0, () => w.resolve(end));
    else this.#backlog.push(end);
  }

  accept(): Promise<Conn> {
    if (this.closed) return Promise.reject(new Deno.errors.BadResource("Listener has been closed"));
    const ready = this.#backlog.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.#waiting.splice(0)) {
      this.proc.schedule(
        0,
        () => w.reject(new Deno.errors.BadResource("Listener has been closed")),
      );
    }
    for (const end of this.#backlog.splice(0)) end.abort();
    if (this.host.listeners.get(this.addr.port) === this) {
      this.host.listeners.delete(this.addr.port);
    }
  }
}

/** One end of a connection, owned by one process. */
class ConnEnd implements Conn {
  readonly #net: SimNetwork;
  readonly proc: SimProcess;
  readonly host: SimHost;
  readonly localAddr: NetAddr;
  readonly remoteAddr: NetAddr;
  /** The server port of the connection (what port-specific cuts match). */
  readonly #serverPort: number;
  peer: ConnEnd | null = null;
  /** Bytes received and not read yet. */
  #inbox: Uint8Array[] = [];
  #eof = false;
  #reset = false;
  /** This end was closed by its process (or the process died). */
  #closed = false;
  #readers: {
    p: Uint8Array;
    resolve: (n: number | null) => void;
    reject: (e: Error) => void;
  }[] = [];
  /** Segments sent and not delivered yet, in order, and the retransmission state. */
  #outbox: Segment[] = [];
  #pumping = false;
  #rtoMs = RTO_MIN_MS;

  constructor(
    net: SimNetwork,
    proc: SimProcess,
    host: SimHost,
    localPort: number,
    remote: SimHost,
    remotePort: number,
    serverPort: number,
  ) {
    this.#net = net;
    this.proc = proc;
    this.host = host;
    this.localAddr = { transport: "tcp", hostname: host.name, port: localPort };
    this.remoteAddr = { transport: "tcp", hostname: remote.name, port: remotePort };
    this.#serverPort = serverPort;
  }

  /** Ties this end to its process: the kernel closes it when the process dies. */
  attach(): void {
    this.proc.onDeath(() => this.#die());
  }

  setNoDelay(_noDelay?: boolean): void {}

  read(p: Uint8Array): Promise<number | null> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    if (this.#inbox.length > 0) return Promise.resolve(this.#take(p));
    if (this.#reset) {
      return Promise.reject(
        new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
      );
    }
    if (this.#eof) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#readers.push({ p, resolve, reject }));
  }

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#inbox.length > 0) {
      const chunk = this.#inbox[0]!;
      const k = Math.min(chunk.length, p.length - n);
      p.set(chunk.subarray(0, k), n);
      n += k;
      if (k === chunk.length) this.#inbox.shift();
      else this.#inbox[0] = chunk.subarray(k);
    }
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("Bad resource ID"));
    if (this.#reset) {
      return Promise.reject(
        new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
      );
    }
    if (p.length === 0) return Promise.resolve(0);
    this.#send({ kind: "data", bytes: p.slice() });
    return Promise.resolve(p.length);
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("Bad resource ID");
    this.#shut();
  }

  /** Local close: readers fail, a FIN (or RST, with unread data) goes out. */
  #shut(): void {
    this.#closed = true;
    this.host.ends.delete(this);
    const unread = this.#inbox.length > 0;
    this.#inbox = [];
    for (const r of this.#readers.splice(0)) {
      this.proc.schedule(0, () => r.reject(new Deno.errors.BadResource("Bad resource ID")));
    }
    if (!this.#reset) this.#send(unread ? { kind: "rst" } : { kind: "fin" });
  }

  #die(): void {
    if (!this.#closed) this.#shut();
  }

  /** The machine lost power: this end is gone without a word. */
  vanish(): void {
    this.#closed = true;
    this.#outbox = [];
    this.#readers = [];
    this.#inbox = [];
  }

  /** The server end of a connection nobody accepted: the client gets RST. */
  refuse(): void {
    this.#closed = true;
    this.#send({ kind: "rst" });
  }

  /** The listener closed with this connection in its backlog. */
  abort(): void {
    this.#shut();
  }

  #send(seg: Segment): void {
    this.#outbox.push(seg);
    if (!this.#pumping) {
      this.#pumping = true;
      this.#pump();
    }
  }

  /** Delivers the outbox in order, resending at the backed-off timeout while it cannot. */
  #pump(): void {
    const peer = this.peer;
    if (peer === null || this.#outbox.length === 0) {
      this.#pumping = false;
      return;
    }
    const net = this.#net;
    const from = this.host.name;
    const to = peer.host.name;
    // Segments already sent keep travelling after the sender's process died: the kernel
    // sends them, and this pump is run as the network, not as the process.
    if (
      !net.passes(from, to, this.#serverPort) || net.random.chance(net.faults.lossRate(from, to))
    ) {
      const wait = this.#rtoMs;
      this.#rtoMs = Math.min(this.#rtoMs * 2, RTO_MAX_MS);
      net.scheduler.schedule(null, wait, () => this.#pump());
      return;
    }
    this.#rtoMs = RTO_MIN_MS;
    const batch = this.#outbox;
    this.#outbox = [];
    const latency = net.faults.latencyMs(from, to);
    const peerHost = peer.host;
    net.scheduler.schedule(null, latency, () => {
      if (!peerHost.up) {
        // The machine went down on the way: unacknowledged, so resent later.
        this.#outbox.unshift(...batch);
        const wait = this.#rtoMs;
        this.#rtoMs = Math.min(this.#rtoMs * 2, RTO_MAX_MS);
        net.scheduler.schedule(null, wait, () => this.#pump());
        return;
      }
      peer.#arrive(batch, this);
      this.#pump();
    });
  }

  /** Segments from the peer reached this machine. */
  #arrive(batch: Segment[], sender: ConnEnd): void {
    if (this.#closed || this.proc.state === "dead") {
      // A closed socket answers data with RST.
      if (batch.some((s) => s.kind === "data") && !sender.#closed) sender.#receiveControl("rst");
      return;
    }
    // Delivered to the process as its own event: held while it is paused.
    this.proc.schedule(0, () => {
      for (const seg of batch) {
        if (seg.kind === "data") {
          this.#inbox.push(seg.bytes);
          this.#net.bytesDelivered += seg.bytes.length;
        } else this.#receiveControlNow(seg.kind);
      }
      this.#wakeReaders();
    });
  }

  #receiveControl(kind: "fin" | "rst"): void {
    const latency = this.#net.faults.latencyMs(this.remoteAddr.hostname, this.host.name);
    this.#net.scheduler.schedule(null, latency, () => {
      if (this.#closed) return;
      this.proc.schedule(0, () => {
        this.#receiveControlNow(kind);
        this.#wakeReaders();
      });
    });
  }

  #receiveControlNow(kind: "fin" | "rst"): void {
    if (kind === "fin") this.#eof = true;
    else {
      this.#reset = true;
      this.#inbox = [];
      this.#outbox = [];
    }
  }

  #wakeReaders(): void {
    while (this.#readers.length > 0) {
      if (this.#inbox.length > 0) {
        const r = this.#readers.shift()!;
        r.resolve(this.#take(r.p));
      } else if (this.#reset) {
        const r = this.#readers.shift()!;
        r.reject(new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"));
      } else if (this.#eof) {
        this.#readers.shift()!.resolve(null);
      } else break;
    }
  }
}
