/**
 * @module
 * The HTTP listener (`--http-addr`, DESIGN §2 `http/`): `/health`, `/ready`, `/metrics`, the
 * read-only JSON API under `/v1/` and the dashboard page at `/` (`dashboard.html`, one
 * self-contained file: inline CSS and JS, no external resources) ({@linkcode HttpServer},
 * {@linkcode route}). It reads what the subsystems expose and computes no state of its own.
 * The metrics themselves are named and kept where they are measured
 * (lib/server/broker_metrics.ts, with the registry of lib/util/metrics.ts), and the JSON
 * views are built next to what they read (lib/server/admin_view.ts).
 */
export {
  HttpServer,
  type HttpSources,
  type JsonAnswer,
  type JsonViews,
  route,
} from "./http_server.ts";
