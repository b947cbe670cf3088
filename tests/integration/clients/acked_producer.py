"""Produces numbered records with acks=all until killed or the broker goes away.

Usage: acked_producer.py BOOTSTRAP TOPIC
Prints "ACK <n> <partition> <offset>" for every acknowledged record, flushed at once, so
a test can kill the broker mid-stream and later check that every acknowledged record
survived. Exits once deliveries fail for longer than the message timeout.
"""
import sys

from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
failed = 0

def on_delivery(err, msg):
    global failed
    if err is not None:
        failed += 1
    else:
        sys.stdout.write(f"ACK {msg.key().decode()} {msg.partition()} {msg.offset()}\n")
        sys.stdout.flush()

p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1, "message.timeout.ms": 4000,
              "retries": 0, "enable.idempotence": False})
i = 0
while failed == 0:
    try:
        p.produce(topic, key=str(i), value=f"value-{i}".encode(), on_delivery=on_delivery)
        i += 1
    except BufferError:
        pass
    p.poll(0.0005 if i % 50 == 0 else 0)
p.flush(10)
