/**
 * DescribeLogDirs (key 35): v0-4.
 *
 * Behaviour: this node has one log directory (`DATA/topics`); it lists the partitions
 * hosted here (all, or those asked for that exist here), each with its size on disk and
 * its offset lag (how far its log end trails the high watermark, as Kafka computes it
 * for a current replica), plus the file system's total and usable bytes. Partitions not
 * hosted here are left out, as Kafka does.
 *
 * Version notes: v2+ is flexible; v3+ has the top-level error code; v4+ total and usable
 * bytes.
 */
import { diskSpace } from "../../runtime/fs.ts";
import { ApiKey, type DescribeLogDirsRequest, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";

export const describeLogDirsHandler: ApiHandler<typeof ApiKey.DescribeLogDirs> = {
  apiKey: ApiKey.DescribeLogDirs,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, req: DescribeLogDirsRequest) {
    const { services } = ctx;
    const wanted = req.topics === null
      ? null
      : new Map(req.topics.map((t) => [t.topic, new Set(t.partitions)]));
    const byTopic = new Map<
      string,
      { partitionIndex: number; partitionSize: bigint; offsetLag: bigint; isFutureKey: boolean }[]
    >();
    for (const p of services.replicas.partitions()) {
      if (wanted && !wanted.get(p.topic)?.has(p.partitionId)) continue;
      const list = byTopic.get(p.topic) ?? [];
      byTopic.set(p.topic, list);
      list.push({
        partitionIndex: p.partitionId,
        partitionSize: BigInt(p.log.sizeInBytes),
        offsetLag: BigInt(Math.max(p.highWatermark - p.log.logEndOffset, 0)),
        isFutureKey: false,
      });
    }
    const space = await diskSpace(services.config.logDir).catch((err) => {
      ctx.log.warn("Cannot read the disk space of {dir}: {error}", {
        dir: services.config.logDir,
        error: String(err),
      });
      return { totalBytes: -1, usableBytes: -1 };
    });
    return respond({
      errorCode: ErrorCode.NONE,
      results: [{
        errorCode: ErrorCode.NONE,
        logDir: services.config.logDir,
        topics: [...byTopic].map(([name, partitions]) => ({
          name,
          partitions: partitions.sort((a, b) => a.partitionIndex - b.partitionIndex),
        })),
        totalBytes: BigInt(space.totalBytes),
        usableBytes: BigInt(space.usableBytes),
      }],
    });
  },
  errorResponse: (_req, code) => ({ errorCode: code, results: [] }),
};
