/**
 * DescribeCluster (key 60): v0-1.
 *
 * Behaviour: this node's view of the live (registered, unfenced) brokers and the
 * controller (the Raft leader; -1 while there is none). Authorized operations are not computed (no ACLs): the
 * "not requested" sentinel is returned.
 *
 * Version notes: v1 adds endpointType; only brokers (1) are described, a request for
 * controllers (2) gets UNSUPPORTED_ENDPOINT_TYPE as in Kafka's broker.
 */
import { ApiKey, ErrorCode } from "../../protocol/mod.ts";
import { type ApiHandler, respond } from "../handler.ts";
import { brokerEndpoints, controllerIdOf } from "./metadata.ts";

const ENDPOINT_BROKERS = 1;

export const describeClusterHandler: ApiHandler<typeof ApiKey.DescribeCluster> = {
  apiKey: ApiKey.DescribeCluster,
  minVersion: 0,
  maxVersion: 1,
  handle(ctx, req) {
    const { services } = ctx;
    if (req.endpointType !== ENDPOINT_BROKERS) {
      return respond({
        errorCode: ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
        errorMessage:
          "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        endpointType: req.endpointType,
        clusterId: services.metadata.image.clusterId ?? "",
      });
    }
    return respond({
      errorCode: ErrorCode.NONE,
      endpointType: ENDPOINT_BROKERS,
      clusterId: services.metadata.image.clusterId ?? "",
      controllerId: controllerIdOf(services),
      brokers: brokerEndpoints(services).map((b) => ({
        brokerId: b.nodeId,
        host: b.host,
        port: b.port,
        rack: null,
      })),
    });
  },
  errorResponse: (_req, code) => ({ errorCode: code, clusterId: "" }),
};
