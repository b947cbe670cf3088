/**
 * ElectLeaders (key 43): v0-2.
 *
 * Behaviour: on the controller, for each named partition (every partition when the list
 * is null), a preferred election moves leadership to the first replica if it is active
 * and in the ISR; an unclean election (only when asked) elects a leaderless partition
 * from any active replica. Results per partition: NONE, ELECTION_NOT_NEEDED,
 * PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE or
 * UNKNOWN_TOPIC_OR_PARTITION; with a null list, partitions that needed no election are
 * left out (their topics are listed with no results), as Kafka does. A node that is not the controller forwards the request.
 *
 * Version notes: v0 has no election type (preferred); v1+ adds the top-level error code;
 * v2+ is flexible.
 */
import { ElectionType, type MetadataImage, planElectLeader } from "../../metadata/mod.ts";
import { ApiKey, type ElectLeadersRequest, ErrorCode } from "../../protocol/mod.ts";
import { TidelogError } from "../../util/errors.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { forwardToController } from "../forward.ts";

interface PartitionResult {
  partitionId: number;
  errorCode: number;
  errorMessage: string | null;
}

function wanted(
  image: MetadataImage,
  req: ElectLeadersRequest,
): { topic: string; partitions: number[] }[] {
  if (req.topicPartitions !== null) {
    return req.topicPartitions.map((t) => ({
      topic: t.topic,
      partitions: [...new Set(t.partitions)],
    }));
  }
  return [...image.topicsByName.values()].map((t) => ({
    topic: t.name,
    partitions: t.partitions.map((_, i) => i),
  }));
}

export const electLeadersHandler: ApiHandler<typeof ApiKey.ElectLeaders> = {
  apiKey: ApiKey.ElectLeaders,
  minVersion: 0,
  maxVersion: 2,
  async handle(ctx, req: ElectLeadersRequest) {
    const forwarded = await forwardToController(
      ctx,
      ApiKey.ElectLeaders,
      req,
      (r) =>
        r.errorCode === ErrorCode.NOT_CONTROLLER ||
        r.replicaElectionResults.some((t) =>
          t.partitionResult.some((p) => p.errorCode === ErrorCode.NOT_CONTROLLER)
        ),
    );
    if (forwarded) return respond(forwarded);
    const electionType = ctx.header.apiVersion === 0 ? ElectionType.PREFERRED : req.electionType;
    const electAll = req.topicPartitions === null;
    const results: Map<string, PartitionResult[]> = new Map();
    await ctx.services.metadata.propose((image) => {
      results.clear();
      const records = [];
      for (const { topic, partitions } of wanted(image, req)) {
        const out = results.get(topic) ?? [];
        results.set(topic, out);
        for (const partitionId of partitions) {
          try {
            records.push(planElectLeader(image, topic, partitionId, electionType));
            out.push({ partitionId, errorCode: ErrorCode.NONE, errorMessage: null });
          } catch (err) {
            if (!(err instanceof TidelogError)) throw err;
            if (electAll && err.code === ErrorCode.ELECTION_NOT_NEEDED) continue;
            out.push({ partitionId, errorCode: err.code, errorMessage: err.message });
          }
        }
      }
      return { records, result: undefined };
    });
    // With a null list every topic is listed, even with no partition that needed electing.
    const replicaElectionResults = [...results].map(([topic, partitionResult]) => ({
      topic,
      partitionResult,
    }));
    return respond({ errorCode: ErrorCode.NONE, replicaElectionResults });
  },
  errorResponse: (req, code) => ({
    errorCode: code,
    replicaElectionResults: (req.topicPartitions ?? []).map((t) => ({
      topic: t.topic,
      partitionResult: t.partitions.map((partitionId) => ({
        partitionId,
        errorCode: code,
        errorMessage: null,
      })),
    })),
  }),
};
