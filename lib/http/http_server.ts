/**
 * The node's HTTP listener (`--http-addr`): `GET /health` (200 while the process serves),
 * `GET /ready` (200 once the node is registered, unfenced and caught up with the metadata
 * log; 503 with a JSON reason before and whenever that stops being true), `GET /metrics`
 * (Prometheus text format), the read-only JSON API under `/v1/` and the dashboard page at
 * `/`. It computes nothing: it renders what the node's parts expose through
 * {@linkcode HttpSources}.
 */
import { getLogger } from "../util/log.ts";
import DASHBOARD_HTML from "./dashboard.html" with { type: "text" };

const log = getLogger(["tidelog", "http"]);

/**
 * A JSON view's answer: `ok` (200), `notFound` (404) or `unavailable` (503, ask again
 * later); the body says why when it is not `ok`.
 */
export type JsonAnswer =
  | { readonly kind: "ok"; readonly body: unknown }
  | { readonly kind: "notFound" | "unavailable"; readonly body: { error: string } };

/** The read-only JSON API (`/v1/...`); each method returns a JSON-ready object. */
export interface JsonViews {
  /** `GET /v1/cluster` */
  cluster(): unknown;
  /** `GET /v1/brokers` */
  brokers(): unknown;
  /** `GET /v1/topics` */
  topics(): unknown;
  /** `GET /v1/topics/{name}` */
  topic(name: string): JsonAnswer;
  /** `GET /v1/groups` */
  groups(): unknown;
  /** `GET /v1/groups/{id}` */
  group(groupId: string): JsonAnswer;
  /** `GET /v1/throughput` */
  throughput(): unknown;
}

/** What the endpoints read. */
export interface HttpSources {
  /** null when ready; otherwise why not (starting, fenced, shutting down, ...). */
  notReadyReason(): string | null;
  /** The Prometheus exposition of the node's metrics. */
  metrics(): string;
  /** The JSON API; undefined until the node's parts exist (the API answers 503 meanwhile). */
  views(): JsonViews | undefined;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };
const PROMETHEUS = { "content-type": "text/plain; version=0.0.4; charset=utf-8" };
const JSON_TYPE = { "content-type": "application/json" };
const HTML = { "content-type": "text/html; charset=utf-8" };
/**
 * The JSON API and the metrics are read-only and hold nothing secret beyond what Metadata
 * tells any client, so any page may read them: a dashboard served by one node reads its
 * peers' groups and throughput.
 */
const CORS = { "access-control-allow-origin": "*" };
const API = { ...JSON_TYPE, ...CORS, "cache-control": "no-store" };

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", { status, headers: API });
}

const STATUS = { ok: 200, notFound: 404, unavailable: 503 } as const;

/** `/v1/...`: the JSON API (`rest` is the path after `/v1/`). */
function routeApi(rest: string, sources: HttpSources): Response {
  const views = sources.views();
  if (views === undefined) {
    return json(503, { error: sources.notReadyReason() ?? "starting" });
  }
  const answer = (a: JsonAnswer) => json(STATUS[a.kind], a.body);
  switch (rest) {
    case "cluster":
      return json(200, views.cluster());
    case "brokers":
      return json(200, views.brokers());
    case "topics":
      return json(200, views.topics());
    case "groups":
      return json(200, views.groups());
    case "throughput":
      return json(200, views.throughput());
  }
  // Group ids may hold any character, "/" included: the key is the rest of the path.
  const slash = rest.indexOf("/");
  const key = slash < 0 ? null : decodePath(rest.slice(slash + 1));
  if (key !== null && key !== "") {
    switch (rest.slice(0, slash)) {
      case "topics":
        return answer(views.topic(key));
      case "groups":
        return answer(views.group(key));
    }
  }
  return json(404, { error: `Not found: /v1/${rest}` });
}

/** A path segment's text; null for a malformed escape (answered 404). */
function decodePath(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Answers one request from `sources` (the routes, without the socket). */
export function route(req: Request, sources: HttpSources): Response {
  const path = new URL(req.url).pathname;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("Only GET is served\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET" },
    });
  }
  if (path.startsWith("/v1/")) return routeApi(path.slice("/v1/".length), sources);
  switch (path) {
    case "/":
    case "/index.html":
      return new Response(DASHBOARD_HTML, { headers: { ...HTML, "cache-control": "no-cache" } });
    case "/health":
      return new Response("ok\n", { headers: TEXT });
    case "/ready": {
      const reason = sources.notReadyReason();
      return reason === null
        ? new Response(JSON.stringify({ ready: true }) + "\n", { headers: API })
        : new Response(JSON.stringify({ ready: false, reason }) + "\n", {
          status: 503,
          headers: API,
        });
    }
    case "/metrics":
      return new Response(sources.metrics(), { headers: { ...PROMETHEUS, ...CORS } });
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
