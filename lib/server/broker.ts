/**
 * Frame in, reply out, without sockets: decodes the header, finds the handler, checks
 * the version, decodes the body, runs the handler and encodes its response. A listener
 * feeds it frames; tests call it directly.
 */
import type { Logger } from "@logtape/logtape";
import {
  apiName,
  decodeRequestBody,
  decodeRequestHeader,
  encodeResponseFrame,
  ErrorCode,
  errorName,
  type RequestHeader,
} from "../protocol/mod.ts";
import { ApiKey } from "../protocol/mod.ts";
import { BufferPool } from "../util/buffer_pool.ts";
import type { FrameAllocator } from "./frame_reader.ts";
import { errorCodeOf, TidelogError } from "../util/errors.ts";
import {
  type AnyApiHandler,
  type ConnectionHooks,
  NO_CONNECTION_HOOKS,
  type RequestContext,
} from "./handler.ts";
import type { BrokerServices } from "./services.ts";

/** The outcome of one frame, after its effect has happened. */
export type FrameOutcome =
  /** Write this (complete frame, size prefix included) when it resolves; null: nothing. */
  | { kind: "respond"; frame: Promise<Uint8Array | null> }
  /** Close the connection: `reason` is logged. */
  | { kind: "close"; reason: string };

/** Dispatches request frames to the registered handlers. */
export class Broker {
  readonly services: BrokerServices;
  readonly #handlers = new Map<number, AnyApiHandler>();
  /**
   * Large response frames (fetches) and Produce request frames come from here, and go back
   * once written, or once the produce took effect (its batches are in the log file).
   */
  readonly #frames = new BufferPool();
  readonly #allocFrame = (size: number) => this.#frames.acquire(size);
  /** For the listener's frame reader: Produce requests are read into pooled buffers. */
  readonly requestFrames: FrameAllocator = {
    pooled: (apiKey) => apiKey === ApiKey.Produce,
    acquire: (size) => this.#frames.acquire(size),
  };

  constructor(services: BrokerServices, handlers: readonly AnyApiHandler[]) {
    this.services = services;
    for (const h of handlers) this.#handlers.set(h.apiKey, h);
  }

  /**
   * Takes back a response frame once it has been written, or a Produce request frame once
   * {@linkcode handleFrame} resolved for it (a produce's batches are copied to the log
   * before that, and nothing keeps them): the next large frame may reuse its memory.
   * Nothing may refer to `frame` afterwards; other arrays are ignored.
   */
  releaseFrame(frame: Uint8Array): void {
    this.#frames.release(frame);
  }

