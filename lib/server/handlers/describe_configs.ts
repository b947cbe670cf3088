/**
 * DescribeConfigs (key 32): v0-4.
 *
 * Behaviour: topic resources (type 2) list every supported topic config with its
 * effective value, marking explicit overrides (DYNAMIC_TOPIC_CONFIG) and defaults
 * (DEFAULT_CONFIG); broker resources (type 4, this node's id or "" for the defaults)
 * list the broker settings as read-only static configs. `configurationKeys` filters.
 * Unknown topics get UNKNOWN_TOPIC_OR_PARTITION; another broker's id, broker loggers
 * and other resource types get INVALID_REQUEST.
 *
 * Version notes: v0 reports isDefault; v1+ config sources and synonyms (the override
 * and the default); v3+ types and documentation.
 */
import { ApiKey, type DescribeConfigsRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import type { BrokerServices } from "../services.ts";
import { ConfigSource, describeTopicConfigs } from "./topic_configs.ts";

const ResourceType = { TOPIC: 2, BROKER: 4 } as const;
const STATIC_BROKER_CONFIG = 4;
const ConfigType = { BOOLEAN: 1, INT: 3 } as const;

function brokerConfigs(services: BrokerServices) {
  const c = services.config;
  const entries: [string, string, number, string][] = [
    ["broker.id", String(c.nodeId), ConfigType.INT, "This node's id"],
    ["node.id", String(c.nodeId), ConfigType.INT, "This node's id"],
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
      "socket.request.max.bytes",
      String(c.maxRequestBytes),
      ConfigType.INT,
      "Largest request frame accepted",
    ],
  ];
  return entries.map(([name, value, configType, documentation]) => ({
    name,
    value,
    readOnly: true,
    isDefault: false,
    configSource: STATIC_BROKER_CONFIG,
    isSensitive: false,
    configType,
    documentation,
    synonyms: [{ name, value, source: STATIC_BROKER_CONFIG }],
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
          return failure(
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            `Topic ${r.resourceName} does not exist`,
          );
        }
        configs = describeTopicConfigs(topic.configs).map((c) => ({
          ...c,
          synonyms: req.includeSynonyms
            ? [
              ...(c.isDefault
                ? []
                : [{ name: c.name, value: c.value, source: ConfigSource.DYNAMIC_TOPIC_CONFIG }]),
              {
                name: c.name,
                value: c.isDefault ? c.value : null,
                source: ConfigSource.DEFAULT_CONFIG,
              },
            ]
            : [],
        }));
      } else if (r.resourceType === ResourceType.BROKER) {
        if (r.resourceName !== "" && r.resourceName !== String(services.config.nodeId)) {
          return failure(
            ErrorCode.INVALID_REQUEST,
            `Unexpected broker id, expected ${services.config.nodeId} or empty string, but received ${r.resourceName}`,
          );
        }
        configs = brokerConfigs(services).map((c) => ({
          ...c,
          synonyms: req.includeSynonyms ? c.synonyms : [],
        }));
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
