# Debian's python3-pika over AMQPS, verifying the server certificate against the test CA.
# Usage: /usr/bin/python3 amqps.py PORT CA_FILE   — prints one JSON line with what it observed.
import json
import ssl
import sys

import pika

port, ca_file = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca_file)  # verifies the chain and the host name
params = pika.ConnectionParameters(host="127.0.0.1", port=port, credentials=pika.PlainCredentials("guest", "guest"),
                                   ssl_options=pika.SSLOptions(context, "127.0.0.1"),
                                   heartbeat=0, blocked_connection_timeout=5, socket_timeout=5)
conn = pika.BlockingConnection(params)
ch = conn.channel()
q = ch.queue_declare(queue="", exclusive=True).method.queue
ch.basic_publish(exchange="", routing_key=q, body=b"pika over tls")
method, _, body = ch.basic_get(queue=q, auto_ack=True)
product = conn._impl.server_properties.get("product")
print(json.dumps({"body": body.decode(), "product": product.decode() if isinstance(product, bytes) else product}))
conn.close()
