/**
 * The node's HTTP listener (`--http-addr`): `GET /health` (200 while the process serves),
 * `GET /ready` (200 once the node is registered, unfenced and caught up with the metadata
 * log; 503 with a JSON reason before and whenever that stops being true) and `GET /metrics`
 * (Prometheus text format). It computes nothing: it renders what the node's parts expose
 * through {@linkcode HttpSources}.
 */
import { getLogger } from "../util/log.ts";

const log = getLogger(["tidelog", "http"]);

/** What the endpoints read. */
export interface HttpSources {
  /** null when ready; otherwise why not (starting, fenced, shutting down, ...). */
  notReadyReason(): string | null;
  /** The Prometheus exposition of the node's metrics. */
  metrics(): string;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const PROMETHEUS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };
const JSON_TYPE = { "content-type": "application/json" };

/** Answers one request from `sources` (the routes, without the socket). */
export function route(req: Request, sources: HttpSources): Response {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("Only GET is served\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET" },
    });
  }
  switch (path) {
    case "/health":
      return new Response("ok\n", { headers: TEXT });
    case "/ready": {
      const reason = sources.notReadyReason();
      return reason === null
        ? new Response(JSON.stringify({ ready: true }) + "\n", { headers: JSON_TYPE })
        : new Response(JSON.stringify({ ready: false, reason }) + "\n", {
          status: 503,
          headers: JSON_TYPE,
        });
    }
    case "/metrics":
      return new Response(sources.metrics(), { headers: PROMETHEUS });
    default:
      return new Response(`Not found: ${path}\n`, { status: 404, headers: TEXT });
  }
}

/** The listener; closed with the node. */
export class HttpServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly addr: Deno.NetAddr;

  private constructor(server: Deno.HttpServer<Deno.NetAddr>) {
    this.#server = server;
    this.addr = server.addr;
  }

  /**
   * Listens on `host:port`.
   *
   * @throws {Deno.errors.AddrInUse} and other listen errors
   */
  static start(host: string, port: number, sources: HttpSources): HttpServer {
    const server = Deno.serve({
      hostname: host,
      port,
      onListen: () => {},
      onError: (err) => {
        log.warn("HTTP request failed: {error}", { error: err });
        return new Response("Internal error\n", { status: 500, headers: TEXT });
      },
    }, (req) => route(req, sources));
    return new HttpServer(server);
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }
}
