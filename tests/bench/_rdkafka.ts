/**
 * librdkafka's `rdkafka_performance`, the external load generator of the benchmarks
 * (DESIGN §13): built once from Debian's librdkafka source package, for the librdkafka
 * the machine has (the one kcat uses), into `~/.cache/tidelog-bench/`; then run against
 * a broker, or against librdkafka's in-process mock broker for the generator's own
 * ceiling.
 *
 * Building needs root (a deb-src entry, `apt-get source`), gcc and the installed
 * `librdkafka1`; `ensureRdkafkaPerformance()` says what is missing when it cannot.
 */
import { join } from "node:path";
import { run } from "../_helpers/run.ts";

const CACHE = join(Deno.env.get("HOME") ?? "/tmp", ".cache", "tidelog-bench");
const LIBRDKAFKA = "/usr/lib/x86_64-linux-gnu/librdkafka.so.1";
const DEB_SRC = "/etc/apt/sources.list.d/tidelog-deb-src.sources";

function note(message: string): void {
  // deno-lint-ignore no-console -- progress for the person running the benchmark
  console.error(`rdkafka_performance: ${message}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The path of a built `rdkafka_performance`, building it first if needed. */
export async function ensureRdkafkaPerformance(): Promise<string> {
  const version = (await run("dpkg-query", ["-W", "-f", "${Version}", "librdkafka1"]))
    .stdout.trim();
  if (version === "") throw new Error("librdkafka1 is not installed (apt-get install kcat)");
  const binary = join(CACHE, `rdkafka_performance-${version}`);
  if (await exists(binary)) return binary;
  note(`building it from Debian's librdkafka ${version} source package`);
  if (!(await exists(DEB_SRC))) {
    const suites = (await Deno.readTextFile("/etc/os-release")).match(
      /^VERSION_CODENAME=(\w+)/m,
    )?.[1] ?? "bookworm";
    await Deno.writeTextFile(
      DEB_SRC,
      `Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: ${suites} ${suites}-updates\n` +
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
    );
  }
  await run("apt-get", ["update", "-qq"], { timeoutMs: 300_000 });
  if (!(await exists("/usr/bin/dpkg-source"))) {
    await run("apt-get", ["install", "-y", "-qq", "dpkg-dev"], { timeoutMs: 300_000 });
  }
  const work = await Deno.makeTempDir({ prefix: "rdkafka-src-" });
  try {
    await run("apt-get", ["source", "-qq", `librdkafka=${version}`], {
      cwd: work,
      timeoutMs: 300_000,
    });
    const src = [...Deno.readDirSync(work)].find((e) => e.isDirectory)?.name;
    if (!src) throw new Error("apt-get source left no source tree");
    const root = join(work, src);
    // Only for config.h, which the example's headers include.
    await run("./configure", ["--disable-ssl", "--disable-sasl"], {
      cwd: root,
      timeoutMs: 300_000,
    });
    await Deno.mkdir(CACHE, { recursive: true });
    await run("gcc", [
      "-O2",
      "-I../src",
      "rdkafka_performance.c",
      "-o",
      binary,
      LIBRDKAFKA,
      "-lpthread",
      "-lm",
    ], { cwd: join(root, "examples"), timeoutMs: 300_000 });
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return binary;
}

/** What one producer run reports. */
export interface ProduceFigures {
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  /** With `latency`: per-message delivery latency quantiles (ms). */
  p50Ms?: number;
  p99Ms?: number;
}

/** Options of {@linkcode rdkafkaProduce}. */
export interface ProduceOptions {
  /** `host:port,...`; null: librdkafka's mock broker (the generator's ceiling). */
  bootstrap: string | null;
  topic: string;
  recordSize: number;
  records: number;
  acks: 1 | -1;
  lingerMs?: number;
  /** Messages per second at most (rdkafka_performance -r). */
  rate?: number;
  /** Record each message's delivery latency and report p50/p99. */
  latency?: boolean;
}

/** Produces `records` records of `recordSize` bytes; one run of rdkafka_performance -P. */
export async function rdkafkaProduce(binary: string, o: ProduceOptions): Promise<ProduceFigures> {
  const latencyFile = o.latency ? await Deno.makeTempFile({ prefix: "rdkafka-lat-" }) : null;
  try {
    const out = await run(binary, [
      "-P",
      "-t",
      o.topic,
      "-s",
      String(o.recordSize),
      "-c",
      String(o.records),
      "-a",
      String(o.acks),
      "-X",
      `linger.ms=${o.lingerMs ?? 5}`,
      ...(o.bootstrap === null ? ["-X", "test.mock.num.brokers=1"] : ["-b", o.bootstrap]),
      ...(o.rate !== undefined ? ["-r", String(o.rate)] : []),
      ...(latencyFile !== null ? ["-l", "-A", latencyFile] : []),
      "-q",
    ], { timeoutMs: 900_000 });
    const text = out.stdout + out.stderr;
    const m = text.match(
      /% (\d+) messages produced \(\d+ bytes\), (\d+) delivered \(offset -?\d+, (\d+) failed\) in \d+ms: (\d+) msgs\/s and ([\d.]+) MB\/s/,
    );
    if (!m) throw new Error(`Cannot read rdkafka_performance's output:\n${text.slice(-2000)}`);
    if (Number(m[2]) !== o.records || Number(m[3]) !== 0) {
      throw new Error(`Only ${m[2]} of ${o.records} delivered (${m[3]} failed)`);
    }
    const figures: ProduceFigures = {
      records: Number(m[2]),
      recordsPerSec: Number(m[4]),
      mbPerSec: Number(m[5]),
    };
    if (latencyFile !== null) {
      const us = (await Deno.readTextFile(latencyFile)).split("\n").filter((l) => l !== "")
        .map(Number).sort((a, b) => a - b);
      const q = (f: number) => us[Math.min(us.length - 1, Math.floor(f * us.length))]! / 1000;
      figures.p50Ms = q(0.5);
      figures.p99Ms = q(0.99);
    }
    return figures;
  } finally {
    if (latencyFile !== null) await Deno.remove(latencyFile).catch(() => {});
  }
}

/** Consumes `records` records of `partitions` from the start; MB/s as the tool reports. */
export async function rdkafkaConsume(
  binary: string,
  o: { bootstrap: string; topic: string; partitions: number; records: number },
): Promise<{ recordsPerSec: number; mbPerSec: number }> {
  const out = await run(binary, [
    "-C",
    "-t",
    o.topic,
    ...Array.from({ length: o.partitions }, (_, p) => ["-p", String(p)]).flat(),
    "-o",
    "beginning",
    "-c",
    String(o.records),
    "-b",
    o.bootstrap,
    "-q",
  ], { timeoutMs: 600_000 });
  const text = out.stdout + out.stderr;
  const m = text.match(
    /% (\d+) messages \(\d+ bytes\) consumed in \d+ms: (\d+) msgs\/s \(([\d.]+) MB\/s\)/,
  );
  if (!m) throw new Error(`Cannot read rdkafka_performance's output:\n${text.slice(-2000)}`);
  if (Number(m[1]) < o.records) throw new Error(`Consumed only ${m[1]} of ${o.records}`);
  return { recordsPerSec: Number(m[2]), mbPerSec: Number(m[3]) };
}
