/**
 * The shape of an API handler. A handler runs in two parts: its effect (appending,
 * creating a topic) happens before `handle` resolves, so requests of one connection take
 * effect in arrival order; the `response` it returns may still be pending (durability,
 * replication, long-poll), and such waits overlap across pipelined requests.
 */
import type { DeepPartial, RequestHeader, RequestTypes, ResponseTypes } from "../protocol/mod.ts";
import type { Logger } from "@logtape/logtape";
import type { BrokerServices } from "./services.ts";

/** API keys that have both a request and a response schema. */
export type ApiKeyWithSchema = keyof RequestTypes & keyof ResponseTypes;

/** What to do after a request took effect. */
export type Reply<R> =
  /** Send this response (possibly later) in order. */
  | { kind: "respond"; response: R | Promise<R> }
  /**
   * Once `ready` resolves, build the response and encode it in one synchronous step:
   * for responses that carry log slices, whose bytes must be copied before the log can
   * change.
   */
  | { kind: "respondWhenReady"; ready: Promise<void>; build: () => R }
  /** Send nothing (acks=0 produce). */
  | { kind: "silent" }
  /** Close the connection after earlier responses are written (acks=0 produce failed). */
  | { kind: "close"; reason: string };

/** What a handler may ask of the connection a request came on. */
export interface ConnectionHooks {
  /** Runs `hook` once when the connection closes (EOF, reset, or closed by us). */
  onClose(hook: () => void): void;
}

/** For requests that do not come from a socket (tests, in-process calls). */
export const NO_CONNECTION_HOOKS: ConnectionHooks = { onClose: () => {} };

/** Per-request context handed to handlers. */
export interface RequestContext {
  readonly header: RequestHeader;
  readonly services: BrokerServices;
  /** The client's address as seen by this node (DescribeGroups reports it). */
  readonly clientHost: string;
  /** Logger with the connection id bound. */
  readonly log: Logger;
  readonly connection: ConnectionHooks;
}

/** One Kafka API: its served version range, its handler and its error response. */
export interface ApiHandler<K extends ApiKeyWithSchema> {
  readonly apiKey: K;
  readonly minVersion: number;
  readonly maxVersion: number;
  handle(
    ctx: RequestContext,
    request: RequestTypes[K],
  ): Promise<Reply<DeepPartial<ResponseTypes[K]>>> | Reply<DeepPartial<ResponseTypes[K]>>;
  /**
   * The response that gives `code` for every part of `request`, as Kafka's
   * `getErrorResponse` does (unexpected failures, unsupported versions).
   */
  errorResponse(
    request: RequestTypes[K],
    code: number,
    version: number,
  ): DeepPartial<ResponseTypes[K]>;
}

/** A handler of any API, as stored in the registry. */
// deno-lint-ignore no-explicit-any
export type AnyApiHandler = ApiHandler<any>;

/** Shorthand for a response that is ready now. */
export function respond<R>(response: R | Promise<R>): Reply<R> {
  return { kind: "respond", response };
}
