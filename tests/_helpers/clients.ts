/**
 * Real Kafka clients for interop tests. In CI (CI=true) a missing client fails the test;
 * elsewhere the test is skipped with a note, so a laptop without kcat can still run the
 * rest of the suite.
 */

const IN_CI = Deno.env.get("CI") === "true";

function available(cmd: string, args: string[]): boolean {
  try {
    const out = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync();
    return out.success;
  } catch {
    return false;
  }
}

/** Debian's Python Kafka clients import only under the system interpreter. */
export const PYTHON = "/usr/bin/python3";

export const HAVE_KCAT = available("kcat", ["-V"]);
export const HAVE_CONFLUENT = available(PYTHON, ["-c", "import confluent_kafka"]);
export const HAVE_KAFKA_PYTHON = available(PYTHON, ["-c", "import kafka"]);
/** Debian's Burrow (Kafka consumer lag monitoring) and the ZooKeeper it coordinates with. */
export const BURROW = "/usr/bin/Burrow";
export const ZOOKEEPER_SERVER = "/usr/share/zookeeper/bin/zkServer.sh";
export const HAVE_BURROW = [BURROW, ZOOKEEPER_SERVER].every((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/**
 * Options for a Deno.test that needs `client`: ignored (skipped) outside CI when it is
 * missing; in CI the test runs and fails on its first use of the client.
 */
export function needs(
  client: "kcat" | "confluent-kafka" | "kafka-python" | "burrow and zookeeper",
  have: boolean,
): { ignore: boolean } {
  if (!have && !IN_CI) {
    // deno-lint-ignore no-console -- tell the person running tests why one was skipped
    console.error(`Skipping: ${client} is not installed (CI installs it; see .ci/run)`);
  }
  return { ignore: !have && !IN_CI };
}

export { run } from "./run.ts";
