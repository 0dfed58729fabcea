<?php
// Debian's php-amqplib against a broker, doing what its applications do (AMQPLAIN login, the
// library's default). Prints one JSON object with what it observed; the vitest file compares it
// with what RabbitMQ 3.10 gives. Usage: php roundtrip.php PORT [TLS_PORT CA_FILE]
require_once '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPSSLConnection;
use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Exception\AMQPBasicCancelException;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPTable;

$port = (int)$argv[1];
$tlsPort = $argv[2] ?? null;
$caFile = $argv[3] ?? null;
$suffix = bin2hex(random_bytes(4));
$out = [];

function connect(int $port, int $heartbeat = 0): AMQPStreamConnection
{
    return new AMQPStreamConnection('127.0.0.1', $port, 'guest', 'guest', '/', false, 'AMQPLAIN', null, 'en_US',
        3.0, max(3.0, 2 * $heartbeat), null, false, $heartbeat);
}

/** Processes incoming frames on $ch for $seconds (to let deliveries arrive, or show none does). */
function pump($ch, float $seconds): void
{
    $deadline = microtime(true) + $seconds;
    while (($left = $deadline - microtime(true)) > 0) {
        try {
            $ch->wait(null, false, $left);
        } catch (AMQPTimeoutException $e) {
            return;
        }
    }
}

function waitUntil($ch, callable $cond, float $seconds = 5.0): void
{
    $deadline = microtime(true) + $seconds;
    while (!$cond()) {
        if (microtime(true) > $deadline) throw new RuntimeException('condition not reached');
        try {
            $ch->wait(null, false, 0.1);
        } catch (AMQPTimeoutException $e) {
        }
    }
}

$conn = connect($port);
$server = $conn->getServerProperties();
$out['server_product_known'] = in_array($server['product'][1], ['RabbitMQ', 'Warren'], true);

// Publisher confirms on a direct exchange, with properties and headers.
$ch = $conn->channel();
$acks = 0;
$nacks = 0;
$ch->set_ack_handler(function () use (&$acks) { $acks++; });
$ch->set_nack_handler(function () use (&$nacks) { $nacks++; });
$returned = [];
$ch->set_return_listener(function ($code, $text, $exchange, $key) use (&$returned) { $returned[] = [$code, $text, $key]; });
$ch->confirm_select();
$x = "php.direct.$suffix";
$ch->exchange_declare($x, 'direct', false, false, true);
[$q] = $ch->queue_declare("php.q.$suffix", false, false, false, false);
$ch->queue_bind($q, $x, 'work');
for ($i = 0; $i < 5; $i++) {
    $ch->basic_publish(new AMQPMessage(json_encode(['n' => $i]), [
        'content_type' => 'application/json', 'delivery_mode' => AMQPMessage::DELIVERY_MODE_PERSISTENT, 'priority' => $i,
        'correlation_id' => "c$i", 'application_headers' => new AMQPTable(['attempt' => $i]),
    ]), $x, 'work');
}
$ch->wait_for_pending_acks_returns(5);
$out['acks'] = $acks;
$out['nacks'] = $nacks;
[, $count] = $ch->queue_declare($q, true);
$out['message_count'] = $count;

// basic.get, nack with requeue, the redelivery.
$m = $ch->basic_get($q);
$out['get'] = [
    'body' => json_decode($m->getBody(), true),
    'headers' => $m->get('application_headers')->getNativeData(),
    'content_type' => $m->get('content_type'),
    'correlation_id' => $m->get('correlation_id'),
    'priority' => $m->get('priority'),
    'delivery_mode' => $m->get('delivery_mode'),
    'redelivered' => $m->isRedelivered(),
    'routing_key' => $m->getRoutingKey(),
    'exchange' => str_replace($suffix, 'SUFFIX', $m->getExchange()),
];
$m->nack(true);
$m2 = $ch->basic_get($q);
$out['after_nack'] = ['body' => json_decode($m2->getBody(), true), 'redelivered' => $m2->isRedelivered()];
$m2->ack();

