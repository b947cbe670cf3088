/**
 * TCP as the Kafka and Raft listeners and their clients use it (the part of Deno's net API
 * we call), so that a simulation can carry the bytes over a simulated network with
 * delays, cuts and resets. Errors are Deno's (`Deno.errors.ConnectionRefused`,
 * `ConnectionReset`, `BadResource`, ...). {@linkcode denoNet} is the real one.
 */

/** An address (as `Deno.NetAddr`). */
export interface NetAddr {
  readonly transport: "tcp" | "udp";
  readonly hostname: string;
  readonly port: number;
}

/** A TCP connection (the part of `Deno.TcpConn` we use). */
export interface Conn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  readonly localAddr: NetAddr;
  readonly remoteAddr: NetAddr;
  setNoDelay(noDelay?: boolean): void;
}

/** A listening socket. */
export interface Listener {
  accept(): Promise<Conn>;
  close(): void;
  readonly addr: NetAddr;
}

/** Where connections come from. */
export interface Network {
  /** Binds `hostname:port` (port 0: a free one); throws `Deno.errors.AddrInUse`. */
  listen(options: { hostname: string; port: number }): Listener;
  /** Connects to `hostname:port`; aborting `signal` cancels an attempt in progress. */
  connect(options: { hostname: string; port: number; signal?: AbortSignal }): Promise<Conn>;
}

/** Deno's own TCP. */
export const denoNet: Network = {
  listen: ({ hostname, port }) => Deno.listen({ hostname, port, transport: "tcp" }),
  connect: ({ hostname, port, signal }) =>
    Deno.connect({ hostname, port, transport: "tcp", signal }),
};
