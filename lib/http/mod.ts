/**
 * @module
 * The HTTP listener (`--http-addr`, DESIGN §2 `http/`): `/health`, `/ready` and `/metrics`
 * ({@linkcode HttpServer}, {@linkcode route}). It reads what the subsystems expose and
 * computes no state of its own. The metrics themselves are named and kept where they are
 * measured (lib/server/broker_metrics.ts, with the registry of lib/util/metrics.ts).
 */
export { HttpServer, type HttpSources, route } from "./http_server.ts";