// A consumer with prefetch 2 on its own channel: two unacked at a time, ack / reject / requeue.
$cch = $conn->channel();
$cch->basic_qos(0, 2, false);
$seen = [];
$cch->basic_consume($q, '', false, false, false, false, function (AMQPMessage $msg) use (&$seen) { $seen[] = $msg; });
waitUntil($cch, function () use (&$seen) { return count($seen) >= 2; });
pump($cch, 0.3);
$out['prefetch_window'] = array_map(function ($m) { return json_decode($m->getBody(), true)['n']; }, $seen);
$seen[0]->ack();
waitUntil($cch, function () use (&$seen) { return count($seen) >= 3; });
$seen[1]->reject(false);
$seen[2]->reject(true);
waitUntil($cch, function () use (&$seen) { return count($seen) >= 5; });
pump($cch, 0.3);
$rest = array_map(function ($m) { return [json_decode($m->getBody(), true)['n'], $m->isRedelivered()]; }, array_slice($seen, 3));
sort($rest);
$out['after_reject_requeue'] = $rest;
foreach (array_slice($seen, 3) as $msg) $msg->ack();
$cch->close();
[, $left] = $ch->queue_declare($q, true);
$out['left_in_queue'] = $left;

// Mandatory publish nobody can route: basic.return.
$ch->basic_publish(new AMQPMessage('lost'), $x, 'nowhere', true);
$ch->wait_for_pending_acks_returns(5);
$out['returned'] = $returned[0] ?? null;

// Passive declare of a missing queue: the channel closes with 404.
try {
    $conn->channel()->queue_declare("php.missing.$suffix", true);
    $out['passive_missing'] = 'no error';
} catch (AMQPProtocolChannelException $e) {
    $out['passive_missing'] = [$e->getCode(), str_replace($suffix, 'SUFFIX', $e->getMessage())];
}

// Consumer cancel notification: php-amqplib raises AMQPBasicCancelException from wait().
$kch = $conn->channel();
[$kq] = $kch->queue_declare("php.cancel.$suffix", false, false, false, false);
$tag = $kch->basic_consume($kq, '', false, true, false, false, function () {});
$conn->channel()->queue_delete($kq);
try {
    $kch->wait(null, false, 5);
    $out['consumer_cancelled'] = 'no notification';
} catch (AMQPBasicCancelException $e) {
    $out['consumer_cancelled'] = $e->consumerTag === $tag;
}

// Transactions.
$tch = $conn->channel();
[$tq] = $tch->queue_declare("php.tx.$suffix", false, false, false, false);
$tch->tx_select();
$tch->basic_publish(new AMQPMessage('rolled back'), '', $tq);
$tch->tx_rollback();
$tch->basic_publish(new AMQPMessage('committed'), '', $tq);
[, $beforeCommit] = $ch->queue_declare($tq, true);
$tch->tx_commit();
$committed = $ch->basic_get($tq, true);
[, $txLeft] = $ch->queue_declare($tq, true);
$out['tx'] = ['before_commit' => $beforeCommit, 'after_commit' => $committed->getBody(), 'left' => $txLeft];
$ch->queue_delete($tq);
$ch->queue_delete($q);
$conn->close();

// Heartbeats: 1 s negotiated; the connection outlives 3 s of quiet while the client checks them.
$hb = connect($port, 1);
$out['heartbeat_negotiated'] = $hb->getHeartbeat();
$hch = $hb->channel();
[$hq] = $hch->queue_declare('', false, false, true, true);
$deadline = microtime(true) + 3;
while (microtime(true) < $deadline) {
    pump($hch, 0.2);
    $hb->checkHeartBeat();
}
$hch->basic_publish(new AMQPMessage('still here'), '', $hq);
$alive = null;
$deadline = microtime(true) + 5;
while ($alive === null && microtime(true) < $deadline) $alive = $hch->basic_get($hq, true);
$out['alive_after_idle'] = $alive ? $alive->getBody() : null;
$hb->close();

// TLS, verifying the broker's certificate against the test CA.
if ($tlsPort !== null) {
    $tls = new AMQPSSLConnection('127.0.0.1', (int)$tlsPort, 'guest', 'guest', '/',
        ['cafile' => $caFile, 'verify_peer' => true, 'verify_peer_name' => true, 'peer_name' => 'localhost']);
    $tlsCh = $tls->channel();
    [$tlsQ] = $tlsCh->queue_declare('', false, false, true, true);
    $tlsCh->basic_publish(new AMQPMessage('over tls'), '', $tlsQ);
    $got = null;
    $deadline = microtime(true) + 5;
    while ($got === null && microtime(true) < $deadline) $got = $tlsCh->basic_get($tlsQ, true);
    $out['tls'] = $got ? $got->getBody() : null;
    $tls->close();
}

echo json_encode($out), "\n";
