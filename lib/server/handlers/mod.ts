/** Every served Kafka API, one file each; ApiVersions is derived from this list. */
import type { AnyApiHandler } from "../handler.ts";
import { alterConfigsHandler, incrementalAlterConfigsHandler } from "./alter_configs.ts";
import { apiVersionsHandler } from "./api_versions.ts";
import { createAclsHandler, deleteAclsHandler, describeAclsHandler } from "./acls.ts";
import { deleteRecordsHandler } from "./delete_records.ts";
import { describeLogDirsHandler } from "./describe_log_dirs.ts";
import { describeProducersHandler } from "./describe_producers.ts";
import { describeTopicPartitionsHandler } from "./describe_topic_partitions.ts";
import { electLeadersHandler } from "./elect_leaders.ts";
import { listPartitionReassignmentsHandler } from "./list_partition_reassignments.ts";
import {
  allocateProducerIdsHandler,
  alterPartitionHandler,
  brokerHeartbeatHandler,
  brokerRegistrationHandler,
} from "./controller_apis.ts";
import { createPartitionsHandler } from "./create_partitions.ts";
import { deleteGroupsHandler } from "./delete_groups.ts";
import { describeGroupsHandler } from "./describe_groups.ts";
import { findCoordinatorHandler } from "./find_coordinator.ts";
import { heartbeatHandler } from "./heartbeat.ts";
import { joinGroupHandler } from "./join_group.ts";
import { leaveGroupHandler } from "./leave_group.ts";
import { listGroupsHandler } from "./list_groups.ts";
import { offsetCommitHandler } from "./offset_commit.ts";
import { offsetDeleteHandler } from "./offset_delete.ts";
import { offsetFetchHandler } from "./offset_fetch.ts";
import { offsetForLeaderEpochHandler } from "./offset_for_leader_epoch.ts";
import { syncGroupHandler } from "./sync_group.ts";
import { createTopicsHandler } from "./create_topics.ts";
import { deleteTopicsHandler } from "./delete_topics.ts";
import { describeClusterHandler } from "./describe_cluster.ts";
import { describeConfigsHandler } from "./describe_configs.ts";
import { describeQuorumHandler } from "./describe_quorum.ts";
import { fetchHandler } from "./fetch.ts";
import { initProducerIdHandler } from "./init_producer_id.ts";
import { listOffsetsHandler } from "./list_offsets.ts";
import { metadataHandler } from "./metadata.ts";
import { produceHandler } from "./produce.ts";
import {
  addOffsetsToTxnHandler,
  addPartitionsToTxnHandler,
  describeTransactionsHandler,
  endTxnHandler,
  listTransactionsHandler,
} from "./transactions.ts";
import { txnOffsetCommitHandler } from "./txn_offset_commit.ts";
import { writeTxnMarkersHandler } from "./write_txn_markers.ts";

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
    alterConfigsHandler,
    incrementalAlterConfigsHandler,
    createPartitionsHandler,
    deleteRecordsHandler,
    describeLogDirsHandler,
    describeProducersHandler,
    describeTopicPartitionsHandler,
    electLeadersHandler,
    listPartitionReassignmentsHandler,
    describeAclsHandler,
    createAclsHandler,
    deleteAclsHandler,
    describeClusterHandler,
    describeQuorumHandler,
    initProducerIdHandler,
    addPartitionsToTxnHandler,
    addOffsetsToTxnHandler,
    endTxnHandler,
    writeTxnMarkersHandler,
    txnOffsetCommitHandler,
    describeTransactionsHandler,
    listTransactionsHandler,
    offsetCommitHandler,
    offsetFetchHandler,
    findCoordinatorHandler,
    joinGroupHandler,
    heartbeatHandler,
    leaveGroupHandler,
    syncGroupHandler,
    describeGroupsHandler,
    listGroupsHandler,
    deleteGroupsHandler,
    offsetDeleteHandler,
    offsetForLeaderEpochHandler,
    alterPartitionHandler,
    brokerRegistrationHandler,
    brokerHeartbeatHandler,
    allocateProducerIdsHandler,
  ];
}
