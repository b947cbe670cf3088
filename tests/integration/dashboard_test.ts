/**
 * The dashboard page (issue 14 §1) in a real browser: Debian's chromium driven by
 * playwright-core. Against a 3-node cluster, the page that node 1 serves (reading nodes 2 and
 * 3 through `?peers=`) shows the three brokers with the controller and its Raft role, a
 * topic's partitions with the leaders Metadata reports, a group's lag going down to 0 as a
 * kafkajs consumer reads, live throughput, and a broker turning fenced after kill -9.
 * Screenshots go to a temp dir whose path is printed. In CI (CI=true) a missing chromium
 * fails the test (.ci/run installs it); elsewhere the test is skipped with a note.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { type Browser, chromium, type Page } from "playwright-core";
import { TestCluster } from "../_helpers/cluster.ts";

const IN_CI = Deno.env.get("CI") === "true";
/** Debian's chromium (`apt-get install chromium`); TIDELOG_CHROMIUM names another build. */
const CHROMIUM = Deno.env.get("TIDELOG_CHROMIUM") ?? "/usr/bin/chromium";

function haveChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const HAVE_CHROMIUM = haveChromium();
if (!HAVE_CHROMIUM && !IN_CI) {
  // deno-lint-ignore no-console -- tell the person running tests why one was skipped
  console.error(`Skipping: ${CHROMIUM} is not installed (CI installs it; see .ci/run)`);
}

/** An attribute of the first element `selector` matches; null while there is none. */
async function attr(page: Page, selector: string, name: string): Promise<string | null> {
  const el = await page.$(selector);
  return el === null ? null : await el.getAttribute(name);
}

/** The lag the page shows for `group`; null while the group is not on the page. */
async function shownLag(page: Page, group: string): Promise<number | null> {
  const v = await attr(page, `[data-group="${group}"] [data-lag]`, "data-value");
  return v === null ? null : Number(v);
}

