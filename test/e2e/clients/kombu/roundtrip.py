# Debian's python3-kombu (with its py-amqp transport, what Celery uses) against a broker, doing what
# kombu applications do. Prints one JSON object with what it observed; the vitest file compares it
# with what RabbitMQ 3.10 gives for the same script.
# Usage: /usr/bin/python3 roundtrip.py PORT
import json
import socket
import sys
import time
import uuid

import amqp
from kombu import Connection, Consumer, Exchange, Producer, Queue

port = int(sys.argv[1])
url = f"amqp://guest:guest@127.0.0.1:{port}//"
suffix = uuid.uuid4().hex[:8]
out = {}


def drain(conn, until, timeout=5.0):
    """drain_events until until() holds; raises if it does not within timeout seconds."""
    deadline = time.monotonic() + timeout
    while not until():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("condition not reached")
        try:
            conn.drain_events(timeout=min(left, 0.2))
        except socket.timeout:
            pass


def quiet(conn, seconds=0.3):
    """Reads whatever arrives for a moment (to show that nothing more does)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn.drain_events(timeout=0.05)
        except socket.timeout:
            pass


# Publisher confirms (kombu's confirm_publish waits for each basic.ack), direct exchange, headers.
with Connection(url, heartbeat=0, transport_options={"confirm_publish": True}) as conn:
    conn.connect()
    product = conn.connection.server_properties.get("product")
    out["server_product_known"] = product in ("RabbitMQ", "Warren")
    out["client_capabilities"] = sorted(k for k, v in conn.connection.client_properties["capabilities"].items() if v)
    exchange = Exchange(f"kombu.direct.{suffix}", type="direct", durable=False, auto_delete=True)
    queue = Queue(f"kombu.q.{suffix}", exchange=exchange, routing_key="work", durable=False, auto_delete=False)
    channel = conn.channel()
    producer = Producer(channel, exchange=exchange, serializer="json")
    queue(channel).declare()
    for i in range(5):
        producer.publish({"n": i}, routing_key="work", headers={"attempt": i}, priority=i, correlation_id=f"c{i}")
    out["declared_count"] = queue(channel).queue_declare(passive=True).message_count

    # basic.get: decode, headers, properties; reject with requeue shows a redelivery.
    bound = queue(channel)
    m = bound.get(no_ack=False)
    out["get"] = {
        "payload": m.decode(),
        "headers": m.headers,
        "content_type": m.content_type,
        "correlation_id": m.properties.get("correlation_id"),
        "priority": m.properties.get("priority"),
        "redelivered": m.delivery_info["redelivered"],
        "routing_key": m.delivery_info["routing_key"],
    }
    m.requeue()
    again = bound.get(no_ack=False)
    out["requeued_get"] = {"payload": again.decode(), "redelivered": again.delivery_info["redelivered"]}
    again.ack()

    # Consumer with prefetch 2: exactly two unacked at a time; ack, reject (to nowhere), requeue.
    consuming = conn.channel()
    seen = []
    consumer = Consumer(consuming, queues=[queue], callbacks=[lambda body, msg: seen.append((body["n"], msg))])
    consumer.qos(prefetch_count=2)
    consumer.consume()
    drain(conn, lambda: len(seen) >= 2)
    quiet(conn)
    out["prefetch_window"] = [n for n, _ in seen]
    seen[0][1].ack()
    drain(conn, lambda: len(seen) >= 3)
    quiet(conn)
    out["after_one_ack"] = [n for n, _ in seen]
    seen[1][1].reject(requeue=False)
    seen[2][1].requeue()
    drain(conn, lambda: len(seen) >= 5)
    quiet(conn)
    # Sorted: whether the requeued 3 or the waiting 4 comes first depends on whether the broker
    # dispatches between the reject and the requeue (RabbitMQ and Warren may differ; AMQP allows both).
    out["after_reject_requeue"] = sorted((n, msg.delivery_info["redelivered"]) for n, msg in seen[3:])
    for _, msg in seen[3:]:
        msg.ack()
    quiet(conn)
    out["consumed"] = sorted(n for n, _ in seen)
    consumer.cancel()
    out["left_in_queue"] = queue(channel).queue_declare(passive=True).message_count

    # Unroutable mandatory publish comes back as basic.return; kombu raises nothing, py-amqp calls back.
    returned = []
    channel.events["basic_return"].add(lambda exc, ex, rk, msg: returned.append((exc.reply_code, exc.reply_text, rk)))
    producer.publish({"n": "lost"}, routing_key="nowhere", mandatory=True)
    drain(conn, lambda: len(returned) == 1)
    out["returned"] = list(returned[0])

    # Passive declare of a missing queue: the channel closes with 404.
    try:
        Queue(f"kombu.missing.{suffix}")(conn.channel()).queue_declare(passive=True)
        out["passive_missing"] = "no error"
    except amqp.exceptions.NotFound as e:
        out["passive_missing"] = [e.reply_code, e.reply_text.replace(suffix, "SUFFIX")]

    # Consumer cancel notification: the queue is deleted under a consumer.
    cq = Queue(f"kombu.cancel.{suffix}", durable=False, auto_delete=False)
    cchan = conn.channel()
    cq(cchan).declare()
    Consumer(cchan, queues=[cq], callbacks=[lambda body, msg: None]).consume()
    try:
        conn.channel().queue_delete(cq.name)
        drain(conn, lambda: False, timeout=2)
        out["consumer_cancelled"] = "no notification"
    except amqp.exceptions.ConsumerCancelled as e:
        out["consumer_cancelled"] = type(e).__name__

    queue(conn.channel()).delete()

# Transactions on py-amqp's channel (kombu exposes the transport channel).
with Connection(url, heartbeat=0) as conn:
    ch = conn.channel()
    tq = Queue(f"kombu.tx.{suffix}", durable=False, auto_delete=False)
    tq(ch).declare()
    tx = conn.channel()
    tx.tx_select()
    Producer(tx).publish("rolled back", routing_key=tq.name)
    tx.tx_rollback()
    Producer(tx).publish("committed", routing_key=tq.name)
    count_before_commit = tq(ch).queue_declare(passive=True).message_count
    tx.tx_commit()
    got = tq(ch).get(no_ack=True)
    out["tx"] = {"before_commit": count_before_commit, "after_commit": got.payload, "left": tq(ch).queue_declare(passive=True).message_count}
    tq(ch).delete()

# Heartbeats: 1 s negotiated; kombu's heartbeat_check keeps the connection alive across 3 s idle.
with Connection(url, heartbeat=1) as conn:
    conn.connect()
    out["heartbeat_negotiated"] = conn.connection.heartbeat
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        conn.heartbeat_check()
        try:
            conn.drain_events(timeout=0.2)
        except socket.timeout:
            pass
    hq = Queue(f"kombu.hb.{suffix}", durable=False, exclusive=True)
    hch = conn.channel()
    hq(hch).declare()
    Producer(hch).publish("still here", routing_key=hq.name)
    drain(conn, lambda: hq(hch).queue_declare(passive=True).message_count == 1)
    out["alive_after_idle"] = hq(hch).get(no_ack=True).payload

print(json.dumps(out))
