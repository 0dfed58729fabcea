// RabbitMQ's Java client (Debian's librabbitmq-client-java) against a broker, doing what its
// applications do. Run with the JDK's source launcher:
//   java -cp /usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-nop.jar \
//        Roundtrip.java roundtrip PORT [TLS_PORT CA_FILE]   -> one JSON object with what it observed
//        Roundtrip.java blocked PORT QUEUE                  -> the lines of ../blocked-scenario.ts
// The vitest file compares the JSON with what RabbitMQ 3.10 gives for the same program.
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.FileInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class Roundtrip {
    static final String SUFFIX = UUID.randomUUID().toString().substring(0, 8);

    public static void main(String[] args) throws Exception {
        if (args[0].equals("blocked")) blocked(Integer.parseInt(args[1]), args[2]);
        else roundtrip(Integer.parseInt(args[1]), args.length > 2 ? Integer.parseInt(args[2]) : 0, args.length > 3 ? args[3] : null);
        System.exit(0);
    }

    static ConnectionFactory factory(int port, int heartbeat) {
        ConnectionFactory f = new ConnectionFactory();
        f.setHost("127.0.0.1");
        f.setPort(port);
        f.setUsername("guest");
        f.setPassword("guest");
        f.setRequestedHeartbeat(heartbeat);
        f.setAutomaticRecoveryEnabled(false);
        return f;
    }

    static void waitUntil(BooleanSupplier cond) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("condition not reached");
            Thread.sleep(5);
        }
    }

    static String body(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    static void roundtrip(int port, int tlsPort, String caFile) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        Connection conn = factory(port, 0).newConnection();
        Object product = conn.getServerProperties().get("product");
        out.put("server_product_known", List.of("RabbitMQ", "Warren").contains(String.valueOf(product)));

        // Publisher confirms on a direct exchange, with properties and headers.
        Channel ch = conn.createChannel();
        List<List<Object>> returned = new CopyOnWriteArrayList<>();
        ch.addReturnListener((code, text, exchange, key, props, b) -> returned.add(List.of(code, text, key)));
        ch.confirmSelect();
        String x = "java.direct." + SUFFIX;
        ch.exchangeDeclare(x, "direct", false, true, null);
        String q = ch.queueDeclare("java.q." + SUFFIX, false, false, false, null).getQueue();
        ch.queueBind(q, x, "work");
        for (int i = 0; i < 5; i++) {
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder().contentType("application/json").deliveryMode(2)
                .priority(i).correlationId("c" + i).headers(Map.of("attempt", i)).build();
            ch.basicPublish(x, "work", props, ("{\"n\":" + i + "}").getBytes(StandardCharsets.UTF_8));
        }
        out.put("confirmed", ch.waitForConfirms(5000));
        out.put("message_count", ch.queueDeclarePassive(q).getMessageCount());

        // basic.get, nack with requeue, the redelivery.
        GetResponse m = ch.basicGet(q, false);
        Map<String, Object> get = new LinkedHashMap<>();
        get.put("body", body(m.getBody()));
        get.put("headers", String.valueOf(m.getProps().getHeaders()));
        get.put("content_type", m.getProps().getContentType());
        get.put("correlation_id", m.getProps().getCorrelationId());
        get.put("priority", m.getProps().getPriority());
        get.put("delivery_mode", m.getProps().getDeliveryMode());
        get.put("redelivered", m.getEnvelope().isRedeliver());
        get.put("routing_key", m.getEnvelope().getRoutingKey());
        get.put("exchange", m.getEnvelope().getExchange().replace(SUFFIX, "SUFFIX"));
        get.put("message_count", m.getMessageCount());
        out.put("get", get);
        ch.basicNack(m.getEnvelope().getDeliveryTag(), false, true);
        GetResponse m2 = ch.basicGet(q, false);
        out.put("after_nack", List.of(body(m2.getBody()), m2.getEnvelope().isRedeliver()));
        ch.basicAck(m2.getEnvelope().getDeliveryTag(), false);

        // A consumer with prefetch 2 on its own channel: two unacked at a time, ack / reject / requeue.
        Channel cch = conn.createChannel();
        cch.basicQos(2);
        List<Envelope> seen = new CopyOnWriteArrayList<>();
        List<String> bodies = new CopyOnWriteArrayList<>();
        cch.basicConsume(q, false, new DefaultConsumer(cch) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] b) {
                seen.add(env);
                bodies.add(body(b));
            }
        });
        waitUntil(() -> seen.size() >= 2);
        Thread.sleep(300);
        out.put("prefetch_window", new ArrayList<>(bodies));
        cch.basicAck(seen.get(0).getDeliveryTag(), false);
        waitUntil(() -> seen.size() >= 3);
        cch.basicReject(seen.get(1).getDeliveryTag(), false);
        cch.basicReject(seen.get(2).getDeliveryTag(), true);
        waitUntil(() -> seen.size() >= 5);
        Thread.sleep(300);
        List<String> rest = new ArrayList<>();
        for (int i = 3; i < seen.size(); i++) rest.add(bodies.get(i) + (seen.get(i).isRedeliver() ? " redelivered" : ""));
        Collections.sort(rest);
        out.put("after_reject_requeue", rest);
        for (int i = 3; i < seen.size(); i++) cch.basicAck(seen.get(i).getDeliveryTag(), false);
        cch.close();
        out.put("left_in_queue", ch.queueDeclarePassive(q).getMessageCount());

        // Mandatory publish nobody can route: basic.return.
        ch.basicPublish(x, "nowhere", true, new AMQP.BasicProperties(), "lost".getBytes(StandardCharsets.UTF_8));
        ch.waitForConfirms(5000);
        waitUntil(() -> returned.size() == 1);
        out.put("returned", returned.get(0));

        // Passive declare of a missing queue: the channel closes with 404.
        try {
            conn.createChannel().queueDeclarePassive("java.missing." + SUFFIX);
            out.put("passive_missing", "no error");
        } catch (IOException e) {
            AMQP.Channel.Close close = (AMQP.Channel.Close) ((ShutdownSignalException) e.getCause()).getReason();
            out.put("passive_missing", List.of(close.getReplyCode(), close.getReplyText().replace(SUFFIX, "SUFFIX")));
        }

        // Consumer cancel notification when the queue is deleted under a consumer.
        Channel kch = conn.createChannel();
        String kq = kch.queueDeclare("java.cancel." + SUFFIX, false, false, false, null).getQueue();
        CountDownLatch cancelled = new CountDownLatch(1);
        String tag = kch.basicConsume(kq, true, new DefaultConsumer(kch) {
            @Override
            public void handleCancel(String consumerTag) {
                cancelled.countDown();
            }
        });
        conn.createChannel().queueDelete(kq);
        out.put("consumer_cancelled", cancelled.await(5, TimeUnit.SECONDS) && !tag.isEmpty());

        // Transactions.
        Channel tch = conn.createChannel();
        String tq = tch.queueDeclare("java.tx." + SUFFIX, false, false, false, null).getQueue();
        tch.txSelect();
        tch.basicPublish("", tq, null, "rolled back".getBytes(StandardCharsets.UTF_8));
        tch.txRollback();
        tch.basicPublish("", tq, null, "committed".getBytes(StandardCharsets.UTF_8));
        int beforeCommit = ch.queueDeclarePassive(tq).getMessageCount();
        tch.txCommit();
        String committed = body(ch.basicGet(tq, true).getBody());
        out.put("tx", List.of(beforeCommit, committed, ch.queueDeclarePassive(tq).getMessageCount()));
        ch.queueDelete(tq);
        ch.queueDelete(q);
        conn.close();

        // Heartbeats: 1 s negotiated; the connection outlives 3 s of quiet.
        Connection hb = factory(port, 1).newConnection();
        out.put("heartbeat_negotiated", hb.getHeartbeat());
        Thread.sleep(3000);
        Channel hch = hb.createChannel();
        String hq = hch.queueDeclare().getQueue();
        hch.basicPublish("", hq, null, "still here".getBytes(StandardCharsets.UTF_8));
        waitUntil(() -> {
            try {
                return hch.messageCount(hq) == 1;
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        });
        out.put("alive_after_idle", body(hch.basicGet(hq, true).getBody()));
        hb.close();

        // TLS, trusting the test CA.
        if (tlsPort != 0) {
            KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
            trust.load(null, null);
            try (FileInputStream in = new FileInputStream(caFile)) {
                trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            SSLContext ssl = SSLContext.getInstance("TLSv1.2");
            ssl.init(null, tmf.getTrustManagers(), null);
            ConnectionFactory tf = factory(tlsPort, 0);
            tf.useSslProtocol(ssl);
            Connection tls = tf.newConnection();
            Channel tlsCh = tls.createChannel();
            String tlsQ = tlsCh.queueDeclare().getQueue();
            tlsCh.basicPublish("", tlsQ, null, "over tls".getBytes(StandardCharsets.UTF_8));
            waitUntil(() -> {
                try {
                    return tlsCh.messageCount(tlsQ) == 1;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            out.put("tls", body(tlsCh.basicGet(tlsQ, true).getBody()));
            tls.close();
        }
        System.out.println(json(out));
    }

    static void blocked(int port, String queue) throws Exception {
        Connection conn = factory(port, 0).newConnection();
        CountDownLatch unblocked = new CountDownLatch(1);
        conn.addBlockedListener(reason -> System.out.println("BLOCKED " + reason), () -> {
            System.out.println("UNBLOCKED");
            unblocked.countDown();
        });
        Channel ch = conn.createChannel();
        ch.queueDeclare(queue, true, false, false, null);
        System.out.println("READY");
        ch.basicPublish("", queue, new AMQP.BasicProperties.Builder().deliveryMode(2).build(), "held".getBytes(StandardCharsets.UTF_8));
        if (!unblocked.await(30, TimeUnit.SECONDS)) throw new IllegalStateException("never unblocked");
        ch.confirmSelect();
        ch.basicPublish("", queue, new AMQP.BasicProperties.Builder().deliveryMode(2).build(), "after".getBytes(StandardCharsets.UTF_8));
        ch.waitForConfirmsOrDie(5000);
        System.out.println("CONFIRMED");
        for (int i = 0; i < 2; i++) {
            GetResponse r = ch.basicGet(queue, true);
            System.out.println("GOT " + (r == null ? "nothing" : body(r.getBody())));
        }
        ch.queueDelete(queue);
        conn.close();
    }

    /** Minimal JSON for maps, lists, strings, numbers and booleans (no library on the class path). */
    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof String s) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : s.toCharArray()) {
                if (c == '"' || c == '\\') b.append('\\').append(c);
                else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                else b.append(c);
            }
            return b.append('"').toString();
        }
        if (v instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<?, ?> e : m.entrySet()) parts.add(json(String.valueOf(e.getKey())) + ":" + json(e.getValue()));
            return "{" + String.join(",", parts) + "}";
        }
        if (v instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            for (Object o : l) parts.add(json(o));
            return "[" + String.join(",", parts) + "]";
        }
        return String.valueOf(v);
    }
}
