/** Shared fixtures for the log tests: temp dirs, configs, batch streams, file surgery. */
import { ManualClock } from "../../../lib/util/clock.ts";
import { DEFAULT_LOG_CONFIG, type LogConfig, PartitionLog } from "../../../lib/log/mod.ts";
import { buildSizedBatch } from "./_batches.ts";

export const T0 = 1_700_000_000_000;

/** A config for tests: defaults with `overrides`. */
export function testConfig(overrides: Partial<LogConfig> = {}): LogConfig {
  return { ...DEFAULT_LOG_CONFIG, retentionMs: -1, ...overrides };
}

/** Runs `fn` with a fresh temp dir, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "tidelog_log_test_" });
  try {
    await fn(`${root}/p-0`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Opens a log in `dir` with a ManualClock at T0 (unless given). */
export function openLog(
  dir: string,
  config: LogConfig = testConfig(),
  clock: ManualClock = new ManualClock(T0),
): Promise<PartitionLog> {
  return PartitionLog.open(dir, config, { clock, name: "test-0" });
}

/** What a test appended: stored bytes per batch and their offsets. */
export interface Appended {
  batch: Uint8Array;
  baseOffset: number;
  lastOffset: number;
}

/**
 * Appends `n` batches of `records` records with `valueBytes`-byte values each; record
 * i of batch b gets timestamp `T0 + 1000 * b + i`.
 */
export function appendBatches(
  plog: PartitionLog,
  n: number,
  records: number,
  valueBytes: number,
  first = 0,
): Appended[] {
  const out: Appended[] = [];
  for (let b = first; b < first + n; b++) {
    const batch = buildSizedBatch(records, valueBytes, { seed: b, timestampMs: T0 + 1000 * b });
    const r = plog.append([batch], { leaderEpoch: 1 });
    out.push({ batch, baseOffset: r.baseOffset, lastOffset: r.lastOffset });
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Reads the whole log from logStartOffset, batch run by batch run. */
export function readAll(plog: PartitionLog): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = plog.logStartOffset;
  while (offset < plog.logEndOffset) {
    const { records } = plog.read(offset, 1 << 20, { minOneMessage: true });
    if (records.length === 0) throw new Error(`Empty read at ${offset}`);
    parts.push(records);
    offset = nextOffsetAfter(records);
  }
  return concat(parts);
}

/** The offset after the last batch in `records`. */
export function nextOffsetAfter(records: Uint8Array): number {
  const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
  let p = 0;
  let next = -1;
  while (p < records.length) {
    next = Number(v.getBigInt64(p)) + v.getInt32(p + 23) + 1;
    p += v.getInt32(p + 8) + 12;
  }
  return next;
}

/** Base offsets of the batches in `records`. */
export function baseOffsets(records: Uint8Array): number[] {
  const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const out: number[] = [];
  for (let p = 0; p < records.length; p += v.getInt32(p + 8) + 12) {
    out.push(Number(v.getBigInt64(p)));
  }
  return out;
}

/** Segment `.log` files of `dir`, sorted. */
export function segmentFiles(dir: string, ext = "log"): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(`.${ext}`))
    .sort();
}
