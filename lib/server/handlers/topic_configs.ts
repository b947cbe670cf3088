/** Topic configs as CreateTopics (v5+) and DescribeConfigs report them. */
import { TOPIC_CONFIG_DEFS } from "../../metadata/mod.ts";

/** Kafka's ConfigSource values (DescribeConfigs v1+, CreateTopics v5+). */
export const ConfigSource = {
  DYNAMIC_TOPIC_CONFIG: 1,
  DEFAULT_CONFIG: 5,
} as const;

/** Kafka's ConfigType values (DescribeConfigs v3+). */
const ConfigType = { STRING: 2, INT: 3, LONG: 5, LIST: 7 } as const;

/** Every supported topic config with its effective value and source. */
export function describeTopicConfigs(overrides: Readonly<Record<string, string>>): {
  name: string;
  value: string;
  readOnly: boolean;
  isDefault: boolean;
  configSource: number;
  isSensitive: boolean;
  configType: number;
  documentation: string;
}[] {
  return [...TOPIC_CONFIG_DEFS].map(([name, def]) => {
    const explicit = overrides[name];
    return {
      name,
      value: explicit ?? def.defaultValue,
      readOnly: false,
      isDefault: explicit === undefined,
      configSource: explicit === undefined
        ? ConfigSource.DEFAULT_CONFIG
        : ConfigSource.DYNAMIC_TOPIC_CONFIG,
      isSensitive: false,
      configType: ConfigType[
        def.type === "long"
          ? "LONG"
          : def.type === "int"
          ? "INT"
          : def.type === "list"
          ? "LIST"
          : "STRING"
      ],
      documentation: def.doc,
    };
  });
}
