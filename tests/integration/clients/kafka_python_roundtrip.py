"""kafka-python 2.0 round trip against a Tidelog node; prints one JSON summary.

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC GROUP
Creates TOPIC (3 partitions) with KafkaAdminClient, produces 3,000 keyed records with
headers (acks=all), consumes them in consumer group GROUP committing the offsets, then
produces 100 more and checks that a new consumer of GROUP gets exactly those 100.
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
admin.close()

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)


def produce(start, n):
    futures = [producer.send(topic, key=str(i).encode(), value=f"value-{i}".encode(), headers=[("i", str(i).encode())])
               for i in range(start, start + n)]
    producer.flush()
    return [f.get(timeout=10) for f in futures]


def consume(expected):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=10000, session_timeout_ms=6000,
                             heartbeat_interval_ms=500)
    got = {}
    bad = 0
    deadline = time.time() + 60
    for m in consumer:
        i = int(m.key.decode())
        got[i] = got.get(i, 0) + 1
        if m.value != f"value-{i}".encode() or dict(m.headers).get("i") != str(i).encode():
            bad += 1
        if len(got) >= expected or time.time() > deadline:
            break
    consumer.commit()
    consumer.close()
    return got, bad


acked = produce(0, 3000)
first, bad1 = consume(3000)
acked += produce(3000, 100)
second, bad2 = consume(100)
producer.close()
print(json.dumps({
    "acked": len(acked),
    "first": len(first), "first_dups": sum(1 for v in first.values() if v > 1),
    "second_keys": sorted(second)[:1] + sorted(second)[-1:], "second": len(second),
    "second_old": sum(1 for k in second if k < 3000), "bad": bad1 + bad2,
}))
