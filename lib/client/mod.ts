/**
 * @module
 * Client side of the Kafka protocol: a pipelined {@linkcode KafkaConnection}. Owns no
 * broker logic; used by the benchmark load generator, tests and replica fetchers.
 */
export { BrokerConnections } from "./broker_connections.ts";
export { KafkaConnection } from "./kafka_connection.ts";
