"""Consumer-group round trip with confluent-kafka (librdkafka); prints one JSON summary.

Usage:
  confluent_group.py BOOTSTRAP TOPIC GROUP consume N
      Three consumers of GROUP subscribe to TOPIC (6 partitions, created here) and wait
      until the group has spread the partitions over all three. N/2 records are produced
      and shared between them; then c3 commits and leaves, its partitions move to c1 and
      c2, and the other N/2 records are produced and consumed. Consumers commit their
      positions on every revocation and before closing, so every record is delivered once.
  confluent_group.py BOOTSTRAP TOPIC GROUP resume M
      Produces M more records; a fresh consumer of GROUP must get exactly those M
      (it resumes from the committed offsets).
"""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, group, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
DEADLINE = time.time() + 150


def produce(start, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(start, start + n):
        p.produce(topic, key=str(i), value=f"v{i}".encode(),
                  on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
        if i % 1000 == 0:
            p.poll(0)
    p.flush(30)
    if errors:
        raise RuntimeError(f"produce errors: {errors[:3]}")


lock = threading.Lock()
received = {}  # key -> times delivered
per_consumer = {}
assigned = {}  # consumer -> number of partitions assigned now


class Member(threading.Thread):
    def __init__(self, name):
        super().__init__()
        self.name_ = name
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the main thread
            self.error = repr(e)

    def _run(self):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": self.name_,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000, "heartbeat.interval.ms": 300, "max.poll.interval.ms": 60000})

        def on_assign(consumer, partitions):
            with lock:
                assigned[self.name_] = len(partitions)

        def on_revoke(consumer, partitions):
            try:
                consumer.commit(asynchronous=False)
            except KafkaException:
                pass  # nothing consumed since the last commit
            with lock:
                assigned[self.name_] = 0

        c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
        mine = 0
        while not self.stop.is_set():
            m = c.poll(0.1)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            with lock:
                k = m.key().decode()
                received[k] = received.get(k, 0) + 1
            mine += 1
        try:
            c.commit(asynchronous=False)
        except KafkaException:
            pass
        c.close()  # revokes (committing again) and sends LeaveGroup
        with lock:
            per_consumer[self.name_] = mine


def wait_for(cond, what):
    while time.time() < DEADLINE:
        with lock:
            if cond():
                return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}: received={len(received)} assigned={assigned}")


if mode == "consume":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
    members = [Member(n) for n in ("c1", "c2", "c3")]
    for m in members:
        m.start()
    wait_for(lambda: len(assigned) == 3 and all(v > 0 for v in assigned.values()) and sum(assigned.values()) == 6,
             "three members sharing six partitions")
    half = count // 2
    produce(0, half)
    wait_for(lambda: len(received) >= half, "the first half")
    members[2].stop.set()
    members[2].join()
    wait_for(lambda: assigned.get("c1", 0) + assigned.get("c2", 0) == 6, "c3's partitions moving to c1 and c2")
    produce(half, count - half)
    wait_for(lambda: len(received) >= count, "the second half")
    for m in members[:2]:
        m.stop.set()
    for m in members[:2]:
        m.join()
    print(json.dumps({"received": len(received), "duplicates": sum(1 for v in received.values() if v > 1),
                      "consumers": per_consumer, "errors": [m.error for m in members if m.error]}))
else:
    produce(10_000_000, count)
    m = Member("c4")
    m.start()
    wait_for(lambda: len(received) >= count, "the new records")
    time.sleep(1)  # anything re-delivered would show up now
    m.stop.set()
    m.join()
    print(json.dumps({"received": len(received), "old": sum(1 for k in received if int(k) < 10_000_000),
                      "duplicates": sum(1 for v in received.values() if v > 1)}))
