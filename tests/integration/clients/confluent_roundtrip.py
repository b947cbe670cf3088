"""confluent-kafka-python round trip against a Tidelog node; prints one JSON summary.

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC
Creates TOPIC (3 partitions) with the admin client, produces 10,000 keyed records with
headers and explicit timestamps (first half acks=1, second half acks=all), consumes them
back by assignment, and looks up offsets by timestamp. Exits non-zero on any error.
"""
import json
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
N = 10_000
BASE_TS = 1_700_000_000_000

admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
    f.result()
md = admin.list_topics(topic, timeout=10)
partitions = sorted(md.topics[topic].partitions)

def value(i):
    return bytes((i * 31 + j) % 256 for j in range(20 + i % 50))

acked = {}
errors = []

def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        acked[msg.key().decode()] = (msg.partition(), msg.offset())

for acks, lo, hi in (("1", 0, N // 2), ("all", N // 2, N)):
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5})
    for i in range(lo, hi):
        p.produce(topic, key=f"k{i}", value=value(i), headers=[("idx", str(i).encode()), ("empty", b"")],
                  timestamp=BASE_TS + i, on_delivery=on_delivery)
        p.poll(0)
    p.flush(30)

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False,
              "auto.offset.reset": "earliest"})
c.assign([TopicPartition(topic, p, 0) for p in partitions])
got = {}
mismatches = 0
eof = 0
while len(got) < N:
    m = c.poll(10)
    if m is None:
        break
    if m.error():
        raise KafkaException(m.error())
    i = int(m.key().decode()[1:])
    hdrs = dict(m.headers() or [])
    ok = (m.value() == value(i) and hdrs.get("idx") == str(i).encode() and hdrs.get("empty") == b""
          and m.timestamp()[1] == BASE_TS + i and acked.get(m.key().decode()) == (m.partition(), m.offset()))
    mismatches += 0 if ok else 1
    got[m.key().decode()] = True

# ListOffsets by timestamp: the first record at or after BASE_TS + 5000 in each partition.
lookups = c.offsets_for_times([TopicPartition(topic, p, BASE_TS + 5000) for p in partitions], timeout=10)
expected = {}
for key, (p, off) in acked.items():
    if int(key[1:]) >= 5000 and (p not in expected or off < expected[p]):
        expected[p] = off
ts_ok = all(tp.offset == expected.get(tp.partition, -1) for tp in lookups)
c.close()
print(json.dumps({"acked": len(acked), "errors": errors[:5], "consumed": len(got), "mismatches": mismatches,
                  "timestamp_lookup_ok": ts_ok, "partitions": len(partitions)}))
