package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	proxyRounds   = 5
	proxyDuration = "10s"
	proxyWarmup   = "2s"
	proxyConns    = 64
	// clockTicks is USER_HZ, what /proc reports CPU time in; 100 on every
	// Linux architecture Go supports, and reading it needs cgo.
	clockTicks = 100
)

// benchHTTPProxy compares a `type: proxy` API of the gateway with nginx's
// proxy_pass in front of the same backend (nginx `return 200`, 1 worker),
// loaded by wrk, alternating nginx and Sluice rounds. The gateway runs as a
// binary built from this checkout as `make build` does, so it has its own
// runtime and heap as in production, not the harness's leftovers from the
// benchmarks run before it; its CPU is then measured the same way as
// nginx's. Everything runs on free ports under a temporary directory and is
// stopped at the end, on errors and on SIGINT/SIGTERM.
func benchHTTPProxy() (row, error) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		return row{}, fmt.Errorf("nginx binary needed (apt-get install nginx): %w", err)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return row{}, fmt.Errorf("wrk binary needed (apt-get install wrk): %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-bench-proxy")
	if err != nil {
		return row{}, err
	}
	defer os.RemoveAll(dir)
	// nginx workers run as nobody when started by root and create their
	// temporary files under this directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return row{}, err
	}

	procs := &procGroup{}
	defer procs.stopAll()
	stopOnSignal := procs.stopOnSignal(dir)
	defer stopOnSignal()

	sluiceBin := filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", sluiceBin, "github.com/sluicegw/sluice/cmd/sluice")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return row{}, fmt.Errorf("building the gateway: %w\n%s", err, out)
	}

	var ports [3]string
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return row{}, err
		}
	}
	backendAddr, nginxAddr, sluiceAddr := "127.0.0.1:"+ports[0], "127.0.0.1:"+ports[1], "127.0.0.1:"+ports[2]

	files := map[string]string{
		"backend.conf": nginxConf(dir, "backend", 1, backendAddr, `return 200 "hello";`),
		"proxy.conf": nginxConf(dir, "proxy", 0, nginxAddr, `proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $proxy_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;`, "upstream backend { server "+backendAddr+"; keepalive 256; keepalive_requests 1000000; }"),
		"sluice.yaml": fmt.Sprintf(`server:
  http: {listen: %q}
  admin: {listen: "off"}
  dataDir: %q
  log: {level: warn}
apis:
  - id: bench
    name: Bench
    type: proxy
    listeners:
      - {type: http, paths: [/], entrypoints: [{type: http-proxy}]}
    endpointGroups:
      - name: default
        type: http-proxy
        endpoints:
          - {name: a, configuration: {target: "http://%s"}}
    plans:
      - {name: open, security: {type: keyless}}
`, sluiceAddr, filepath.Join(dir, "data"), backendAddr),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return row{}, err
		}
	}

	nginxArgs := func(name string) []string {
		return []string{"-p", dir, "-c", filepath.Join(dir, name+".conf"), "-e", filepath.Join(dir, name+"-error.log"), "-g", "daemon off;"}
	}
	backend, err := procs.start(dir, "nginx backend", nginx, nginxArgs("backend")...)
	if err != nil {
		return row{}, err
	}
	if err := backend.waitServing(backendAddr); err != nil {
		return row{}, err
	}
	variants := []struct {
		name, addr string
		p          *proc
	}{{name: "nginx", addr: nginxAddr}, {name: "sluice", addr: sluiceAddr}}
	if variants[0].p, err = procs.start(dir, "nginx proxy", nginx, nginxArgs("proxy")...); err != nil {
		return row{}, err
	}
	if variants[1].p, err = procs.start(dir, "sluice", sluiceBin, "run", "-c", filepath.Join(dir, "sluice.yaml")); err != nil {
		return row{}, err
	}
	if os.Getenv("SLUICE_BENCH_STUDY") == "eventloop" {
		// The study of BENCHMARKS.md: the same harness around a bare epoll
		// loop per core, to tell the data path's design from its features.
		loopBin := filepath.Join(dir, "eventloop")
		loopAddr, err := freePortAddr()
		if err != nil {
			return row{}, err
		}
		build := exec.Command("go", "build", "-o", loopBin, "github.com/sluicegw/sluice/internal/bench/eventloop")
		if out, err := build.CombinedOutput(); err != nil {
			return row{}, fmt.Errorf("building the event-loop study: %w\n%s", err, out)
		}
		p, err := procs.start(dir, "eventloop", loopBin, loopAddr, backendAddr)
		if err != nil {
			return row{}, err
		}
		variants = append(variants, struct {
			name, addr string
			p          *proc
		}{"loop", loopAddr, p})
	}
	for _, v := range variants {
		if err := v.p.waitServing(v.addr); err != nil {
			return row{}, err
		}
	}

	results := map[string][]wrkResult{}
	for round := 1; round <= proxyRounds; round++ {
		for _, v := range variants {
			url := "http://" + v.addr + "/"
			if _, err := runWrk(url, proxyWarmup, false); err != nil {
				return row{}, fmt.Errorf("%s warm-up: %w", v.name, err)
			}
			before := sampleCPU(v.p.pid(), backend.pid())
			res, err := runWrk(url, proxyDuration, true)
			if err != nil {
				return row{}, fmt.Errorf("%s: %w", v.name, err)
			}
			split := sampleCPU(v.p.pid(), backend.pid()).since(before, res)
			fmt.Fprintf(os.Stderr, "http-proxy round %d %-6s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cores: proxy %.2f backend %.2f wrk %.2f softirq %.2f other %.2f  load %s%s\n",
				round, v.name, res.reqPerSec, ms(res.p50), ms(res.p99), split.proxy, split.backend, split.wrk, split.softirq, split.other, loadAverage(), res.socketErrors)
			results[v.name] = append(results[v.name], res)
		}
	}

	medianOf := func(name string, f func(wrkResult) float64) float64 {
		var xs []float64
		for _, r := range results[name] {
			xs = append(xs, f(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	rate := func(r wrkResult) float64 { return r.reqPerSec }
	p99 := func(r wrkResult) float64 { return ms(r.p99) }
	rateRatio := medianOf("sluice", rate) / medianOf("nginx", rate)
	p99Ratio := medianOf("sluice", p99) / medianOf("nginx", p99)
	if len(results["loop"]) > 0 {
		fmt.Fprintf(os.Stderr, "http-proxy study: event loop %.0f req/s, p99 %.1f ms: %.2f of nginx's req/s, p99 %.2f×\n",
			medianOf("loop", rate), medianOf("loop", p99), medianOf("loop", rate)/medianOf("nginx", rate), medianOf("loop", p99)/medianOf("nginx", p99))
	}
	verdict := "met"
	if rateRatio < 0.8 || p99Ratio > 1.5 {
		verdict = "not met"
	}
	return row{
		Name:     fmt.Sprintf("HTTP proxy GET / → nginx `return 200`, wrk -t2 -c%d -d%s keep-alive (median of %d)", proxyConns, proxyDuration, proxyRounds),
		Sluice:   fmt.Sprintf("%.0f req/s, p99 %.1f ms", medianOf("sluice", rate), medianOf("sluice", p99)),
		Baseline: fmt.Sprintf("%.0f req/s, p99 %.1f ms (nginx proxy_pass)", medianOf("nginx", rate), medianOf("nginx", p99)),
		Ratio:    fmt.Sprintf("%.2f req/s, p99 %.2f×", rateRatio, p99Ratio),
		Target:   "≥ 0.80 req/s, p99 ≤ 1.5×: " + verdict,
	}, nil
}

// nginxConf is a foreground nginx whose files all live under dir.
// workers 0 means one per core.
func nginxConf(dir, name string, workers int, listen, location string, httpExtra ...string) string {
	w := "auto"
	if workers > 0 {
		w = strconv.Itoa(workers)
	}
	var temps strings.Builder
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "  %s_temp_path %s;\n", t, filepath.Join(dir, name+"-"+t))
	}
	return fmt.Sprintf(`master_process on;
worker_processes %s;
pid %s;
error_log %s warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
%s  %s
  server {
    listen %s reuseport backlog=4096;
    location / {
      %s
    }
  }
}
`, w, filepath.Join(dir, name+".pid"), filepath.Join(dir, name+"-error.log"), temps.String(), strings.Join(httpExtra, "\n"), listen, location)
}

func freePortAddr() (string, error) {
	p, err := freePort()
	return "127.0.0.1:" + p, err
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// procGroup owns the server processes of one benchmark. Each runs in a
// process group of its own, so that stopping it also stops nginx's
// workers, and gets SIGTERM if the benchmark dies without cleaning up.
type procGroup struct {
	mu    sync.Mutex
	procs []*proc
	once  sync.Once
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (g *procGroup) start(dir, name, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".out")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	g.procs = append(g.procs, p)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitServing waits until GET / at addr answers 200.
func (p *proc) waitServing(addr string) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			out, _ := os.ReadFile(p.log)
			return fmt.Errorf("%s exited before serving on %s:\n%s", p.name, addr, out)
		default:
		}
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s did not answer 200 on %s", p.name, addr)
}

// stopAll stops every process: SIGTERM to its group (nginx's fast
// shutdown, the gateway's drain), SIGKILL after five seconds, and a final
// SIGKILL to the group for any worker left behind.
func (g *procGroup) stopAll() {
	g.once.Do(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for _, p := range g.procs {
			_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
		}
		for _, p := range g.procs {
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				fmt.Fprintf(os.Stderr, "http-proxy: %s ignored SIGTERM, killing it\n", p.name)
			}
			_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
			<-p.done
		}
	})
}

