"""Idempotent confluent-kafka (librdkafka) producer against a Tidelog node; prints one JSON summary.

Usage: idempotent_producer.py BOOTSTRAP TOPIC N
Creates TOPIC (2 partitions), then produces N keyed records ("k<i>" -> "v<i>", key i to
partition i % 2) with enable.idempotence=true and small batches, so several Produce
requests are in flight when the test's proxy cuts a connection. Reports every delivery
(partition, offset) or error; the caller checks the log for duplicates and gaps.
"""
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

admin = AdminClient({"bootstrap.servers": bootstrap})
for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
    f.result()

delivered = {}
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(f"{msg.key().decode()}: {err}")
    else:
        delivered[msg.key().decode()] = [msg.partition(), msg.offset()]


fatal = []


def on_error(err):
    # Connection drops are expected (the proxy cuts them); only fatal errors fail the run.
    if err.fatal():
        fatal.append(str(err))


p = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "compression.type": "none",
    "linger.ms": 2,
    "batch.num.messages": 25,
    "retry.backoff.ms": 50,
    "reconnect.backoff.ms": 50,
    "message.timeout.ms": 60000,
    "error_cb": on_error,
})
for i in range(n):
    p.produce(topic, key=f"k{i}", value=f"v{i}", partition=i % 2, on_delivery=on_delivery)
    p.poll(0)
remaining = p.flush(90)

print(json.dumps({
    "delivered": delivered,
    "errors": errors,
    "fatal": fatal,
    "undelivered": remaining,
}))
