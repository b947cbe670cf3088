package dev.tidelog.interop;

import static dev.tidelog.interop.Util.check;

import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.utils.Utils;

/**
 * A producer with the defaults (idempotent, acks=all) sends keyed records with headers to
 * a fresh topic of several partitions, first one {@code send().get()} at a time, then many
 * in flight at once; an assign-only consumer reads the topic back, and every record must
 * be at the (partition, offset) its send returned, with its key, value, headers and
 * timestamp.
 *
 * <p>Args: bootstrap topic partitions [compression.type]
 */
public final class ProducerConsumer {
  private static final int ONE_AT_A_TIME = 200;
  private static final int PIPELINED = 3000;
  private static final long BASE_TIME = 1_700_000_000_000L;

  record Sent(int seq, ProducerRecord<String, String> record, RecordMetadata md) {}

  public static void main(String[] args) {
    Util.main("ProducerConsumer", () -> run(args[0], args[1], Integer.parseInt(args[2]),
        args.length > 3 ? args[3] : null));
  }

  /** Record {@code i}: keys repeat, some values are null, empty or large, headers vary. */
  static ProducerRecord<String, String> record(String topic, int partitions, int i) {
    String key = "key-" + (i % 40);
    String value = i % 13 == 0 ? null
        : i % 11 == 0 ? ""
        : i % 500 == 7 ? "big-" + i + "-" + "x".repeat(200_000)
        : "value-" + i + "-" + "y".repeat(i % 300);
    Integer partition = i % 10 == 3 ? i % partitions : null;
    Long timestamp = i % 5 == 0 ? BASE_TIME + i : null;
    List<Header> headers = new ArrayList<>();
    if (i % 4 >= 1) headers.add(new RecordHeader("seq", bytes(Integer.toString(i))));
    if (i % 4 >= 2) {
      headers.add(new RecordHeader("dup", bytes("first")));
      headers.add(new RecordHeader("dup", bytes("second")));
      headers.add(new RecordHeader("null-value", null));
    }
    if (i % 4 == 3) {
      byte[] all = new byte[256];
      for (int b = 0; b < 256; b++) all[b] = (byte) b;
      headers.add(new RecordHeader("binary", all));
      headers.add(new RecordHeader("empty", new byte[0]));
      headers.add(new RecordHeader("ünïcødé", bytes("välue")));
    }
    return new ProducerRecord<>(topic, partition, timestamp, key, value, headers);
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static Map<String, Object> run(String bootstrap, String topic, int partitions,
      String compression) throws Exception {
    Properties pp = Util.producerProps(bootstrap, "pc-producer");
    if (compression != null) pp.put("compression.type", compression);
    List<Sent> sent = new ArrayList<>();
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
      for (int i = 0; i < ONE_AT_A_TIME; i++) {
        ProducerRecord<String, String> r = record(topic, partitions, i);
        sent.add(new Sent(i, r, producer.send(r).get()));
      }
      Util.log("sent %d records one at a time", ONE_AT_A_TIME);
      List<ProducerRecord<String, String>> records = new ArrayList<>();
      List<Future<RecordMetadata>> futures = new ArrayList<>();
      for (int i = ONE_AT_A_TIME; i < ONE_AT_A_TIME + PIPELINED; i++) {
        ProducerRecord<String, String> r = record(topic, partitions, i);
        records.add(r);
        futures.add(producer.send(r));
      }
      for (int k = 0; k < futures.size(); k++) {
        sent.add(new Sent(ONE_AT_A_TIME + k, records.get(k), futures.get(k).get()));
      }
      Util.log("sent %d records pipelined", PIPELINED);
    }

    // What the sends returned: the right partition, and per partition offsets 0..n-1 in
    // send order (idempotence keeps the order with 5 requests in flight).
    Map<String, Sent> byPosition = new HashMap<>();
    Map<Integer, Long> nextOffset = new TreeMap<>();
    for (Sent s : sent) {
      ProducerRecord<String, String> r = s.record;
      RecordMetadata md = s.md;
      int expected = r.partition() != null ? r.partition()
          : Utils.toPositive(Utils.murmur2(bytes(r.key()))) % partitions;
      check(md.topic().equals(topic) && md.partition() == expected,
          "record %d acknowledged on %s-%d, expected partition %d", s.seq, md.topic(),
          md.partition(), expected);
      long want = nextOffset.getOrDefault(md.partition(), 0L);
      check(md.hasOffset() && md.offset() == want,
          "record %d acknowledged at %d-%d, expected offset %d (offsets of a partition must"
              + " be 0, 1, 2, ... in send order)", s.seq, md.partition(), md.offset(), want);
      nextOffset.put(md.partition(), want + 1);
      if (r.timestamp() != null) {
        check(md.timestamp() == r.timestamp(), "record %d acknowledged with timestamp %d, sent %d",
            s.seq, md.timestamp(), r.timestamp());
      }
      byPosition.put(md.partition() + "@" + md.offset(), s);
    }
    check(nextOffset.size() == partitions, "records went to partitions %s of %d",
        nextOffset.keySet(), partitions);

    List<TopicPartition> tps = Util.partitions(topic, partitions);
    List<ConsumerRecord<String, String>> read = Util.readAll(bootstrap, tps, 60_000);
    Set<String> seen = new HashSet<>();
    for (ConsumerRecord<String, String> c : read) {
      String pos = c.partition() + "@" + c.offset();
      Sent s = byPosition.get(pos);
      check(s != null, "read a record at %s that no send returned", pos);
      check(seen.add(pos), "read %s twice", pos);
      ProducerRecord<String, String> r = s.record;
      check(Objects.equals(c.key(), r.key()), "%s (record %d): key %s, sent %s", pos, s.seq,
          c.key(), r.key());
      check(Objects.equals(c.value(), r.value()), "%s (record %d): value %s, sent %s", pos,
          s.seq, abbreviate(c.value()), abbreviate(r.value()));
      check(sameHeaders(c.headers().toArray(), r.headers().toArray()),
          "%s (record %d): headers %s, sent %s", pos, s.seq,
          Arrays.toString(c.headers().toArray()), Arrays.toString(r.headers().toArray()));
      check(c.timestampType() == TimestampType.CREATE_TIME && c.timestamp() == s.md.timestamp(),
          "%s (record %d): timestamp %s %d, acknowledged CreateTime %d", pos, s.seq,
          c.timestampType(), c.timestamp(), s.md.timestamp());
      check(c.leaderEpoch().isPresent(), "%s: no leader epoch in the fetched batch", pos);
    }
    check(read.size() == sent.size(), "read %d records, sent %d", read.size(), sent.size());
    Util.log("read back %d records, all as sent", read.size());

    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("compression", compression == null ? "none" : compression);
    summary.put("records", sent.size());
    summary.put("perPartition", nextOffset.values());
    return summary;
  }

  static boolean sameHeaders(Header[] a, Header[] b) {
    if (a.length != b.length) return false;
    for (int i = 0; i < a.length; i++) {
      if (!a[i].key().equals(b[i].key()) || !Arrays.equals(a[i].value(), b[i].value())) {
        return false;
      }
    }
    return true;
  }

  static String abbreviate(String s) {
    return s == null || s.length() <= 60 ? String.valueOf(s) : s.substring(0, 60) + "...";
  }
}
