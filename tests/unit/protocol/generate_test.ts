import assert from "node:assert/strict";
import {
  camelCase,
  DEFINITIONS_DIR,
  generate,
  OUTPUT_DIR,
  parseVersions,
  stripJsonComments,
  structInterfaceName,
} from "../../../lib/protocol/_gen/generate.ts";
import { ApiKey, apiName, SCHEMAS, schemaVersionRange } from "../../../lib/protocol/mod.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("generated files are up to date with ../shared/kafka-protocol", async (t) => {
  const dir = `${ROOT}${DEFINITIONS_DIR}`;
  if (!exists(dir)) {
    // deno-lint-ignore no-console
    console.warn(`Skipping the staleness check: ${DEFINITIONS_DIR} is absent`);
    return;
  }
  const files = generate(dir);
  for (const [name, content] of files) {
    await t.step(name, () => {
      const committed = Deno.readTextFileSync(`${ROOT}${OUTPUT_DIR}/${name}`);
      assert.ok(
        committed === content,
        `${OUTPUT_DIR}/${name} is stale: run \`deno task gen\` and commit the result`,
      );
    });
  }
  await t.step("generation is deterministic", () => {
    assert.deepStrictEqual(generate(dir), files);
  });
});

Deno.test("generated files start with the DO NOT EDIT header", () => {
  for (const name of ["schemas.ts", "types.ts", "api_keys.ts"]) {
    const text = Deno.readTextFileSync(`${ROOT}${OUTPUT_DIR}/${name}`);
    assert.match(text.slice(0, 300), /Generated .* DO NOT EDIT/s);
  }
});

Deno.test("generator helpers", async (t) => {
  await t.step("stripJsonComments() keeps // inside strings", () => {
    const text = '// head\n{ "a": "http://x", // tail\n "b": 1 }';
    assert.deepStrictEqual(JSON.parse(stripJsonComments(text)), { a: "http://x", b: 1 });
  });
  await t.step("parseVersions()", () => {
    assert.deepStrictEqual(parseVersions("3+"), [3, 0x7fff]);
    assert.deepStrictEqual(parseVersions("0-5"), [0, 5]);
    assert.deepStrictEqual(parseVersions("7"), [7, 7]);
    assert.equal(parseVersions("none"), null);
  });
  await t.step("camelCase()", () => {
    assert.equal(camelCase("ErrorCode"), "errorCode");
    assert.equal(camelCase("ThrottleTimeMs"), "throttleTimeMs");
  });
  await t.step("structInterfaceName()", () => {
    assert.equal(
      structInterfaceName("ProduceRequest", "TopicProduceData"),
      "ProduceRequestTopicProduceData",
    );
    assert.equal(
      structInterfaceName("MetadataResponse", "MetadataResponsePartition"),
      "MetadataResponsePartition",
    );
    assert.equal(
      structInterfaceName("AddPartitionsToTxnRequest", "AddPartitionsToTxnTopic"),
      "AddPartitionsToTxnRequestTopic",
    );
    assert.equal(
      structInterfaceName("FetchResponse", "FetchableTopicResponse"),
      "FetchResponseFetchableTopicResponse",
    );
  });
});

Deno.test("API table matches the schemas", () => {
  assert.equal(ApiKey.Produce, 0);
  assert.equal(ApiKey.Fetch, 1);
  assert.equal(ApiKey.ApiVersions, 18);
  assert.equal(ApiKey.DescribeCluster, 60);
  assert.equal(apiName(0), "Produce");
  assert.equal(apiName(18), "ApiVersions");
  assert.equal(apiName(9999), undefined);
  assert.deepStrictEqual(schemaVersionRange(ApiKey.Produce), { min: 0, max: 11 });
  assert.deepStrictEqual(schemaVersionRange(ApiKey.Metadata), { min: 0, max: 12 });
  assert.equal(schemaVersionRange(9999), undefined);
  for (const [name, key] of Object.entries(ApiKey)) {
    const req = SCHEMAS.find((s) => s.type === "request" && s.apiKey === key);
    const res = SCHEMAS.find((s) => s.type === "response" && s.apiKey === key);
    assert.equal(req?.name, `${name}Request`);
    assert.equal(res?.name, `${name}Response`);
    assert.deepStrictEqual(req?.validVersions, res?.validVersions, name);
  }
});