// stopOnSignal stops the processes, removes dir and exits when the
// benchmark is interrupted; the returned function ends that.
func (g *procGroup) stopOnSignal(dir string) func() {
	sig := make(chan os.Signal, 1)
	quit := make(chan struct{})
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			g.stopAll()
			os.RemoveAll(dir)
			fmt.Fprintf(os.Stderr, "http-proxy: %v, servers stopped\n", s)
			os.Exit(1)
		case <-quit:
		}
	}()
	return func() { signal.Stop(sig); close(quit) }
}

type wrkResult struct {
	reqPerSec    float64
	p50, p99     time.Duration
	socketErrors string // wrk's "Socket errors" line, if any, shown with the round
	elapsed      time.Duration
	cpu          time.Duration // wrk's own CPU time
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runWrk loads url with wrk; only a measured run (latency) is parsed.
func runWrk(url, duration string, latency bool) (wrkResult, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(proxyConns), "-d" + duration}
	if latency {
		args = append(args, "--latency")
	}
	cmd := exec.Command("wrk", append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := wrkResult{elapsed: time.Since(start)}
	if err != nil {
		return res, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	res.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if !latency {
		return res, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			return res, fmt.Errorf("wrk saw failed requests:\n%s", out)
		case strings.HasPrefix(line, "Socket errors:"):
			res.socketErrors = "  (" + line + ")"
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			res.reqPerSec, err = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			res.p50, err = parseWrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.p99, err = parseWrkDuration(f[1])
		}
		if err != nil {
			return res, fmt.Errorf("parsing wrk output %q: %w", line, err)
		}
	}
	if res.reqPerSec == 0 || res.p99 == 0 {
		return res, fmt.Errorf("no Requests/sec or 99%% latency in wrk's output:\n%s", out)
	}
	return res, nil
}

// parseWrkDuration reads wrk's latencies: 823.00us, 40.61ms, 1.02s, 1.50m.
func parseWrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, err
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("unknown unit in %q", s)
}

