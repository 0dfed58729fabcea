<?php
// Debian's php-amqplib under a resource alarm (see ../blocked-scenario.ts for the line protocol).
// Usage: php blocked.php PORT QUEUE
require_once '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;

$port = (int)$argv[1];
$name = $argv[2];
$unblocked = false;
$conn = new AMQPStreamConnection('127.0.0.1', $port, 'guest', 'guest');
$conn->set_connection_block_handler(function ($reason) { echo "BLOCKED $reason\n"; });
$conn->set_connection_unblock_handler(function () use (&$unblocked) { $unblocked = true; echo "UNBLOCKED\n"; });
$ch = $conn->channel();
$ch->queue_declare($name, false, true, false, false);
echo "READY\n";
$persistent = ['delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT];
$ch->basic_publish(new AMQPMessage('held', $persistent), '', $name);
$deadline = microtime(true) + 30;
while (!$unblocked && microtime(true) < $deadline) {
    try {
        $ch->wait(null, false, 0.05);
    } catch (AMQPTimeoutException $e) {
    }
}
$ch->confirm_select();
$ch->basic_publish(new AMQPMessage('after', $persistent), '', $name);
$ch->wait_for_pending_acks(5);
echo "CONFIRMED\n";
for ($i = 0; $i < 2; $i++) {
    $m = $ch->basic_get($name, true);
    echo 'GOT ', $m ? $m->getBody() : 'nothing', "\n";
}
$ch->queue_delete($name);
$conn->close();
