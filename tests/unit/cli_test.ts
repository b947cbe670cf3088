import assert from "node:assert/strict";
import { parseCommandLine, UsageError } from "../../lib/cli.ts";

const noEnv = () => undefined;

Deno.test("parseCommandLine() applies defaults for serve", () => {
  const cmd = parseCommandLine(["serve"], noEnv);
  assert.equal(cmd.kind, "serve");
  if (cmd.kind !== "serve") return;
  assert.equal(cmd.options.nodeId, 1);
  assert.equal(cmd.options.kafkaHost, "127.0.0.1");
  assert.equal(cmd.options.kafkaPort, 9092);
  assert.equal(cmd.options.advertisedPort, 9092);
  assert.equal(cmd.options.dataDir, "./data/node-1");
  assert.deepEqual(cmd.options.flush, { kind: "always" });
  assert.equal(cmd.options.maxRequestBytes, 104857600);
});

Deno.test("parseCommandLine() reads TIDELOG_<FLAG> and lets flags win", () => {
  const env = (name: string) =>
    ({ TIDELOG_NODE_ID: "7", TIDELOG_FLUSH: "interval=50", TIDELOG_KAFKA_ADDR: "0.0.0.0:1" })[name];
  const cmd = parseCommandLine([
    "serve",
    "--kafka-addr",
    "127.0.0.1:9999",
    "--advertised-addr",
    "h:1",
  ], env);
  assert.ok(cmd.kind === "serve");
  assert.equal(cmd.options.nodeId, 7);
  assert.equal(cmd.options.dataDir, "./data/node-7");
  assert.deepEqual(cmd.options.flush, { kind: "interval", ms: 50 });
  assert.equal(cmd.options.kafkaPort, 9999);
  assert.equal(cmd.options.advertisedHost, "h");
});

Deno.test("parseCommandLine() rejects bad command lines with one-line messages", async (t) => {
  const cases: [string[], RegExp][] = [
    [["serve", "--nope"], /nope/],
    [["serve", "--node-id", "x"], /--node-id: expected an integer/],
    [["serve", "--node-id=-1"], /out of range/],
    [["serve", "--kafka-addr", "localhost"], /--kafka-addr: expected HOST:PORT/],
    [["serve", "--kafka-addr", "h:70000"], /out of range/],
    [["serve", "--flush", "sometimes"], /--flush/],
    [["serve", "--auto-create-topics", "yes"], /expected true or false/],
    [["serve", "--log-level", "loud"], /--log-level/],
    [["serve", "--kafka-addr", "0.0.0.0:9092"], /advertised-addr/],
    [["frobnicate"], /unknown command/],
    [[], /missing command/],
    [["serve", "extra"], /unexpected argument/],
  ];
  for (const [args, pattern] of cases) {
    await t.step(args.join(" ") || "(nothing)", () => {
      assert.throws(() => parseCommandLine(args, noEnv), (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, pattern);
        assert.ok(!err.message.includes("\n"), "one line");
        return true;
      });
    });
  }
});
