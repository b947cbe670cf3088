/**
 * @module
 * The Kafka-facing edge: the TCP listener with per-connection framing and in-order
 * replies, the {@linkcode Broker} that decodes, dispatches and encodes without sockets,
 * and one handler file per API under `handlers/`. Business logic lives in the subsystem
 * folders; handlers translate between Kafka messages and those subsystems and turn typed
 * errors into Kafka error codes.
 */
export { Broker, type FrameOutcome } from "./broker.ts";
export { KafkaListener } from "./kafka_listener.ts";
export { FrameError, FrameReader } from "./frame_reader.ts";
export type { AnyApiHandler, ApiHandler, Reply, RequestContext } from "./handler.ts";
export type { BrokerConfig, BrokerServices } from "./services.ts";
export { allHandlers } from "./handlers/mod.ts";
