/**
 * DescribeConfigs (key 32): v0-4.
 *
 * Behaviour: topic resources (type 2) list every Kafka topic config with its effective
 * value and source (the topic's override, a dynamic broker config or cluster default, or
 * the static default); broker resources (type 4) list, for this node's id, its static
 * settings (read-only) and the dynamic log configs, and for "" the cluster-wide dynamic
 * defaults that are set. `configurationKeys` filters; synonyms only when asked.
 * Unknown topics get UNKNOWN_TOPIC_OR_PARTITION; another broker's id, broker loggers
 * and other resource types get INVALID_REQUEST.
 *
 * Version notes: v0 reports isDefault; v1+ config sources and synonyms (every layer
 * that has a value, highest first); v3+ types and documentation.
 */
import { ApiKey, type DescribeConfigsRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";
import {
  type ConfigEntry,
  ConfigSource,
  ConfigType,
  describeBrokerLogConfigs,
  describeTopicConfigs,
} from "./topic_configs.ts";

const ResourceType = { TOPIC: 2, BROKER: 4 } as const;

/** This node's static settings, under Kafka's broker config names. */
function staticBrokerConfigs(services: BrokerServices): ConfigEntry[] {
  const c = services.config;
  const entries: [string, string, number, string][] = [
    ["broker.id", String(c.nodeId), ConfigType.INT, "This node's id"],
    ["node.id", String(c.nodeId), ConfigType.INT, "This node's id"],
    [
      "process.roles",
      "broker,controller",
      ConfigType.LIST,
      "Every node is broker and Raft voter or observer",
    ],
    [
      "log.dirs",
      c.logDir,
      ConfigType.STRING,
      "Where partition logs are stored (--data-dir)/topics",
    ],
    ["log.dir", c.logDir, ConfigType.STRING, "Where partition logs are stored (--data-dir)/topics"],
    [
      "listeners",
      `PLAINTEXT://${c.listenAddress}`,
      ConfigType.LIST,
      "The Kafka listener (--kafka-addr)",
    ],
    [
      "advertised.listeners",
      `PLAINTEXT://${c.advertisedHost}:${c.advertisedPort}`,
      ConfigType.LIST,
      "What Metadata returns for this node (--advertised-addr)",
    ],
    ["controller.quorum.voters", c.quorumVoters, ConfigType.LIST, "The Raft voters (--peers)"],
    [
      "inter.broker.protocol.version",
      "4.1-IV1",
      ConfigType.STRING,
      "The Kafka protocol level spoken between nodes",
    ],
    [
      "auto.create.topics.enable",
      String(c.autoCreateTopics),
      ConfigType.BOOLEAN,
      "Create missing topics on Metadata and Produce",
    ],
    [
      "num.partitions",
      String(c.numPartitions),
      ConfigType.INT,
      "Partitions of auto-created topics",
    ],
    [
      "default.replication.factor",
      String(c.defaultReplicationFactor),
      ConfigType.INT,
      "Replication factor of auto-created topics",
    ],
    [
      "offsets.topic.replication.factor",
      String(c.offsetsTopicReplicationFactor),
      ConfigType.SHORT,
      "Replication factor of __consumer_offsets",
    ],
    ["offsets.topic.num.partitions", "50", ConfigType.INT, "Partitions of __consumer_offsets"],
    [
      "socket.request.max.bytes",
      String(c.maxRequestBytes),
      ConfigType.INT,
      "Largest request frame accepted",
    ],
    ["delete.topic.enable", "true", ConfigType.BOOLEAN, "Topics can be deleted"],
  ];
  return entries.map(([name, value, configType, documentation]) => ({
    name,
    value,
    readOnly: true,
    isDefault: false,
    configSource: ConfigSource.STATIC_BROKER_CONFIG,
    isSensitive: false,
    configType,
    documentation,
    synonyms: [{ name, value, source: ConfigSource.STATIC_BROKER_CONFIG }],
  }));
}

export const describeConfigsHandler: ApiHandler<typeof ApiKey.DescribeConfigs> = {
  apiKey: ApiKey.DescribeConfigs,
  minVersion: 0,
  maxVersion: 4,
  handle(ctx, req: DescribeConfigsRequest) {
    const { services } = ctx;
    const results = req.resources.map((r) => {
      const base = { resourceType: r.resourceType, resourceName: r.resourceName };
      const failure = (code: number, errorMessage: string) => ({
        ...base,
        errorCode: code,
        errorMessage,
        configs: [],
      });
      let configs;
      if (r.resourceType === ResourceType.TOPIC) {
        const topic = services.metadata.image.topic(r.resourceName);
        if (!topic) {
          // Kafka's ConfigHelper answers an empty message here.
          return failure(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "");
        }
        configs = describeTopicConfigs(
          topic.configs,
          services.metadata.image.brokerConfigLayers(
            services.config.nodeId,
            services.config.staticBrokerConfigs,
          ),
        );
      } else if (r.resourceType === ResourceType.BROKER) {
        if (r.resourceName !== "" && r.resourceName !== String(services.config.nodeId)) {
          return failure(
            ErrorCode.INVALID_REQUEST,
            `Unexpected broker id, expected ${services.config.nodeId} or empty string, but received ${r.resourceName}`,
          );
        }
        const layers = services.metadata.image.brokerConfigLayers(
          services.config.nodeId,
          services.config.staticBrokerConfigs,
        );
        configs = r.resourceName === ""
          ? describeBrokerLogConfigs(layers, true)
          : [...staticBrokerConfigs(services), ...describeBrokerLogConfigs(layers, false)];
      } else {
        return failure(ErrorCode.INVALID_REQUEST, `Unsupported resource type ${r.resourceType}`);
      }
      const keys = r.configurationKeys;
      const selected = keys === null ? configs : configs.filter((c) => keys.includes(c.name));
      return {
        ...base,
        errorCode: ErrorCode.NONE,
        errorMessage: null,
        configs: selected.map((c) => ({
          ...c,
          synonyms: req.includeSynonyms ? c.synonyms : [],
          documentation: req.includeDocumentation ? c.documentation : null,
        })),
      };
    });
    return respond({ results });
  },
  errorResponse: (req, code) => ({
    results: req.resources.map((r) => ({
      resourceType: r.resourceType,
      resourceName: r.resourceName,
      errorCode: code,
      errorMessage: null,
      configs: [],
    })),
  }),
};
