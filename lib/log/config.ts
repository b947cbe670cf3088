/** When appended data is fsynced, and so when {@linkcode PartitionLog.waitDurable} resolves. */
export type FlushPolicy =
  | { kind: "always" }
  | { kind: "interval"; ms: number }
  | { kind: "never" };

/** Per-partition log settings (Kafka topic config names in the comments). */
export interface LogConfig {
  /** Roll the active segment before it would exceed this size (`segment.bytes`). */
  segmentBytes: number;
  /** Roll the active segment once it is older than this (`segment.ms`). */
  segmentMs: number;
  /** Bytes of batches between two sparse index entries (`index.interval.bytes`). */
  indexIntervalBytes: number;
  /** Delete segments whose newest timestamp is older than this; -1 = keep (`retention.ms`). */
  retentionMs: number;
  /** Delete oldest segments while the log is larger than this; -1 = no limit (`retention.bytes`). */
  retentionBytes: number;
  /** fsync policy (`--flush always|interval=MS|never`). */
  flush: FlushPolicy;
  /** `cleanup.policy` holds `delete`: time and size retention delete old segments. */
  deletePolicy: boolean;
  /** `cleanup.policy` holds `compact`: the log cleaner keeps the latest record per key. */
  compact: boolean;
  /** Dirty share of the cleanable log above which it is cleaned (`min.cleanable.dirty.ratio`). */
  minCleanableDirtyRatio: number;
  /** Records younger than this stay uncompacted (`min.compaction.lag.ms`). */
  minCompactionLagMs: number;
  /** A dirty record older than this makes the log cleanable whatever its ratio (`max.compaction.lag.ms`). */
  maxCompactionLagMs: number;
  /** How long a tombstone stays once it has been cleaned (`delete.retention.ms`). */
  deleteRetentionMs: number;
}

/** Kafka's defaults, with acknowledgements waiting for fsync. */
export const DEFAULT_LOG_CONFIG: LogConfig = Object.freeze({
  segmentBytes: 1024 * 1024 * 1024,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  indexIntervalBytes: 4096,
  retentionMs: 7 * 24 * 60 * 60 * 1000,
  retentionBytes: -1,
  flush: Object.freeze({ kind: "always" }) as FlushPolicy,
  deletePolicy: true,
  compact: false,
  minCleanableDirtyRatio: 0.5,
  minCompactionLagMs: 0,
  maxCompactionLagMs: Number.MAX_SAFE_INTEGER,
  deleteRetentionMs: 24 * 60 * 60 * 1000,
});

/** Largest segment: file positions in the offset index are u32, Kafka caps at int32. */
export const MAX_SEGMENT_BYTES = 0x7fffffff;

/** Throws RangeError if `config` holds a value the log cannot work with. */
export function validateLogConfig(config: LogConfig): void {
  const { segmentBytes, segmentMs, indexIntervalBytes, retentionMs, retentionBytes, flush } =
    config;
  if (
    !Number.isSafeInteger(segmentBytes) || segmentBytes < 64 || segmentBytes > MAX_SEGMENT_BYTES
  ) {
    throw new RangeError(`Invalid segmentBytes ${segmentBytes}: must be 64..${MAX_SEGMENT_BYTES}`);
  }
  if (!(segmentMs > 0)) throw new RangeError(`Invalid segmentMs ${segmentMs}: must be positive`);
  if (!Number.isSafeInteger(indexIntervalBytes) || indexIntervalBytes < 0) {
    throw new RangeError(`Invalid indexIntervalBytes ${indexIntervalBytes}: must be >= 0`);
  }
  if (!(retentionMs >= -1)) throw new RangeError(`Invalid retentionMs ${retentionMs}`);
  if (!(retentionBytes >= -1)) throw new RangeError(`Invalid retentionBytes ${retentionBytes}`);
  if (!(config.minCleanableDirtyRatio >= 0 && config.minCleanableDirtyRatio <= 1)) {
    throw new RangeError(`Invalid minCleanableDirtyRatio ${config.minCleanableDirtyRatio}`);
  }
  for (const key of ["minCompactionLagMs", "maxCompactionLagMs", "deleteRetentionMs"] as const) {
    if (!(config[key] >= 0)) throw new RangeError(`Invalid ${key} ${config[key]}`);
  }
  if (flush.kind === "interval" && !(flush.ms > 0)) {
    throw new RangeError(`Invalid flush interval ${flush.ms}: must be positive`);
  }
}
