/**
 * Micro benchmark of the partition log's produce path (DESIGN §5, §12):
 * `deno run -A tests/bench/log.ts [totalMiB]` (default 512 MiB per phase run, each
 * run also capped at 5 s). The raw and log phases alternate for 3 rounds and the medians
 * are reported, because the disk is shared and its speed drifts between runs.
 *
 * 1. raw baseline: plain `writeSync` of 64 KiB chunks into a temp file, one awaited
 *    `syncData` every 1 MiB (the machine's group-commit disk-append rate);
 * 2. log append: `PartitionLog.append` of ~64 KiB batches (64 records of 1 KiB) with flush
 *    "always", 32 appends in flight, each awaiting `waitDurable` (acks wait for fsync);
 * 3. log read: sequential `read` of 1 MiB from the page cache over what phase 2 wrote.
 *
 * Prints one JSON line per figure, `{ name, value, unit }`, and for the log ones also the
 * baseline and ratio. Nothing asserts on speed.
 */
import { DEFAULT_LOG_CONFIG, PartitionLog } from "../../lib/log/mod.ts";
import { buildSizedBatch } from "../unit/log/_batches.ts";

const MiB = 1024 * 1024;
const totalBytes = Number(Deno.args[0] ?? 512) * MiB;
const timeCapMs = 5_000;
const rounds = 3;
const inFlight = 32;

function emit(line: Record<string, unknown>): void {
  // deno-lint-ignore no-console
  console.log(JSON.stringify(line));
}

async function rawBaseline(dir: string): Promise<{ mbps: number; bytes: number }> {
  const chunk = crypto.getRandomValues(new Uint8Array(64 * 1024));
  const file = await Deno.open(`${dir}/raw.bin`, { write: true, create: true, truncate: true });
  const start = performance.now();
  let written = 0;
  let sinceSync = 0;
  try {
    while (written < totalBytes && performance.now() - start < timeCapMs) {
      let done = 0;
      while (done < chunk.length) done += file.writeSync(chunk.subarray(done));
      written += chunk.length;
      sinceSync += chunk.length;
      if (sinceSync >= MiB) {
        await file.syncData();
        sinceSync = 0;
      }
    }
    await file.syncData();
  } finally {
    file.close();
  }
  const secs = (performance.now() - start) / 1000;
  return { mbps: written / MiB / secs, bytes: written };
}

async function logAppend(dir: string, round: number): Promise<
  { mbps: number; appendsPerSec: number; syncs: number; appends: number; plog: PartitionLog }
> {
  const plog = await PartitionLog.open(`${dir}/bench-${round}`, {
    ...DEFAULT_LOG_CONFIG,
    retentionMs: -1,
    segmentBytes: 256 * MiB,
  }, { name: `bench-${round}` });
  // A pool of distinct batches, reused: append() copies them to the page cache at once.
  const pool = Array.from({ length: 16 }, (_, i) => buildSizedBatch(64, 1024, { seed: i }));
  const batchBytes = pool[0]!.length;
  const pending: Promise<void>[] = [];
  let appends = 0;
  let bytes = 0;
  const start = performance.now();
  while (bytes < totalBytes && performance.now() - start < timeCapMs) {
    while (pending.length < inFlight) {
      const r = plog.append([pool[appends % pool.length]!], { leaderEpoch: 0 });
      pending.push(plog.waitDurable(r.lastOffset));
      appends++;
      bytes += batchBytes;
    }
    await pending.shift();
  }
  await Promise.all(pending);
  const secs = (performance.now() - start) / 1000;
  return {
    mbps: bytes / MiB / secs,
    appendsPerSec: appends / secs,
    syncs: plog.stats().syncs,
    appends,
    plog,
  };
}

function logRead(plog: PartitionLog): { mbps: number } {
  const start = performance.now();
  let offset = plog.logStartOffset;
  let bytes = 0;
  while (offset < plog.logEndOffset) {
    const { records } = plog.read(offset, MiB, { minOneMessage: true });
    bytes += records.length;
    // Next offset: after the last batch returned (walk the batch lengths).
    const v = new DataView(records.buffer, records.byteOffset, records.byteLength);
    let p = 0;
    while (p < records.length) {
      offset = Number(v.getBigInt64(p)) + v.getInt32(p + 23) + 1;
      p += v.getInt32(p + 8) + 12;
    }
  }
  return { mbps: bytes / MiB / ((performance.now() - start) / 1000) };
}

const dir = await Deno.makeTempDir({ prefix: "tidelog_log_bench_" });
try {
  const raws: number[] = [];
  const appendMbps: number[] = [];
  const appendRates: number[] = [];
  const perSync: number[] = [];
  const reads: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const raw = await rawBaseline(dir);
    await Deno.remove(`${dir}/raw.bin`);
    raws.push(raw.mbps);
    const app = await logAppend(dir, r);
    appendMbps.push(app.mbps);
    appendRates.push(app.appendsPerSec);
    perSync.push(app.appends / Math.max(1, app.syncs));
    reads.push(logRead(app.plog).mbps);
    await app.plog.delete();
  }
  const raw = median(raws);
  emit({ name: "raw_write_fsync_1mib", value: round(raw), unit: "MB/s" });
  emit({
    name: "log_append_fsync_always",
    value: round(median(appendMbps)),
    unit: "MB/s",
    baseline: round(raw),
    ratio: round(median(appendMbps) / raw, 3),
  });
  emit({ name: "log_append_rate", value: Math.round(median(appendRates)), unit: "appends/s" });
  emit({
    name: "log_append_records",
    value: Math.round(median(appendRates) * 64),
    unit: "records/s",
  });
  emit({ name: "log_appends_per_fsync", value: round(median(perSync), 1), unit: "appends/fsync" });
  emit({
    name: "log_read_page_cache",
    value: round(median(reads)),
    unit: "MB/s",
    baseline: round(raw),
    ratio: round(median(reads) / raw, 3),
  });
} finally {
  await Deno.remove(dir, { recursive: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
