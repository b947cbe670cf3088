import assert from "node:assert/strict";
import { highWatermark } from "../../../lib/replication/mod.ts";

Deno.test("highWatermark() is the min durable end over the ISR, never moving back", async (t) => {
  const cases: {
    name: string;
    leader: number;
    isr: number[];
    followers: [number, number][];
    current: number;
    hw: number;
  }[] = [
    {
      name: "leader alone: its durable end",
      leader: 10,
      isr: [1],
      followers: [],
      current: 4,
      hw: 10,
    },
    {
      name: "the slowest ISR follower bounds it",
      leader: 10,
      isr: [1, 2, 3],
      followers: [[2, 8], [3, 6]],
      current: 4,
      hw: 6,
    },
    {
      name: "the leader's durable end bounds it",
      leader: 5,
      isr: [1, 2],
      followers: [[2, 9]],
      current: 4,
      hw: 5,
    },
    {
      name: "followers outside the ISR do not count",
      leader: 10,
      isr: [1, 2],
      followers: [[2, 9], [3, 0]],
      current: 4,
      hw: 9,
    },
    {
      name: "never below the current HW (I4), e.g. after the ISR grew",
      leader: 10,
      isr: [1, 2, 3],
      followers: [[2, 9], [3, 3]],
      current: 7,
      hw: 7,
    },
    {
      name: "an ISR follower not heard from yet holds it",
      leader: 10,
      isr: [1, 2, 3],
      followers: [[2, 9]],
      current: 7,
      hw: 7,
    },
    {
      name: "the leader id may be absent from the ISR list",
      leader: 10,
      isr: [2],
      followers: [[2, 8]],
      current: 0,
      hw: 8,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.equal(
        highWatermark({
          leaderDurableEnd: c.leader,
          leaderId: 1,
          isr: c.isr,
          followerDurableEnds: new Map(c.followers),
          currentHw: c.current,
        }),
        c.hw,
      );
    });
  }
});
