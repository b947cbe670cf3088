import assert from "node:assert/strict";
import { type HttpSources, type JsonViews, route } from "../../../lib/http/mod.ts";

/** Views that echo what they were asked, so the routing is what the tests see. */
function fakeViews(calls: string[]): JsonViews {
  return {
    cluster: () => (calls.push("cluster"), { nodeId: 1 }),
    brokers: () => (calls.push("brokers"), { brokers: [] }),
    topics: () => (calls.push("topics"), { topics: [] }),
    topic: (name) => {
      calls.push(`topic:${name}`);
      return name === "t"
        ? { kind: "ok", body: { name } }
        : { kind: "notFound", body: { error: `Unknown topic ${name}` } };
    },
    groups: () => (calls.push("groups"), { groups: [] }),
    group: (id) => {
      calls.push(`group:${id}`);
      return id === "loading"
        ? { kind: "unavailable", body: { error: "loading" } }
        : { kind: "notFound", body: { error: "elsewhere" } };
    },
    throughput: () => (calls.push("throughput"), { bytesIn: 0 }),
  };
}

function sources(views: JsonViews | undefined): HttpSources {
  return {
    notReadyReason: () => (views === undefined ? "starting: recovering logs" : null),
    metrics: () => "up 1\n",
    views: () => views,
  };
}

const get = (path: string, method = "GET") =>
  new Request(`http://127.0.0.1:9644${path}`, { method });

Deno.test("route(): /v1/ paths reach their view and answer JSON that any page may read", async () => {
  const calls: string[] = [];
  const s = sources(fakeViews(calls));
  for (const path of ["cluster", "brokers", "topics", "groups", "throughput"]) {
    const res = route(get(`/v1/${path}`), s);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    await res.json();
  }
  assert.deepEqual(calls, ["cluster", "brokers", "topics", "groups", "throughput"]);
});

Deno.test("route(): a topic or group key is the rest of the path, percent-decoded", async () => {
  const calls: string[] = [];
  const s = sources(fakeViews(calls));
  const ok = route(get("/v1/topics/t"), s);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { name: "t" });
  const missing = route(get("/v1/topics/nope"), s);
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: "Unknown topic nope" });
  const elsewhere = route(get("/v1/groups/a%2Fb/c%20d"), s);
  assert.equal(elsewhere.status, 404);
  await elsewhere.body?.cancel();
  const loading = route(get("/v1/groups/loading"), s);
  assert.equal(loading.status, 503);
  await loading.body?.cancel();
  assert.deepEqual(calls, ["topic:t", "topic:nope", "group:a/b/c d", "group:loading"]);
});

Deno.test("route(): unknown API paths, empty keys and bad escapes are 404s", async () => {
  const calls: string[] = [];
  const s = sources(fakeViews(calls));
  for (const path of ["/v1/nope", "/v1/topics/", "/v1/groups/%E0%A4%A", "/v1/", "/v1/cluster/x"]) {
    const res = route(get(path), s);
    assert.equal(res.status, 404, path);
    assert.match((await res.json()).error, /Not found/);
  }
  assert.deepEqual(calls, []);
});

Deno.test("route(): the JSON API answers 503 with the reason while the node starts", async () => {
  const res = route(get("/v1/cluster"), sources(undefined));
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { error: "starting: recovering logs" });
});

Deno.test("route(): / serves the self-contained dashboard page", async () => {
  const res = route(get("/"), sources(undefined));
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  const html = await res.text();
  assert.match(html, /<title>Tidelog<\/title>/);
  // Nothing from outside the cluster: no external scripts, styles or fonts.
  assert.doesNotMatch(html, /<(script|link)[^>]+(src|href)=["']?https?:/i);
  assert.doesNotMatch(html, /@import|url\(["']?https?:/i);
});

Deno.test("route(): /metrics may be read by any page; other methods are refused", async () => {
  const s = sources(undefined);
  const metrics = route(get("/metrics"), s);
  assert.equal(metrics.headers.get("access-control-allow-origin"), "*");
  assert.equal(await metrics.text(), "up 1\n");
  const post = route(get("/v1/cluster", "POST"), s);
  assert.equal(post.status, 405);
  await post.body?.cancel();
});
