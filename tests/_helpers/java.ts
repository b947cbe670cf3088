/**
 * The Java world for interop tests: builds the Maven module in `tests/interop/java` (our
 * test programs, plus kafka-clients, Kafka's tools and Apache Kafka's jars copied into
 * `target/lib`) once per source change, and runs a class from it the way Kafka's shell
 * scripts do (`kafka-topics.sh` is `java -cp … org.apache.kafka.tools.TopicCommand`).
 *
 * In CI (CI=true) a missing `java` or `mvn` fails the test; elsewhere it is skipped.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "./run.ts";

const IN_CI = Deno.env.get("CI") === "true";
export const JAVA_MODULE = join(dirname(fileURLToPath(import.meta.url)), "..", "interop", "java");
const TARGET = join(JAVA_MODULE, "target");

function available(cmd: string, args: string[]): boolean {
  try {
    return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

export const HAVE_JAVA = available("java", ["-version"]) && available("mvn", ["-v"]);

/** Deno.test options: skipped outside CI when Java or Maven is missing; run (and fail) in CI. */
export function needsJava(): { ignore: boolean } {
  if (!HAVE_JAVA && !IN_CI) {
    // deno-lint-ignore no-console -- tell the person running tests why one was skipped
    console.error("Skipping: java/mvn not installed (CI installs them; see .ci/run)");
  }
  return { ignore: !HAVE_JAVA && !IN_CI };
}

async function newestSourceMtime(dir: string): Promise<number> {
  let newest = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) newest = Math.max(newest, await newestSourceMtime(p));
    else newest = Math.max(newest, (await Deno.stat(p)).mtime?.getTime() ?? 0);
  }
  return newest;
}

let built: Promise<string> | null = null;

/**
 * Builds the module if its sources or pom changed since the last build (test files run in
 * parallel processes, so the build holds a file lock) and returns the class path.
 */
export function javaClasspath(): Promise<string> {
  built ??= (async () => {
    await Deno.mkdir(TARGET, { recursive: true });
    const lock = await Deno.open(join(TARGET, ".build.lock"), { create: true, write: true });
    try {
      await lock.lock(true);
      const stamp = join(TARGET, ".built");
      const sources = Math.max(
        await newestSourceMtime(join(JAVA_MODULE, "src")),
        (await Deno.stat(join(JAVA_MODULE, "pom.xml"))).mtime?.getTime() ?? 0,
      );
      const stampTime = await Deno.stat(stamp).then((s) => s.mtime?.getTime() ?? 0, () => 0);
      if (stampTime < sources) {
        await run("mvn", ["-q", "-B", "-f", join(JAVA_MODULE, "pom.xml"), "package"], {
          timeoutMs: 600_000,
        });
        await Deno.writeTextFile(stamp, new Date().toISOString());
      }
    } finally {
      await lock.unlock();
      lock.close();
    }
    return `${join(TARGET, "classes")}:${join(TARGET, "lib")}/*`;
  })();
  return built;
}

/** Options of {@linkcode runJava}. */
export interface JavaRunOptions {
  stdin?: string;
  timeoutMs?: number;
  allowFailure?: boolean;
  /** Extra JVM flags (before the class name). */
  jvmArgs?: string[];
}

/** The `java` arguments that run `mainClass` on the module's class path `cp`. */
function javaArgs(cp: string, mainClass: string, args: string[], jvmArgs: string[] = []): string[] {
  return [
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-Xss1m",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.logFile=System.err",
    ...jvmArgs,
    "-cp",
    cp,
    mainClass,
    ...args,
  ];
}

/** Runs `mainClass` with `args` on the module's class path (Kafka tools or our programs). */
export async function runJava(
  mainClass: string,
  args: string[],
  options: JavaRunOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const cp = await javaClasspath();
  return await run("java", javaArgs(cp, mainClass, args, options.jvmArgs), {
    stdin: options.stdin,
    timeoutMs: options.timeoutMs ?? 180_000,
    allowFailure: options.allowFailure,
  });
}

/**
 * Starts `mainClass` with stdin, stdout and stderr piped, for programs a test talks to while
 * they run (read their stdout lines, answer on stdin). The caller must consume stdout and
 * stderr and close stdin (or kill the child) so that it exits.
 */
export async function spawnJava(
  mainClass: string,
  args: string[],
  options: { jvmArgs?: string[] } = {},
): Promise<Deno.ChildProcess> {
  const cp = await javaClasspath();
  return new Deno.Command("java", {
    args: javaArgs(cp, mainClass, args, options.jvmArgs),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Kafka's command-line tools by script name (Kafka 4.1's classes behind its bin/*.sh). */
export const KAFKA_TOOLS = {
  "kafka-topics": "org.apache.kafka.tools.TopicCommand",
  "kafka-configs": "kafka.admin.ConfigCommand",
  "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
  "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
  "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
  "kafka-producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
  "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
  "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
  "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
  "kafka-acls": "org.apache.kafka.tools.AclCommand",
  "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
  "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
  "kafka-storage": "kafka.tools.StorageTool",
  "kafka-dump-log": "kafka.tools.DumpLogSegments",
  "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
  "kafka-server-start": "kafka.Kafka",
} as const;

/** Runs one of Kafka's tools as its shell script would. */
export function kafkaTool(
  tool: keyof typeof KAFKA_TOOLS,
  args: string[],
  options: JavaRunOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runJava(KAFKA_TOOLS[tool], args, options);
}
