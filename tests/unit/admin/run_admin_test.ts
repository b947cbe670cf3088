import assert from "node:assert/strict";
import { type AdminIo, compileFormat, runAdmin } from "../../../lib/admin/mod.ts";
import { freePort } from "../../_helpers/node_process.ts";

/** An AdminIo that records what the command writes. */
function fakeIo(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: AdminIo = {
    stdout: (t) => void out.push(t),
    stderr: (t) => void err.push(t),
    stdin: () => new ReadableStream({ start: (c) => c.close() }),
    stderrIsTerminal: () => false,
    onInterrupt: () => () => {},
    env: (name) => env[name],
  };
  return { io, stdout: () => out.join(""), stderr: () => err.join("") };
}

Deno.test("runAdmin() answers a bad command line with one stderr line and exit code 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["topic"], /^tidelog: topic: missing verb \(create, list/],
    [["topic", "bogus"], /unknown verb "bogus"/],
    [["topic", "create"], /topic create: missing NAME/],
    [["topic", "create", "t", "--bogus"], /unknown flag --bogus/],
    [["topic", "create", "t", "--partitions"], /--partitions needs a value/],
    [["topic", "create", "t", "--partitions", "0"], /--partitions: 0 is out of range/],
    [["topic", "create", "t", "--config", "novalue"], /--config: expected KEY=VALUE/],
    [["topic", "list", "extra"], /unexpected argument "extra"/],
    [["topic", "list", "--output", "xml"], /--output: expected table or json/],
    [["topic", "list", "--bootstrap", "nohost"], /--bootstrap: expected HOST:PORT/],
    [["topic", "alter-config", "t"], /at least one --set K=V or --delete K/],
    [["topic", "alter-config", "t", "--set", "a=1", "--delete", "a"], /a is both set and deleted/],
    [["group", "reset-offsets", "g", "--to-earliest"], /missing --topic T/],
    [["group", "reset-offsets", "g", "--topic", "t"], /exactly one of --to-earliest/],
    [
      ["group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"],
      /exactly one/,
    ],
    [["group", "reset-offsets", "g", "--topic", "t", "--to-offset", "-1"], /--to-offset/],
    [["group", "reset-offsets", "g", "--topic", "t", "--to-datetime", "soon"], /ISO 8601/],
    [["consume", "t", "--count", "0"], /--count: expected at least 1, got 0/],
    [["consume", "t", "--format", "%z"], /--format: unknown %z/],
    [["consume", "t", "--format", "%v", "--output", "json"], /exclude each other/],
    [["produce"], /produce: missing TOPIC/],
    [["cluster", "status", "--addrs", "x"], /--addrs: expected HOST:PORT/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const f = fakeIo();
      assert.equal(await runAdmin(args, f.io), 2);
      assert.equal(f.stdout(), "");
      assert.match(f.stderr(), message);
      assert.equal(f.stderr().trimEnd().split("\n").length, 1, f.stderr());
    });
  }
});

Deno.test("runAdmin() prints help for a noun and a verb", async () => {
  const noun = fakeIo();
  assert.equal(await runAdmin(["group", "--help"], noun.io), 0);
  assert.match(noun.stdout(), /reset-offsets .*\n.*--to-earliest \| --to-latest/);
  const verb = fakeIo();
  assert.equal(await runAdmin(["consume", "--help"], verb.io), 0);
  assert.match(verb.stdout(), /--exit-at-end/);
  assert.match(verb.stdout(), /--bootstrap HOST:PORT/);
});

Deno.test("runAdmin() reports an unreachable cluster in one line with exit code 1", async () => {
  const port = freePort();
  const f = fakeIo({ TIDELOG_BOOTSTRAP: `127.0.0.1:${port}` });
  assert.equal(await runAdmin(["topic", "list"], f.io), 1);
  assert.equal(
    f.stderr(),
    `tidelog: topic list: cannot connect to the cluster (127.0.0.1:${port}: connection refused)\n`,
  );
});

Deno.test("compileFormat() renders placeholders and escapes", () => {
  const enc = new TextEncoder();
  const record = {
    partition: 2,
    offset: 17,
    timestampMs: 1_700_000_000_123,
    key: enc.encode("k"),
    value: null,
    headers: [{ key: "h1", value: enc.encode("x") }, { key: "h2", value: null }],
  };
  assert.equal(
    compileFormat("%p/%o\\t%k=%v %t [%h] 100%%").render(record),
    "2/17\tk= 1700000000123 [h1=x,h2=] 100%\n",
  );
});
