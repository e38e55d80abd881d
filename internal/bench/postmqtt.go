package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

const (
	postMQTTMessages    = 20_000
	postMQTTSize        = 100
	postMQTTConcurrency = 16
	postMQTTRounds      = 5
)

// benchPostMQTT compares HTTP POST → MQTT 5 at QoS 1 through the gateway
// with a paho client publishing at QoS 1 straight to the broker, both with
// 16 publishers in flight on one MQTT connection, against a private
// mosquitto on a free port.
func benchPostMQTT() (row, error) {
	addr, stop, err := startMosquitto()
	if err != nil {
		return row{}, err
	}
	defer stop()

	var direct, gateway []time.Duration
	for range postMQTTRounds {
		d, err := timeDirectMQTT(addr)
		if err != nil {
			return row{}, fmt.Errorf("direct paho: %w", err)
		}
		g, err := timePostMQTT(addr)
		if err != nil {
			return row{}, fmt.Errorf("gateway: %w", err)
		}
		direct, gateway = append(direct, d), append(gateway, g)
	}
	rate := func(ds []time.Duration) float64 { return postMQTTMessages / median(ds).Seconds() }
	return row{
		Name:     fmt.Sprintf("HTTP POST → MQTT 5 QoS 1, 16 concurrent, 20k × 100 B (msg/s, median of %d)", postMQTTRounds),
		Sluice:   fmt.Sprintf("%.0f", rate(gateway)),
		Baseline: fmt.Sprintf("%.0f (paho publisher)", rate(direct)),
		Ratio:    fmt.Sprintf("%.2f", rate(gateway)/rate(direct)),
		Target:   "≥ 0.50",
	}, nil
}

// startMosquitto runs a broker of the benchmark's own on a free port.
func startMosquitto() (addr string, stop func(), err error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return "", nil, fmt.Errorf("mosquitto binary needed: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr = ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir, err := os.MkdirTemp("", "sluice-bench-mqtt")
	if err != nil {
		return "", nil, err
	}
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 100000\n", port)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("mosquitto did not start on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runConcurrent calls do n times from c goroutines and returns how long it
// took, or the first error.
func runConcurrent(n, c int, do func(i int) error) (time.Duration, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), firstErr
}

func timeDirectMQTT(addr string) (time.Duration, error) {
	ctx := context.Background()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnClientError: func(error) {}})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "bench-direct", CleanStart: true, KeepAlive: 30}); err != nil {
		return 0, err
	}
	defer func() { _ = c.Disconnect(&paho.Disconnect{}) }()
	payload := bytes.Repeat([]byte("x"), postMQTTSize)
	return runConcurrent(postMQTTMessages, postMQTTConcurrency, func(int) error {
		_, err := c.Publish(ctx, &paho.Publish{Topic: "bench/direct", QoS: 1, Payload: payload})
		return err
	})
}

func timePostMQTT(addr string) (time.Duration, error) {
	yaml := fmt.Sprintf(`
server:
  http: {listen: "127.0.0.1:0"}
  admin: {listen: "off"}
apis:
  - id: bench
    listeners:
      - {type: http, paths: [/bench], entrypoints: [{type: http-post}]}
    endpointGroups:
      - name: default
        type: mqtt5
        sharedConfiguration: {serverUrl: "mqtt://%s", producer: {topic: bench/gateway, qos: 1}}
        endpoints: [{name: m}]
`, addr)
	srv, stop, err := startGateway(yaml)
	if err != nil {
		return 0, err
	}
	defer stop()
	// A minimal keep-alive HTTP/1.1 client per publisher, as a load tool
	// like wrk would be: net/http's client costs more CPU per request than
	// the gateway itself, and it would share the two cores with it.
	payload := bytes.Repeat([]byte("x"), postMQTTSize)
	request := fmt.Appendf(nil, "POST /bench HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s",
		srv.Addr(), len(payload), payload)
	conns := make(chan *rawHTTP, postMQTTConcurrency)
	for range postMQTTConcurrency {
		c, err := dialRawHTTP(srv.Addr())
		if err != nil {
			return 0, err
		}
		defer c.conn.Close()
		conns <- c
	}
	post := func(int) error {
		c := <-conns
		defer func() { conns <- c }()
		return c.do(request)
	}
	// One request first, so the broker connection is up before timing.
	if err := post(0); err != nil {
		return 0, err
	}
	return runConcurrent(postMQTTMessages, postMQTTConcurrency, post)
}

// rawHTTP is one keep-alive connection that sends a prepared request and
// reads the answer: the status line, headers, and a Content-Length body.
type rawHTTP struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRawHTTP(addr string) (*rawHTTP, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawHTTP{conn: c, r: bufio.NewReader(c)}, nil
}

func (c *rawHTTP) do(request []byte) error {
	if _, err := c.conn.Write(request); err != nil {
		return err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 202")) {
		return fmt.Errorf("POST: %s", bytes.TrimSpace(status))
	}
	length := 0
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(bytes.ToLower(line), []byte("content-length:")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	_, err = c.r.Discard(length)
	return err
}
