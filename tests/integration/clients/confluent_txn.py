"""Transactions with confluent-kafka (librdkafka): one scenario per mode, a JSON line out.

Usage: confluent_txn.py BOOTSTRAP MODE [ARGS...]
  basic TOPIC               commit 30 records over 3 partitions, abort 30, commit 3; read both
                            isolation levels
  pipeline IN OUT GROUP N   produce N records to IN, then copy IN to OUT in transactions of 50
                            with the consumer's offsets sent to each transaction
                            (consume-transform-produce), aborting every 4th transaction once
  fencing TOPIC             a second producer with the same transactional id fences the first
  timeout TOPIC             a transaction left open past transaction.timeout.ms is aborted
  read TOPIC ISOLATION [P]  every value of TOPIC (P partitions, default 3) at the isolation level
  held TOPIC P TAG          a transaction writing 20 records to each of P partitions; prints
                            "produced", then waits for a line on stdin ("commit" or "abort")
                            before ending it (the test breaks the cluster meanwhile)
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
mode = sys.argv[2]
args = sys.argv[3:]


def create(topic, partitions=3):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        try:
            f.result()
        except KafkaException as e:
            if e.args[0].code() != 36:  # TOPIC_ALREADY_EXISTS
                raise


def producer(txn_id, **extra):
    conf = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    return Producer(conf)


def read(topic, isolation, partitions=3):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"reader-{time.time()}",
        "auto.offset.reset": "earliest",
        "isolation.level": isolation,
        "enable.partition.eof": True,
        "enable.auto.commit": False,
    })
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, eof = [], set()
    deadline = time.time() + 30
    while len(eof) < partitions and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            raise KafkaException(m.error())
        values.append(m.value().decode())
    c.close()
    return values


def basic(topic):
    create(topic)
    p = producer("txn-basic")
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, key=str(i), value=f"commit-{i}", partition=i % 3)
    p.commit_transaction(30)
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, key=str(i), value=f"abort-{i}", partition=i % 3)
    p.flush()
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, key=str(i), value=f"commit2-{i}", partition=i)
    p.commit_transaction(30)
    return {
        "read_committed": sorted(read(topic, "read_committed")),
        "read_uncommitted": sorted(read(topic, "read_uncommitted")),
    }


def pipeline(src, dst, group, n):
    create(src)
    create(dst)
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        plain.produce(src, value=str(i), partition=i % 3)
    plain.flush(30)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    })
    consumer.subscribe([src])
    p = producer("txn-pipeline")
    p.init_transactions(30)
    copied, batch, txns, aborted = 0, [], 0, 0
    deadline = time.time() + 120
    while copied < n and time.time() < deadline:
        for m in consumer.consume(50, 1):
            if m.error():
                raise KafkaException(m.error())
            batch.append(m)
        if len(batch) < 50 and copied + len(batch) < n:
            continue
        if not batch:
            continue
        p.begin_transaction()
        for m in batch:
            p.produce(dst, value=f"copy-{m.value().decode()}", partition=m.partition())
        p.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
        txns += 1
        if txns % 4 == 0 and aborted == 0:
            # Abort once: the consumer rewinds to the committed offsets and copies again.
            p.abort_transaction(30)
            aborted += 1
            committed = consumer.committed(consumer.assignment(), 30)
            for tp in committed:
                consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))
            batch = []
            continue
        p.commit_transaction(30)
        copied += len(batch)
        batch = []
    committed = consumer.committed([TopicPartition(src, i) for i in range(3)], 30)
    consumer.close()
    return {
        "copied": copied,
        "transactions": txns,
        "aborted": aborted,
        "committed": sum(tp.offset for tp in committed if tp.offset > 0),
        "output": sorted(read(dst, "read_committed")),
    }


def fencing(topic):
    create(topic)
    first = producer("txn-zombie")
    first.init_transactions(30)
    first.begin_transaction()
    for i in range(10):
        first.produce(topic, value=f"zombie-{i}", partition=i % 3)
    first.flush()
    second = producer("txn-zombie")
    second.init_transactions(30)  # fences the first, aborting its open transaction
    error = None
    try:
        first.commit_transaction(30)
    except KafkaException as e:
        error = e.args[0].name()
    second.begin_transaction()
    for i in range(5):
        second.produce(topic, value=f"live-{i}", partition=i % 3)
    second.commit_transaction(30)
    return {"first_commit_error": error, "read_committed": sorted(read(topic, "read_committed"))}


def timeout(topic):
    create(topic)
    p = producer("txn-timeout", **{"transaction.timeout.ms": 2000})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(6):
        p.produce(topic, value=f"late-{i}", partition=i % 3)
    p.flush()
    time.sleep(4)
    error = None
    try:
        p.commit_transaction(30)
    except KafkaException as e:
        error = e.args[0].name()
    return {"commit_error": error, "read_committed": sorted(read(topic, "read_committed"))}


def held(topic, partitions, tag):
    p = producer(f"txn-held-{tag}", **{"transaction.timeout.ms": 60000})
    p.init_transactions(60)
    p.begin_transaction()
    for i in range(20 * partitions):
        p.produce(topic, value=f"{tag}-{i}", partition=i % partitions)
    p.flush(60)
    print("produced", flush=True)
    command = sys.stdin.readline().strip()
    error = None
    try:
        if command == "commit":
            p.commit_transaction(60)
        else:
            p.abort_transaction(60)
    except KafkaException as e:
        error = e.args[0].name()
    return {"error": error}


if mode == "basic":
    out = basic(args[0])
elif mode == "pipeline":
    out = pipeline(args[0], args[1], args[2], int(args[3]))
elif mode == "fencing":
    out = fencing(args[0])
elif mode == "timeout":
    out = timeout(args[0])
elif mode == "read":
    out = sorted(read(args[0], args[1], int(args[2]) if len(args) > 2 else 3))
elif mode == "held":
    out = held(args[0], int(args[1]), args[2])
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(out))
