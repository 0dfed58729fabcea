// streambench: load for streams (and, for comparison, queues) over AMQP 0-9-1, the same way on
// any broker. Built like ../shared/bench's ampbench, against Debian's amqp091-go (GOPATH mode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o streambench .
//
// Modes (one JSON line of results each):
//
//	publish  producers publish to one stream with confirms (window per producer) for -duration:
//	         confirmed msg/s
//	replay   publishes -count messages to a fresh stream (with confirms), then one consumer reads
//	         them all from "first" (prefetch, multi-ack): replay msg/s
//	fanout   -readers consumers on one stream (from "next"), or with -queues on that many queues
//	         bound to a fanout exchange, while one producer publishes for -duration (pausing
//	         while the slowest reader is more than -backlog behind): deliveries/s and the
//	         broker's CPU µs per delivery and RSS (with -pid)
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

type options struct {
	uri, mode, name      string
	producers, window    int
	size, prefetch       int
	count                int
	readers              int
	queues               bool
	backlog              int64
	duration             time.Duration
	pid                  int
	label                string
}

func main() {
	o := options{}
	flag.StringVar(&o.uri, "uri", "amqp://guest:guest@127.0.0.1:5672/", "broker URI")
	flag.StringVar(&o.mode, "mode", "publish", "publish | replay | fanout")
	flag.StringVar(&o.name, "name", fmt.Sprintf("streambench-%d", time.Now().UnixNano()), "stream (or queue prefix) name")
	flag.IntVar(&o.producers, "producers", 1, "publish: producer connections")
	flag.IntVar(&o.window, "window", 1000, "unconfirmed messages per producer")
	flag.IntVar(&o.size, "size", 16, "body bytes (>= 8: carries a sequence number)")
	flag.IntVar(&o.prefetch, "prefetch", 1000, "consumer prefetch")
	flag.IntVar(&o.count, "count", 1000000, "replay: messages to publish then read back")
	flag.IntVar(&o.readers, "readers", 10, "fanout: consumers")
	flag.BoolVar(&o.queues, "queues", false, "fanout: one classic queue per reader (fanout exchange) instead of one stream")
	flag.Int64Var(&o.backlog, "backlog", 20000, "fanout: the producer pauses while a reader is this far behind")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "publish/fanout: measurement window")
	flag.IntVar(&o.pid, "pid", 0, "broker pid (CPU seconds and RSS)")
	flag.StringVar(&o.label, "label", "", "echoed into the JSON")
	flag.Parse()
	var res map[string]any
	var err error
	switch o.mode {
	case "publish":
		res, err = publish(o)
	case "replay":
		res, err = replay(o)
	case "fanout":
		res, err = fanout(o)
	default:
		err = fmt.Errorf("unknown mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streambench:", err)
		os.Exit(1)
	}
	res["mode"] = o.mode
	res["label"] = o.label
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func declareStream(ch *amqp.Channel, name string) error {
	_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "stream"})
	return err
}

func body(size int, seq uint64) []byte {
	if size < 8 {
		size = 8
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, seq)
	for i := 8; i < size; i++ {
		b[i] = byte('a' + i%26)
	}
	return b
}

// procStat returns the broker's CPU seconds (user+system) and RSS in KiB.
func procStat(pid int) (float64, int64) {
	if pid == 0 {
		return 0, 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	rss, _ := strconv.ParseInt(fields[21], 10, 64)
	return (ut + st) / 100.0, rss * int64(os.Getpagesize()) / 1024
}

// publisher publishes with confirms, at most window unconfirmed, until stop or count messages.
func publisher(uri, queue, exchange string, size, window, count int, stop *atomic.Bool, confirmed *atomic.Int64, pause func() bool) error {
	conn, err := amqp.Dial(uri)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, window*2))
	slots := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		for c := range confirms {
			if c.Ack {
				confirmed.Add(1)
			}
			<-slots
		}
		close(done)
	}()
	key := queue
	for seq := 0; (count == 0 || seq < count) && !stop.Load(); seq++ {
		for pause != nil && pause() && !stop.Load() {
			time.Sleep(time.Millisecond)
		}
		slots <- struct{}{}
		if err := ch.Publish(exchange, key, false, false, amqp.Publishing{DeliveryMode: 2, Body: body(size, uint64(seq))}); err != nil {
			return err
		}
	}
	for len(slots) > 0 {
		time.Sleep(time.Millisecond)
	}
	ch.Close()
	<-done
	return nil
}

func publish(o options) (map[string]any, error) {
	conn, err := amqp.Dial(o.uri)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := declareStream(ch, o.name); err != nil {
		return nil, err
	}
	var stop atomic.Bool
	var confirmed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, o.producers)
	for i := 0; i < o.producers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := publisher(o.uri, o.name, "", o.size, o.window, 0, &stop, &confirmed, nil); err != nil {
				errs <- err
			}
		}()
	}
	time.Sleep(2 * time.Second) // warm-up
	start, cpu0 := confirmed.Load(), 0.0
	cpu0, _ = procStat(o.pid)
	t0 := time.Now()
	time.Sleep(o.duration)
	n := confirmed.Load() - start
	el := time.Since(t0).Seconds()
	cpu1, rss := procStat(o.pid)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	ch.QueueDelete(o.name, false, false, false)
	return map[string]any{"confirmed_per_s": float64(n) / el, "cpu_us_per_msg": (cpu1 - cpu0) * 1e6 / float64(max64(n, 1)), "rss_kib": rss}, nil
}

