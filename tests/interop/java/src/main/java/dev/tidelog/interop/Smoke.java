package dev.tidelog.interop;

import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.serialization.*;

/** Quick smoke: admin describeCluster, create topic, produce with defaults, consume. */
public class Smoke {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    try (Admin admin = Admin.create(p)) {
      System.out.println("cluster " + admin.describeCluster().nodes().get());
      admin.createTopics(List.of(new NewTopic("smoke", 3, (short) 1))).all().get();
    }
    Properties pp = new Properties();
    pp.putAll(p);
    pp.put("key.serializer", StringSerializer.class.getName());
    pp.put("value.serializer", StringSerializer.class.getName());
    try (KafkaProducer<String, String> prod = new KafkaProducer<>(pp)) {
      for (int i = 0; i < 10; i++) {
        RecordMetadata md = prod.send(new ProducerRecord<>("smoke", "k" + i, "v" + i)).get();
        System.out.println("sent " + md);
      }
    }
    Properties cp = new Properties();
    cp.putAll(p);
    cp.put("group.id", "smoke-g");
    cp.put("auto.offset.reset", "earliest");
    cp.put("key.deserializer", StringDeserializer.class.getName());
    cp.put("value.deserializer", StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp)) {
      c.subscribe(List.of("smoke"));
      int n = 0;
      long end = System.currentTimeMillis() + 30000;
      while (n < 10 && System.currentTimeMillis() < end) {
        for (ConsumerRecord<String, String> r : c.poll(java.time.Duration.ofMillis(500))) { n++; System.out.println("got " + r.partition() + "@" + r.offset() + " " + r.key()); }
      }
      c.commitSync();
      System.out.println("consumed " + n);
    }
  }
}
