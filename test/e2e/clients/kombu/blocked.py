# Debian's python3-kombu under a resource alarm (see ../blocked-scenario.ts for the line protocol).
# kombu hands on_blocked/on_unblocked to py-amqp through transport_options, as Celery does.
# Usage: /usr/bin/python3 blocked.py PORT QUEUE
import socket
import sys

from kombu import Connection, Producer, Queue

port, name = int(sys.argv[1]), sys.argv[2]
url = f"amqp://guest:guest@127.0.0.1:{port}//"
state = {"unblocked": False}


def on_blocked(reason):
    print("BLOCKED", reason, flush=True)


def on_unblocked():
    state["unblocked"] = True
    print("UNBLOCKED", flush=True)


with Connection(url, heartbeat=0, transport_options={"on_blocked": on_blocked, "on_unblocked": on_unblocked}) as conn:
    conn.connect()
    queue = Queue(name, durable=True)
    channel = conn.channel()
    queue(channel).declare()
    print("READY", flush=True)
    Producer(channel).publish("held", routing_key=name, delivery_mode=2)
    while not state["unblocked"]:
        try:
            conn.drain_events(timeout=0.05)
        except socket.timeout:
            pass

with Connection(url, heartbeat=0, transport_options={"confirm_publish": True}) as conn:
    channel = conn.channel()
    Producer(channel).publish("after", routing_key=name, delivery_mode=2)
    print("CONFIRMED", flush=True)
    for _ in range(2):
        message = queue(channel).get(no_ack=True)
        print("GOT", message.payload if message is not None else "nothing", flush=True)
    queue(channel).delete()
