"""Compacted-topic round trip with confluent-kafka (librdkafka).

usage: confluent_compaction.py BOOTSTRAP TOPIC KEYS VERSIONS CODEC [produce|check]

produce: creates TOPIC (compact, small segments, eager cleaning), writes KEYS keys x
VERSIONS versions (every 10th key's last version is a tombstone) with CODEC compression,
checks that a record without a key is refused, then rolls the active segment with a marker
record; prints {"latest": {key: [offset, value|null]}, "null_key_error": ...} as JSON.

check: reads the partition from the beginning and prints every record as
[offset, key, value|null] (JSON), so the caller can compare with the latest values.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, keys, versions, codec, mode = sys.argv[1:7]
keys, versions = int(keys), int(versions)


def produce():
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={
        "cleanup.policy": "compact",
        "segment.bytes": "65536",
        "segment.ms": "1000",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "86400000",
    })])
    for f in fs.values():
        f.result()
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "compression.type": codec})
    latest = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(str(err))
            return
        k = msg.key().decode()
        v = msg.value()
        if k not in latest or latest[k][0] < msg.offset():
            latest[k] = [msg.offset(), None if v is None else v.decode()]

    for version in range(versions):
        for k in range(keys):
            tombstone = version == versions - 1 and k % 10 == 0
            value = None if tombstone else f"value-{k}-{version}-" + "x" * 40
            p.produce(topic, key=f"key-{k}", value=value, on_delivery=report)
            p.poll(0)
    p.flush(60)
    # A record without a key is refused (INVALID_RECORD) on a compacted topic.
    null_key = []
    p.produce(topic, value=b"no key", on_delivery=lambda err, msg: null_key.append(
        None if err is None else err.name()))
    p.flush(30)
    # segment.ms=1000: the next append rolls the active segment, making the rest cleanable.
    time.sleep(1.2)
    p.produce(topic, key="marker", value="end", on_delivery=report)
    p.flush(30)
    print(json.dumps({"latest": latest, "errors": errors, "null_key_error": null_key[0]}))


def check():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-check",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    while True:
        msg = c.poll(10)
        if msg is None:
            raise SystemExit("timed out reading the topic")
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                break
            raise KafkaException(msg.error())
        v = msg.value()
        out.append([msg.offset(), msg.key().decode(), None if v is None else v.decode()])
    c.close()
    print(json.dumps(out))


produce() if mode == "produce" else check()