  /** The served version range of every API, for ApiVersions. */
  apiVersions(): { apiKey: number; minVersion: number; maxVersion: number }[] {
    return [...this.#handlers.values()]
      .map((h) => ({ apiKey: h.apiKey, minVersion: h.minVersion, maxVersion: h.maxVersion }))
      .sort((a, b) => a.apiKey - b.apiKey);
  }

  /**
   * Handles one request frame (the bytes after the size prefix). Resolves once the
   * request has taken effect; the response may still be pending inside the outcome.
   */
  async handleFrame(
    frame: Uint8Array,
    log: Logger,
    clientHost = "/127.0.0.1",
    connection: ConnectionHooks = NO_CONNECTION_HOOKS,
  ): Promise<FrameOutcome> {
    let header: RequestHeader;
    let bodyOffset: number;
    try {
      ({ header, bodyOffset } = decodeRequestHeader(frame));
    } catch (err) {
      return { kind: "close", reason: `Unparsable request header: ${(err as Error).message}` };
    }
    const handler = this.#handlers.get(header.apiKey);
    const name = apiName(header.apiKey) ?? `key ${header.apiKey}`;
    if (!handler) {
      return { kind: "close", reason: `Unsupported API ${name} (v${header.apiVersion})` };
    }
    const version = header.apiVersion;
    const supported = version >= handler.minVersion && version <= handler.maxVersion;
    if (!supported && header.apiKey === ApiKey.ApiVersions) {
      // KIP-511: answer with v0 so that any client can read our ranges and retry.
      log.info("ApiVersions v{version} is not supported; answering with v0", { version });
      return this.#respond(ApiKey.ApiVersions, 0, header.correlationId, {
        errorCode: ErrorCode.UNSUPPORTED_VERSION,
        apiKeys: this.apiVersions(),
      });
    }
    let request: unknown;
    try {
      request = decodeRequestBody(header.apiKey as never, version, frame.subarray(bodyOffset));
    } catch (err) {
      return {
        kind: "close",
        reason: `Unparsable ${name} v${version} request: ${(err as Error).message}`,
      };
    }
    if (!supported) {
      log.warn("{api} v{version} is not supported (we serve v{min}-v{max})", {
        api: name,
        version,
        min: handler.minVersion,
        max: handler.maxVersion,
      });
      return this.#respond(
        header.apiKey,
        version,
        header.correlationId,
        handler.errorResponse(request, ErrorCode.UNSUPPORTED_VERSION, version),
      );
    }
    const ctx: RequestContext = {
      header,
      services: this.services,
      clientHost,
      log,
      connection,
    };
    log.debug("{api} v{version} correlation {cid}", {
      api: name,
      version,
      cid: header.correlationId,
    });
    const labels = { request: name };
    const metrics = this.services.metrics;
    metrics.requests.inc(labels);
    const started = this.services.clock.nowMs();
    const measured = (outcome: FrameOutcome): FrameOutcome => {
      if (outcome.kind !== "respond") return outcome;
      const frame = outcome.frame.finally(() =>
        metrics.requestTime.observe(this.services.clock.nowMs() - started, labels)
      );
      return { kind: "respond", frame };
    };
    return measured(await this.#handle(handler, ctx, request, version, name));
  }

  async #handle(
    handler: AnyApiHandler,
    ctx: RequestContext,
    request: unknown,
    version: number,
    name: string,
  ): Promise<FrameOutcome> {
    const { header, log } = ctx;
    try {
      const reply = await handler.handle(ctx, request);
      if (reply.kind === "silent") return { kind: "respond", frame: Promise.resolve(null) };
      if (reply.kind === "close") return reply;
      const encode = (body: unknown) =>
        encodeResponseFrame(
          header.apiKey as never,
          version,
          header.correlationId,
          body as never,
          this.#allocFrame,
        );
      const fail = (err: unknown) =>
        encode(this.#failure(handler, request, version, err, log, name));
      if (reply.kind === "respondWhenReady") {
        // Built and encoded in one step: log slices are copied before the log can change.
        return {
          kind: "respond",
          frame: reply.ready.then(() => encode(reply.build())).catch(fail),
        };
      }
      const response = Promise.resolve(reply.response).catch((err) =>
        this.#failure(handler, request, version, err, log, name)
      );
      return { kind: "respond", frame: response.then(encode) };
    } catch (err) {
      return this.#respond(
        header.apiKey,
        version,
        header.correlationId,
        this.#failure(handler, request, version, err, log, name),
      );
    }
  }

  #failure(
    handler: AnyApiHandler,
    request: unknown,
    version: number,
    err: unknown,
    log: Logger,
    name: string,
  ): unknown {
    const code = errorCodeOf(err);
    if (err instanceof TidelogError) {
      log.info("{api} failed with {code}: {message}", {
        api: name,
        code: errorName(code),
        message: err.message,
      });
    } else {
      log.error("{api} failed unexpectedly: {error}", { api: name, error: err });
    }
    return handler.errorResponse(request, code, version);
  }

  #respond(apiKey: number, version: number, correlationId: number, body: unknown): FrameOutcome {
    return {
      kind: "respond",
      frame: Promise.resolve(
        encodeResponseFrame(apiKey as never, version, correlationId, body as never),
      ),
    };
  }
}
