# A second opinion from another client library: Debian's python3-pika talks to Warren.
# Usage: /usr/bin/python3 roundtrip.py PORT   — prints one JSON line with what it observed.
import json
import sys

import pika

port = int(sys.argv[1])
params = pika.ConnectionParameters(host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
                                   heartbeat=0, blocked_connection_timeout=5, socket_timeout=5)
conn = pika.BlockingConnection(params)
ch = conn.channel()
out = {"server_product": conn._impl.server_properties.get("product")}
if isinstance(out["server_product"], bytes):
    out["server_product"] = out["server_product"].decode()

q = ch.queue_declare(queue="", exclusive=True).method.queue
ch.exchange_declare(exchange="pika.topic", exchange_type="topic", auto_delete=True)
ch.queue_bind(queue=q, exchange="pika.topic", routing_key="a.*.c")
props = pika.BasicProperties(content_type="application/json", delivery_mode=2, priority=3, correlation_id="c-1",
                             headers={"s": "str", "i": 42, "big": 2**40, "neg": -7, "b": True,
                                      "nested": {"x": [1, "two"]}}, message_id="m-1", app_id="pika-test")
ch.confirm_delivery()
ch.basic_publish(exchange="pika.topic", routing_key="a.b.c", body=b'{"n":1}', properties=props)
ch.basic_publish(exchange="pika.topic", routing_key="a.b.d", body=b"unrouted")
method, got_props, body = ch.basic_get(queue=q, auto_ack=False)
out["body"] = body.decode()
out["routing_key"] = method.routing_key
out["redelivered"] = method.redelivered
out["headers"] = got_props.headers
out["props"] = {"content_type": got_props.content_type, "delivery_mode": got_props.delivery_mode,
                "priority": got_props.priority, "correlation_id": got_props.correlation_id,
                "message_id": got_props.message_id, "app_id": got_props.app_id}
ch.basic_nack(delivery_tag=method.delivery_tag, requeue=True)
method2, _, _ = ch.basic_get(queue=q, auto_ack=True)
out["redelivered_after_nack"] = method2.redelivered
try:
    ch.queue_declare(queue="no-such-queue", passive=True)
except pika.exceptions.ChannelClosedByBroker as e:
    out["passive_error"] = [e.reply_code, e.reply_text]
conn.close()
print(json.dumps(out))
