/** Broker settings the group coordinator obeys, with Kafka's names and defaults. */
export interface GroupCoordinatorConfig {
  /** group.min.session.timeout.ms (6000): JoinGroup below this gets INVALID_SESSION_TIMEOUT. */
  minSessionTimeoutMs: number;
  /** group.max.session.timeout.ms (1800000): JoinGroup above this gets INVALID_SESSION_TIMEOUT. */
  maxSessionTimeoutMs: number;
  /**
   * group.initial.rebalance.delay.ms (3000): how long a rebalance that starts from Empty waits
   * for more members (Kafka's InitialDelayedJoin), extended while new members keep joining
   * during the group's first generation, capped at the rebalance timeout.
   */
  initialRebalanceDelayMs: number;
  /** group.max.size (2147483647): JoinGroup beyond this gets GROUP_MAX_SIZE_REACHED. */
  maxGroupSize: number;
  /** offsets.retention.ms (7 days): committed offsets of Empty groups expire after this. */
  offsetsRetentionMs: number;
  /** offsets.retention.check.interval.ms (600000): how often offset expiry runs. */
  offsetsRetentionCheckIntervalMs?: number;
  /** offset.metadata.max.bytes (4096): longer commit metadata gets OFFSET_METADATA_TOO_LARGE. */
  offsetMetadataMaxBytes?: number;
}

/** Kafka's defaults for every {@linkcode GroupCoordinatorConfig} setting. */
export const DEFAULT_GROUP_CONFIG: GroupCoordinatorConfig = Object.freeze({
  minSessionTimeoutMs: 6_000,
  maxSessionTimeoutMs: 1_800_000,
  initialRebalanceDelayMs: 3_000,
  maxGroupSize: 2_147_483_647,
  offsetsRetentionMs: 7 * 24 * 60 * 60 * 1000,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetMetadataMaxBytes: 4096,
});
