/**
 * `tidelog cluster status|metadata`. `status` probes each node (see `cluster_status.ts`):
 * those of `--addrs`, or else the bootstrap brokers plus every broker they know of.
 * `metadata` is one broker's view: cluster id, controller, brokers (DescribeCluster v1)
 * and topic and partition counts (Metadata v12).
 */
import { ApiKey, ErrorCode } from "../protocol/mod.ts";
import { parseAddrList, stringFlag } from "./_args.ts";
import type { CommandContext, VerbSpec } from "./_command.ts";
import { formatJson, formatTable } from "./_output.ts";
import { KafkaCallError } from "./admin_client.ts";
import { formatStatusLines, probeCluster } from "./cluster_status.ts";

const status: VerbSpec = {
  summary: "each node's Raft role, term, controller, fencing and commit index",
  positionals: [],
  flags: {
    addrs: {
      type: "string",
      arg: "HOST:PORT,...",
      doc: "ask exactly these nodes (default: the bootstrap brokers and every broker they know)",
    },
  },
  async run({ args, io }: CommandContext) {
    const addrsRaw = stringFlag(args.values, "addrs");
    const statuses = addrsRaw !== undefined
      ? await probeCluster(parseAddrList("addrs", addrsRaw))
      : await probeCluster(args.bootstrap, { discover: true });
    if (args.output === "json") io.stdout(formatJson(statuses));
    else io.stdout(formatStatusLines(statuses).map((l) => l + "\n").join(""));
    return statuses.some((s) => s.up) ? 0 : 1;
  },
};

const metadata: VerbSpec = {
  summary: "cluster id, controller, brokers and topic count",
  positionals: [],
  flags: {},
  async run({ args, client, io }: CommandContext) {
    const { cluster, md } = await client.retrying(async () => {
      const conn = await client.any();
      const [cluster, md] = await Promise.all([
        client.request(conn, ApiKey.DescribeCluster, 1, {
          includeClusterAuthorizedOperations: false,
          endpointType: 1,
        }),
        client.request(conn, ApiKey.Metadata, 12, {
          topics: null,
          allowAutoTopicCreation: false,
          includeTopicAuthorizedOperations: false,
        }),
      ]);
      if (cluster.errorCode !== ErrorCode.NONE) {
        throw new KafkaCallError("", cluster.errorCode, cluster.errorMessage);
      }
      return { cluster, md };
    });
    const brokers = [...cluster.brokers].sort((a, b) => a.brokerId - b.brokerId).map((b) => ({
      id: b.brokerId,
      host: b.host,
      port: b.port,
      rack: b.rack,
    }));
    const result = {
      clusterId: cluster.clusterId,
      controllerId: cluster.controllerId >= 0 ? cluster.controllerId : null,
      brokers,
      topics: md.topics.length,
      partitions: md.topics.reduce((n, t) => n + t.partitions.length, 0),
    };
    if (args.output === "json") {
      io.stdout(formatJson(result));
      return 0;
    }
    io.stdout(
      `cluster ${result.clusterId}  controller ${result.controllerId ?? "none"}  ` +
        `topics ${result.topics}  partitions ${result.partitions}\n\n` +
        formatTable(
          ["BROKER", "HOST", "PORT", "RACK", "CONTROLLER"],
          brokers.map((b) => [
            String(b.id),
            b.host,
            String(b.port),
            b.rack ?? "-",
            b.id === result.controllerId ? "yes" : "",
          ]),
        ) + "\n",
    );
    return 0;
  },
};

/** The verbs of `tidelog cluster`. */
export const CLUSTER_VERBS: Readonly<Record<string, VerbSpec>> = { status, metadata };
