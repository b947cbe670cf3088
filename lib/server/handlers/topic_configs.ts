/** Config entries as CreateTopics (v5+) and DescribeConfigs report them. */
import {
  BROKER_LOG_CONFIGS,
  type BrokerConfigLayers,
  type ConfigType as ConfigTypeName,
  NO_BROKER_CONFIGS,
  resolveTopicConfig,
  TOPIC_CONFIG_DEFS,
} from "../../metadata/mod.ts";

/** Kafka's ConfigSource values (DescribeConfigs v1+, CreateTopics v5+). */
export const ConfigSource = {
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;

/** Kafka's ConfigType values (DescribeConfigs v3+). */
export const ConfigType = {
  BOOLEAN: 1,
  STRING: 2,
  INT: 3,
  SHORT: 4,
  LONG: 5,
  DOUBLE: 6,
  LIST: 7,
} as const;

export function configTypeCode(type: ConfigTypeName): number {
  return ConfigType[type.toUpperCase() as keyof typeof ConfigType];
}

/** One reported config with its synonyms (the layers below the effective value). */
export interface ConfigEntry {
  name: string;
  value: string;
  readOnly: boolean;
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  configType: number;
  documentation: string;
  synonyms: { name: string; value: string | null; source: number }[];
}

/**
 * Every topic config with its effective value and source: the topic's override, this
 * broker's dynamic value of the broker synonym, the cluster-wide dynamic default, or the
 * static default. Synonyms list every layer that has a value, highest first, as Kafka.
 */
export function describeTopicConfigs(
  overrides: Readonly<Record<string, string>>,
  brokers: BrokerConfigLayers = NO_BROKER_CONFIGS,
): ConfigEntry[] {
  return [...TOPIC_CONFIG_DEFS].map(([name, def]) => {
    const { value, source } = resolveTopicConfig(overrides, name, brokers);
    const synonyms: ConfigEntry["synonyms"] = [];
    const explicit = overrides[name];
    if (explicit !== undefined) {
      synonyms.push({ name, value: explicit, source: ConfigSource.TOPIC_CONFIG });
    }
    const brokerKey = def.brokerKey;
    if (brokerKey !== undefined) {
      const own = brokers.broker[brokerKey];
      if (own !== undefined) {
        synonyms.push({ name: brokerKey, value: own, source: ConfigSource.DYNAMIC_BROKER_CONFIG });
      }
      const cluster = brokers.cluster[brokerKey];
      if (cluster !== undefined) {
        synonyms.push({
          name: brokerKey,
          value: cluster,
          source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
        });
      }
      const fromFile = brokers.static?.[brokerKey];
      if (fromFile !== undefined) {
        synonyms.push({
          name: brokerKey,
          value: fromFile,
          source: ConfigSource.STATIC_BROKER_CONFIG,
        });
      }
    }
    synonyms.push({
      name: brokerKey ?? name,
      value: def.defaultValue,
      source: ConfigSource.DEFAULT_CONFIG,
    });
    return {
      name,
      value,
      readOnly: false,
      isDefault: source === "DEFAULT_CONFIG",
      configSource: ConfigSource[source],
      isSensitive: false,
      configType: configTypeCode(def.type),
      documentation: def.doc,
      synonyms,
    };
  });
}

/**
 * The dynamic log configs of a broker (`log.retention.ms`, `min.insync.replicas`, ...):
 * its own value, else the cluster-wide default, else the static default. For the
 * cluster-default resource ("") only the keys set there are listed, as Kafka does.
 */
export function describeBrokerLogConfigs(
  brokers: BrokerConfigLayers,
  clusterDefaultOnly: boolean,
): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  for (const [brokerKey, topicKey] of BROKER_LOG_CONFIGS) {
    const def = TOPIC_CONFIG_DEFS.get(topicKey)!;
    const own = clusterDefaultOnly ? undefined : brokers.broker[brokerKey];
    const cluster = brokers.cluster[brokerKey];
    if (clusterDefaultOnly && cluster === undefined) continue;
    const synonyms: ConfigEntry["synonyms"] = [];
    if (own !== undefined) {
      synonyms.push({ name: brokerKey, value: own, source: ConfigSource.DYNAMIC_BROKER_CONFIG });
    }
    if (cluster !== undefined) {
      synonyms.push({
        name: brokerKey,
        value: cluster,
        source: ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
      });
    }
    const fromFile = clusterDefaultOnly ? undefined : brokers.static?.[brokerKey];
    if (fromFile !== undefined) {
      synonyms.push({
        name: brokerKey,
        value: fromFile,
        source: ConfigSource.STATIC_BROKER_CONFIG,
      });
    }
    synonyms.push({
      name: brokerKey,
      value: def.defaultValue,
      source: ConfigSource.DEFAULT_CONFIG,
    });
    const top = synonyms[0]!;
    out.push({
      name: brokerKey,
      value: top.value!,
      readOnly: false,
      isDefault: top.source === ConfigSource.DEFAULT_CONFIG,
      configSource: top.source,
      isSensitive: false,
      configType: configTypeCode(def.type),
      documentation: def.doc,
      synonyms,
    });
  }
  return out;
}
