# Debian's ruby-bunny under a resource alarm (see ../blocked-scenario.ts for the line protocol).
# Usage: ruby blocked.rb PORT QUEUE
require "bunny"

port, name = Integer(ARGV[0]), ARGV[1]
$stdout.sync = true
unblocked = false
conn = Bunny.new(host: "127.0.0.1", port: port, user: "guest", pass: "guest", heartbeat: 0,
                 automatically_recover: false, logger: Logger.new(nil))
conn.start
conn.on_blocked { |blocked| puts "BLOCKED #{blocked.reason}" }
conn.on_unblocked { unblocked = true; puts "UNBLOCKED" }
ch = conn.create_channel
q = ch.queue(name, durable: true)
puts "READY"
ch.default_exchange.publish("held", routing_key: name, persistent: true)
Timeout.timeout(30) { sleep 0.01 until unblocked }
ch.confirm_select
ch.default_exchange.publish("after", routing_key: name, persistent: true)
ch.wait_for_confirms
puts "CONFIRMED"
2.times do
  _, _, body = q.pop
  puts "GOT #{body || 'nothing'}"
end
q.delete
conn.close