// cpuSample is cumulative CPU ticks at one moment.
type cpuSample struct {
	at                            time.Time
	proxy, backend, busy, softirq int64
}

// cpuSplit is the cores each party used during a run. softirq is the
// kernel's loopback TCP work, accounted to no process; other is the rest
// of the machine, so a round where other is well above zero was disturbed
// by someone else's work and its numbers are noise.
type cpuSplit struct{ proxy, backend, wrk, softirq, other float64 }

func sampleCPU(proxyPgid, backendPgid int) cpuSample {
	s := cpuSample{at: time.Now(), proxy: groupTicks(proxyPgid), backend: groupTicks(backendPgid)}
	s.busy, s.softirq = machineTicks()
	return s
}

func (s cpuSample) since(before cpuSample, w wrkResult) cpuSplit {
	el := s.at.Sub(before.at).Seconds()
	cores := func(ticks int64) float64 { return float64(ticks) / clockTicks / el }
	c := cpuSplit{
		proxy:   cores(s.proxy - before.proxy),
		backend: cores(s.backend - before.backend),
		wrk:     w.cpu.Seconds() / el,
		softirq: cores(s.softirq - before.softirq),
	}
	c.other = cores(s.busy-before.busy) - c.proxy - c.backend - c.wrk
	return c
}

// groupTicks sums user+system ticks of the live processes in a process
// group (an nginx master and its workers, or the gateway).
func groupTicks(pgid int) int64 {
	entries, _ := os.ReadDir("/proc")
	var total int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the parenthesized command name, from field 3 (state).
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += utime + stime
	}
	return total
}

// machineTicks reads /proc/stat: busy is user+nice+system+irq+steal,
// softirq on its own.
func machineTicks() (busy, softirq int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	return n(1) + n(2) + n(3) + n(6) + n(8), n(7)
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