Deno.test({
  name:
    "dashboard: brokers, a topic's partitions, a group's lag draining, throughput and a fenced broker, in chromium",
  ignore: !HAVE_CHROMIUM && !IN_CI,
  // playwright-core's pipe to the browser and kafkajs's sockets outlive a test step.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.ok(HAVE_CHROMIUM, `${CHROMIUM} is missing: apt-get install chromium (see .ci/run)`);
    await using cluster = await TestCluster.start({
      size: 3,
      http: true,
      args: ["--group-initial-rebalance-delay-ms", "0"],
    });
    await cluster.waitForBrokers(3);
    await cluster.createTopic("orders", 3, 3);
    await cluster.createTopic("ticks", 2, 2);
    const kafka = new Kafka({
      brokers: cluster.bootstrap().split(","),
      clientId: "dashboard-test",
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    const admin = kafka.admin();
    const consumer = kafka.consumer({ groupId: "dash", sessionTimeout: 10_000 });
    let browser: Browser | undefined;
    let ticking = true;
    let ticker: Promise<void> = Promise.resolve();
    let clientsOpen = true;
    const closeClients = async () => {
      if (!clientsOpen) return;
      clientsOpen = false;
      ticking = false;
      await ticker.catch(() => {});
      await consumer.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
      await admin.disconnect().catch(() => {});
    };
    try {
      await producer.connect();
      await admin.connect();
      const value = "v".repeat(100);
      for (let i = 0; i < 3; i++) {
        await producer.send({
          topic: "orders",
          messages: Array.from({ length: 300 }, (_, j) => ({ key: `${i}-${j}`, value })),
        });
      }
      // The group has committed where it is, without reading: its lag is everything.
      await admin.setOffsets({
        groupId: "dash",
        topic: "orders",
        partitions: [0, 1, 2].map((partition) => ({ partition, offset: "0" })),
      });
      // Steady traffic on another topic, for the throughput charts.
      ticker = (async () => {
        while (ticking) {
          await producer.send({
            topic: "ticks",
            messages: Array.from({ length: 20 }, (_, j) => ({ key: `${j}`, value })),
          });
          await new Promise((r) => setTimeout(r, 200));
        }
      })();

      browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      const pageErrors: string[] = [];
      page.on("pageerror", (err) => pageErrors.push(err.message));
      const port = (id: number) => cluster.node(id).httpPort!;
      const peers = [2, 3].map((id) => `127.0.0.1:${port(id)}`).join(",");
      await page.goto(`http://127.0.0.1:${port(1)}/?peers=${peers}`);

      // Three brokers, all up, one of them the controller and the Raft leader.
      const controller = await cluster.controllerId();
      await cluster.waitFor(
        "3 brokers up on the page",
        async () => {
          const states = await page.$$eval(
            "[data-broker] [data-status]",
            (els) => els.map((e) => e.getAttribute("data-status")),
          );
          return states.length === 3 && states.every((s) => s === "up");
        },
        30_000,
        200,
      );
      await cluster.waitFor(
        "the controller shown as the Raft leader",
        async () => {
          const role = await attr(
            page,
            `[data-broker="${controller}"] [data-raft-role]`,
            "data-raft-role",
          );
          const leaders = await page.$$(`[data-raft-role="leader"]`);
          return role === "leader" && leaders.length === 1;
        },
        30_000,
        200,
      );
      const controllerRow = await page.textContent(`[data-broker="${controller}"]`);
      assert.match(controllerRow ?? "", /controller/);

      // The topic's partitions, with the leaders Metadata reports.
      const leaders = await cluster.waitFor(
        "the 3 partitions of orders",
        async () => {
          const rows = await page.$$eval(
            `[data-topic="orders"] tr[data-partition]`,
            (els) =>
              els.map((e) => [e.getAttribute("data-partition"), e.getAttribute("data-leader")]),
          );
          return rows.length === 3 && rows.every(([, l]) => Number(l) >= 0) ? rows : null;
        },
        30_000,
        200,
      );
      for (const [partition, leader] of leaders) {
        const md = await cluster.leaderOf("orders", Number(partition));
        assert.equal(Number(leader), md.leader, `leader of orders-${partition}`);
      }

      // The group's lag: all 900 records, then down to 0 as a consumer reads them.
      await cluster.waitFor(
        "the group's lag of 900",
        async () => {
          return (await shownLag(page, "dash")) === 900;
        },
        30_000,
        200,
      );
      const lags: number[] = [900];
      let read = 0;
      let maxBytesOut = 0;
      await consumer.connect();
      await consumer.subscribe({ topic: "orders" });
      await consumer.run({
        eachMessage: async () => {
          read++;
          // Slow enough that the page shows the lag on its way down.
          await new Promise((r) => setTimeout(r, 3));
        },
      });
      await cluster.waitFor(
        "the group's lag to reach 0",
        async () => {
          const lag = await shownLag(page, "dash");
          if (lag !== null && lag !== lags.at(-1)) lags.push(lag);
          const out = Number(await attr(page, `[data-chart="bytes-out"] .now`, "data-value"));
          maxBytesOut = Math.max(maxBytesOut, out);
          return lag === 0;
        },
        60_000,
        100,
      );
      assert.ok(read >= 900, `read ${read} of 900 records`);
      for (let i = 1; i < lags.length; i++) {
        assert.ok(lags[i]! < lags[i - 1]!, `lag goes down: ${lags.join(" → ")}`);
      }
      // The reads leave as bytes out, the steady producer as bytes and messages in.
      await cluster.waitFor(
        "bytes out on the chart",
        async () => {
          const out = Number(await attr(page, `[data-chart="bytes-out"] .now`, "data-value"));
          maxBytesOut = Math.max(maxBytesOut, out);
          return maxBytesOut > 0;
        },
        30_000,
        200,
      );
      await cluster.waitFor(
        "bytes and messages in on the charts",
        async () => {
          const bytesIn = Number(await attr(page, `[data-chart="bytes-in"] .now`, "data-value"));
          const msgs = Number(await attr(page, `[data-chart="messages-in"] .now`, "data-value"));
          return bytesIn > 0 && msgs > 0;
        },
        30_000,
        200,
      );

      const shots = await Deno.makeTempDir({ prefix: "tidelog-dashboard-" });
      await page.screenshot({ path: join(shots, "running.png"), fullPage: true });
      // The clients leave while every broker is up: what follows is the page's alone (a
      // kafkajs consumer leaving a coordinator that was just killed can take minutes).
      await closeClients();

      // kill -9 of node 3: the controller fences it and the page says so.
      await cluster.kill(3);
      await cluster.waitFor(
        "broker 3 fenced on the page",
        async () => {
          return (await attr(page, `[data-broker="3"] [data-status]`, "data-status")) === "fenced";
        },
        30_000,
        200,
      );
      await cluster.waitFor(
        "2 of 3 brokers up",
        async () => {
          return (await attr(page, `[data-kpi="brokers"]`, "data-value")) === "2";
        },
        30_000,
        200,
      );
      await page.screenshot({ path: join(shots, "fenced.png"), fullPage: true });
      // deno-lint-ignore no-console -- where to look at the page
      console.error(
        `Dashboard screenshots: ${shots}/running.png, ${shots}/fenced.png; lag shown: ${
          lags.join(" → ")
        }`,
      );
      assert.deepEqual(pageErrors, []);
    } finally {
      await closeClients();
      await browser?.close();
    }
  },
});
