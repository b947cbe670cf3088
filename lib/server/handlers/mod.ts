/** Every served Kafka API, one file each; ApiVersions is derived from this list. */
import type { AnyApiHandler } from "../handler.ts";
import { apiVersionsHandler } from "./api_versions.ts";
import { createPartitionsHandler } from "./create_partitions.ts";
import { createTopicsHandler } from "./create_topics.ts";
import { deleteTopicsHandler } from "./delete_topics.ts";
import { describeClusterHandler } from "./describe_cluster.ts";
import { describeConfigsHandler } from "./describe_configs.ts";
import { fetchHandler } from "./fetch.ts";
import { listOffsetsHandler } from "./list_offsets.ts";
import { metadataHandler } from "./metadata.ts";
import { produceHandler } from "./produce.ts";

/** All handlers; `versions` lists the served ranges for ApiVersions. */
export function allHandlers(
  versions: () => { apiKey: number; minVersion: number; maxVersion: number }[],
): AnyApiHandler[] {
  return [
    produceHandler,
    fetchHandler,
    listOffsetsHandler,
    metadataHandler,
    apiVersionsHandler(versions),
    createTopicsHandler,
    deleteTopicsHandler,
    describeConfigsHandler,
    createPartitionsHandler,
    describeClusterHandler,
  ];
}