func replay(o options) (map[string]any, error) {
	conn, err := amqp.Dial(o.uri)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	if err := declareStream(ch, o.name); err != nil {
		return nil, err
	}
	var stop atomic.Bool
	var confirmed atomic.Int64
	t0 := time.Now()
	if err := publisher(o.uri, o.name, "", o.size, o.window, o.count, &stop, &confirmed, nil); err != nil {
		return nil, err
	}
	pubRate := float64(o.count) / time.Since(t0).Seconds()
	cch, _ := conn.Channel()
	cch.Qos(o.prefetch, 0, false)
	cpu0, _ := procStat(o.pid)
	t1 := time.Now()
	deliveries, err := cch.Consume(o.name, "replay", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		return nil, err
	}
	received, outOfOrder := 0, 0
	var next uint64
	timeout := time.After(10 * time.Minute)
	for received < o.count {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil, fmt.Errorf("consumer closed after %d", received)
			}
			if binary.BigEndian.Uint64(d.Body) != next {
				outOfOrder++
			}
			next = binary.BigEndian.Uint64(d.Body) + 1
			received++
			if received%100 == 0 || received == o.count {
				d.Ack(true)
			}
		case <-timeout:
			return nil, fmt.Errorf("replay timed out after %d messages", received)
		}
	}
	el := time.Since(t1).Seconds()
	cpu1, rss := procStat(o.pid)
	ch.QueueDelete(o.name, false, false, false)
	return map[string]any{"publish_per_s": pubRate, "replay_per_s": float64(received) / el, "out_of_order": outOfOrder, "cpu_us_per_msg": (cpu1 - cpu0) * 1e6 / float64(received), "rss_kib": rss}, nil
}

func fanout(o options) (map[string]any, error) {
	conn, err := amqp.Dial(o.uri)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ch, _ := conn.Channel()
	exchange, key := "", o.name
	names := make([]string, o.readers)
	if o.queues {
		exchange = o.name + "-x"
		if err := ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil); err != nil {
			return nil, err
		}
		for i := range names {
			names[i] = fmt.Sprintf("%s-%d", o.name, i)
			if _, err := ch.QueueDeclare(names[i], true, false, false, false, nil); err != nil {
				return nil, err
			}
			ch.QueueBind(names[i], "", exchange, false, nil)
		}
	} else {
		if err := declareStream(ch, o.name); err != nil {
			return nil, err
		}
		for i := range names {
			names[i] = o.name
		}
	}
	counts := make([]atomic.Int64, o.readers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < o.readers; i++ {
		rc, err := amqp.Dial(o.uri)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		rch, _ := rc.Channel()
		rch.Qos(o.prefetch, 0, false)
		var args amqp.Table
		if !o.queues {
			args = amqp.Table{"x-stream-offset": "next"}
		}
		ds, err := rch.Consume(names[i], fmt.Sprintf("reader-%d", i), false, false, false, false, args)
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := 0
			for d := range ds {
				n++
				counts[i].Add(1)
				if n%100 == 0 {
					d.Ack(true)
				}
			}
		}(i)
	}
	var confirmed atomic.Int64
	slowest := func() int64 {
		m := int64(-1)
		for i := range counts {
			if c := counts[i].Load(); m < 0 || c < m {
				m = c
			}
		}
		return m
	}
	pause := func() bool { return confirmed.Load()-slowest() > o.backlog }
	pubDone := make(chan error, 1)
	go func() { pubDone <- publisher(o.uri, key, exchange, o.size, o.window, 0, &stop, &confirmed, pause) }()
	time.Sleep(2 * time.Second)
	total := func() int64 {
		var t int64
		for i := range counts {
			t += counts[i].Load()
		}
		return t
	}
	d0 := total()
	cpu0, _ := procStat(o.pid)
	t0 := time.Now()
	time.Sleep(o.duration)
	d1 := total()
	el := time.Since(t0).Seconds()
	cpu1, rss := procStat(o.pid)
	stop.Store(true)
	<-pubDone
	if o.queues {
		for _, n := range names {
			ch.QueueDelete(n, false, false, false)
		}
		ch.ExchangeDelete(exchange, false, false)
	} else {
		ch.QueueDelete(o.name, false, false, false)
	}
	n := d1 - d0
	return map[string]any{"deliveries_per_s": float64(n) / el, "cpu_us_per_delivery": (cpu1 - cpu0) * 1e6 / float64(max64(n, 1)), "rss_kib": rss, "readers": o.readers, "queues": o.queues}, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
