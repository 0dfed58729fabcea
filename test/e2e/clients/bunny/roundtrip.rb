# Debian's ruby-bunny (the Ruby client) against a broker, doing what Bunny applications do. Prints
# one JSON object with what it observed; the vitest file compares it with what RabbitMQ 3.10 gives.
# Usage: ruby roundtrip.rb PORT [TLS_PORT CA_FILE]
require "bunny"
require "json"
require "securerandom"
require "timeout"

port = Integer(ARGV[0])
tls_port, ca_file = ARGV[1], ARGV[2]
suffix = SecureRandom.hex(4)
out = {}

def wait_until(seconds = 5)
  Timeout.timeout(seconds) { sleep 0.01 until yield }
end

def connect(port, **opts)
  c = Bunny.new(host: "127.0.0.1", port: port, user: "guest", pass: "guest", heartbeat: 0,
                automatically_recover: false, logger: Logger.new(nil), **opts)
  c.start
  c
end

conn = connect(port)
out["server_product_known"] = ["RabbitMQ", "Warren"].include?(conn.server_properties["product"])
out["server_capabilities"] = conn.server_capabilities.select { |_, v| v }.keys.sort

# Publisher confirms on a direct exchange, with properties and headers.
ch = conn.create_channel
ch.confirm_select
x = ch.direct("bunny.direct.#{suffix}", auto_delete: true)
q = ch.queue("bunny.q.#{suffix}", durable: false)
q.bind(x, routing_key: "work")
5.times do |i|
  x.publish({ n: i }.to_json, routing_key: "work", content_type: "application/json", headers: { "attempt" => i },
                              priority: i, correlation_id: "c#{i}", persistent: true)
end
out["confirmed"] = ch.wait_for_confirms
out["nacked"] = ch.nacked_set.to_a
out["message_count"] = q.message_count

# basic.get, nack with requeue, the redelivery.
di, props, body = q.pop(manual_ack: true)
out["get"] = { "body" => JSON.parse(body), "headers" => props.headers, "content_type" => props.content_type,
               "correlation_id" => props.correlation_id, "priority" => props.priority, "delivery_mode" => props.delivery_mode,
               "redelivered" => di.redelivered?, "routing_key" => di.routing_key, "exchange" => di.exchange.sub(suffix, "SUFFIX") }
ch.nack(di.delivery_tag, false, true)
di2, _, body2 = q.pop(manual_ack: true)
out["after_nack"] = { "body" => JSON.parse(body2), "redelivered" => di2.redelivered? }
ch.ack(di2.delivery_tag)

# A consumer with prefetch 2 on its own channel: two unacked at a time, ack / reject / requeue.
cch = conn.create_channel
cch.prefetch(2)
seen = Queue.new
cq = cch.queue(q.name, passive: true)
cq.subscribe(manual_ack: true) { |d, _p, b| seen << [JSON.parse(b)["n"], d] }
taken = []
wait_until { seen.size >= 2 }
sleep 0.3
taken << seen.pop << seen.pop
out["prefetch_window"] = taken.map(&:first) + (seen.empty? ? [] : ["extra"])
cch.ack(taken[0][1].delivery_tag)
wait_until { seen.size >= 1 }
taken << seen.pop
cch.reject(taken[1][1].delivery_tag, false)
cch.reject(taken[2][1].delivery_tag, true)
wait_until { seen.size >= 2 }
sleep 0.3
rest = []
rest << seen.pop until seen.empty?
out["after_reject_requeue"] = rest.map { |n, d| [n, d.redelivered?] }.sort_by { |n, r| [n, r ? 0 : 1] }
rest.each { |_, d| cch.ack(d.delivery_tag) }
out["left_in_queue"] = ch.queue(q.name, passive: true).message_count
cch.close

# Mandatory publish nobody can route: basic.return.
returned = []
x.on_return { |ri, _p, _b| returned << [ri.reply_code, ri.reply_text, ri.routing_key] }
x.publish("lost", routing_key: "nowhere", mandatory: true)
ch.wait_for_confirms
wait_until { returned.size == 1 }
out["returned"] = returned.first

# Passive declare of a missing queue: Bunny::NotFound with the broker's 404 text.
begin
  conn.create_channel.queue("bunny.missing.#{suffix}", passive: true)
  out["passive_missing"] = "no error"
rescue Bunny::NotFound => e
  out["passive_missing"] = [e.channel_close.reply_code, e.channel_close.reply_text.sub(suffix, "SUFFIX")]
end

# Consumer cancel notification when the queue is deleted under a consumer.
kch = conn.create_channel
kq = kch.queue("bunny.cancel.#{suffix}", durable: false)
cancelled = []
consumer = Bunny::Consumer.new(kch, kq, kch.generate_consumer_tag("warren-test"), false)
consumer.on_delivery { |_d, _p, _b| }
consumer.on_cancellation { |basic_cancel| cancelled << basic_cancel.consumer_tag }
kq.subscribe_with(consumer)
conn.create_channel.queue_delete(kq.name)
wait_until { cancelled.size == 1 }
out["consumer_cancelled"] = cancelled.first == consumer.consumer_tag

# Transactions.
tch = conn.create_channel
tq = tch.queue("bunny.tx.#{suffix}", durable: false)
tch.tx_select
tch.default_exchange.publish("rolled back", routing_key: tq.name)
tch.tx_rollback
tch.default_exchange.publish("committed", routing_key: tq.name)
before_commit = ch.queue(tq.name, passive: true).message_count
tch.tx_commit
_, _, committed = ch.queue(tq.name, passive: true).pop
out["tx"] = { "before_commit" => before_commit, "after_commit" => committed,
              "left" => ch.queue(tq.name, passive: true).message_count }
tq.delete
q.delete
conn.close

# Heartbeats: 1 s negotiated, the connection outlives 3 s of silence.
hb = connect(port, heartbeat: 1)
out["heartbeat_negotiated"] = hb.heartbeat
sleep 3
hch = hb.create_channel
hq = hch.queue("", exclusive: true)
hch.default_exchange.publish("still here", routing_key: hq.name)
wait_until { hq.message_count == 1 }
out["alive_after_idle"] = hq.pop[2]
hb.close

# TLS, verifying the broker's certificate against the test CA.
if tls_port
  tls = Bunny.new(host: "127.0.0.1", port: Integer(tls_port), user: "guest", pass: "guest", heartbeat: 0,
                  automatically_recover: false, logger: Logger.new(nil),
                  tls: true, tls_ca_certificates: [ca_file], verify_peer: true)
  tls.start
  tch = tls.create_channel
  tq = tch.queue("", exclusive: true)
  tch.default_exchange.publish("over tls", routing_key: tq.name)
  wait_until { tq.message_count == 1 }
  out["tls"] = tq.pop[2]
  tls.close
end

puts JSON.generate(out)
