# Debian's python3-pika under a resource alarm. Publishes one persistent message while the broker
# has an alarm set, and reports, one line each as it happens: READY, BLOCKED <reason>, UNBLOCKED,
# CONFIRMED (a second publish, with confirms, after the alarm), GOT <body> for each message found.
# Usage: /usr/bin/python3 pika-blocked.py PORT QUEUE
import sys

import pika

port, queue = int(sys.argv[1]), sys.argv[2]
params = pika.ConnectionParameters(host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
                                   heartbeat=0, socket_timeout=5)
conn = pika.BlockingConnection(params)
state = {"blocked": False, "unblocked": False}


def on_blocked(_conn, frame):
    state["blocked"] = True
    print("BLOCKED", frame.method.reason, flush=True)


def on_unblocked(_conn, _frame):
    state["unblocked"] = True
    print("UNBLOCKED", flush=True)


conn.add_on_connection_blocked_callback(on_blocked)
conn.add_on_connection_unblocked_callback(on_unblocked)
ch = conn.channel()
ch.queue_declare(queue=queue, durable=True)
print("READY", flush=True)
persistent = pika.BasicProperties(delivery_mode=2)
ch.basic_publish(exchange="", routing_key=queue, body=b"held", properties=persistent)
while not state["unblocked"]:
    conn.process_data_events(time_limit=0.05)
ch.confirm_delivery()
ch.basic_publish(exchange="", routing_key=queue, body=b"after", properties=persistent)
print("CONFIRMED", flush=True)
for _ in range(2):
    method, _props, body = ch.basic_get(queue=queue, auto_ack=True)
    print("GOT", body.decode() if method is not None else "nothing", flush=True)
conn.close()
