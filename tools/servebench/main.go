// Command servebench measures `ofmkeys serve` against a bare net/http
// handler serving the same bytes and against nginx serving the same file,
// with one load generator (wrk) and the same settings for each: full
// responses and conditional ones (If-None-Match → 304). It also reports the
// daemon's resident memory when idle. `make bench` runs it.
//
//	servebench -ofmkeys bin/ofmkeys [-duration 5s] [-connections 32]
//
// Run as `servebench -bare FILE -listen ADDR`, it is the bare server.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin := flag.String("ofmkeys", "bin/ofmkeys", "the ofmkeys binary")
	duration := flag.Duration("duration", 3*time.Second, "length of each wrk run")
	rounds := flag.Int("rounds", 3, "rounds; each round runs every server once, and the median round is reported")
	conns := flag.Int("connections", 32, "wrk connections")
	bare := flag.String("bare", "", "serve this file as the bare net/http server")
	listen := flag.String("listen", "", "address of the bare server")
	flag.Parse()
	if *bare != "" {
		serveBare(*bare, *listen)
		return
	}
	if err := run(*bin, *duration, *conns, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "servebench:", err)
		os.Exit(1)
	}
}

// serveBare is the reference: the JWKS bytes with the same caching headers,
// conditional requests by net/http's own ServeContent, nothing else.
func serveBare(file, addr string) {
	body, err := os.ReadFile(file)
	if err != nil {
		panic(err)
	}
	etag := `"bare"`
	modified := time.Now()
	http.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", modified, bytes.NewReader(body))
	})
	panic(http.ListenAndServe(addr, nil))
}

type target struct {
	name, url string
	pid       int
}

type result struct {
	rps      float64
	avg, p99 string
	non2xx   int
}

func run(bin string, duration time.Duration, conns, rounds int) error {
	for _, tool := range []string{"wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed (apt-get install wrk): %v", tool, err)
		}
	}
	tmp, err := os.MkdirTemp("", "servebench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	store := "file:" + filepath.Join(tmp, "store")
	init := exec.Command(bin, "init", "--store", store, "--dc-id", "0123456789abcdef01234567", "--client-id", "client-1", "--org", "Example")
	if out, err := init.CombinedOutput(); err != nil {
		return fmt.Errorf("ofmkeys init: %v\n%s", err, out)
	}
	portA, portB, portC := freePort(), freePort(), freePort()
	daemon := exec.CommandContext(ctx, bin, "serve", "--store", store, "--listen", "127.0.0.1:"+portA, "--snapshot-file", "", "--log-level", "warn")
	daemon.Stderr = os.Stderr
	if err := daemon.Start(); err != nil {
		return err
	}
	defer daemon.Process.Kill()
	ofm := target{"ofmkeys serve", "http://127.0.0.1:" + portA + "/.well-known/jwks.json", daemon.Process.Pid}
	body, err := waitReady(ofm.url)
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // let start-up settle before reading the idle RSS
	idleRSS := rss(ofm.pid)

	www := filepath.Join(tmp, "www")
	os.MkdirAll(www, 0o755)
	file := filepath.Join(www, "jwks.json")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		return err
	}
	self, _ := os.Executable()
	bareCmd := exec.CommandContext(ctx, self, "-bare", file, "-listen", "127.0.0.1:"+portB)
	if err := bareCmd.Start(); err != nil {
		return err
	}
	defer bareCmd.Process.Kill()
	bare := target{"bare net/http", "http://127.0.0.1:" + portB + "/jwks.json", bareCmd.Process.Pid}
	if _, err := waitReady(bare.url); err != nil {
		return err
	}
	targets := []target{ofm, bare}
	if ngx, stop, err := startNginx(ctx, tmp, www, portC); err == nil {
		defer stop()
		targets = append(targets, ngx)
	} else {
		fmt.Fprintf(os.Stderr, "servebench: nginx not measured: %v\n", err)
	}

	fmt.Printf("\nJWKS of %d bytes; wrk -t2 -c%d -d%s against each server in turn, %d rounds interleaved, median round shown\n\n", len(body), conns, duration, rounds)
	fmt.Printf("%-16s %-6s %12s %10s %10s %8s\n", "server", "answer", "requests/s", "avg", "p99", "errors")
	rates := map[string]float64{}
	for _, kind := range []string{"200", "304"} {
		runs := map[string][]result{}
		for range rounds {
			for _, t := range targets {
				var hdr []string
				if kind == "304" {
					etag, err := etagOf(t.url)
					if err != nil {
						return err
					}
					hdr = []string{"-H", "If-None-Match: " + etag}
				}
				r, err := wrk(t.url, duration, conns, hdr)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				runs[t.name] = append(runs[t.name], r)
			}
		}
		for _, t := range targets {
			r := median(runs[t.name])
			rates[t.name+kind] = r.rps
			fmt.Printf("%-16s %-6s %12.0f %10s %10s %8d\n", t.name, kind, r.rps, r.avg, r.p99, r.non2xx)
		}
	}
	loadRSS := rss(ofm.pid)
	fmt.Println()
	for _, kind := range []string{"200", "304"} {
		fmt.Printf("ofmkeys serve / bare net/http (%s): %.2fx (target >= 0.90x)\n", kind, rates["ofmkeys serve"+kind]/rates["bare net/http"+kind])
		if n := rates["nginx"+kind]; n > 0 {
			fmt.Printf("ofmkeys serve / nginx (%s):         %.2fx\n", kind, rates["ofmkeys serve"+kind]/n)
		}
	}
	fmt.Printf("ofmkeys serve resident memory: %.1f MiB idle (target <= 40 MiB), %.1f MiB after the load\n", idleRSS, loadRSS)
	return nil
}

// median is the run with the median request rate.
func median(rs []result) result {
	sorted := append([]result(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].rps < sorted[j].rps })
	return sorted[len(sorted)/2]
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// waitReady polls a server just started (another process) until it answers.
func waitReady(url string) ([]byte, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return body, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s did not answer in 10 s", url)
}

func etagOf(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if e := resp.Header.Get("ETag"); e != "" {
		return e, nil
	}
	return "", fmt.Errorf("%s sends no ETag", url)
}

var (
	rpsRE     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	latRE     = regexp.MustCompile(`Latency\s+([0-9.]+\w+)`)
	p99RE     = regexp.MustCompile(`99%\s+([0-9.]+\w+)`)
	non2xxRE  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+([0-9]+)`)
	socketsRE = regexp.MustCompile(`Socket errors: (.*)`)
)

func wrk(url string, d time.Duration, conns int, hdr []string) (result, error) {
	args := append([]string{"-t2", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}, hdr...)
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	s := string(out)
	var r result
	m := rpsRE.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk said:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := latRE.FindStringSubmatch(s); m != nil {
		r.avg = m[1]
	}
	if m := p99RE.FindStringSubmatch(s); m != nil {
		r.p99 = m[1]
	}
	if m := non2xxRE.FindStringSubmatch(s); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := socketsRE.FindStringSubmatch(s); m != nil {
		fmt.Fprintf(os.Stderr, "servebench: %s: socket errors %s\n", url, m[1])
	}
	return r, nil
}

// rss is a process's resident set in MiB, from /proc.
func rss(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// startNginx serves www on port with the same Cache-Control, when nginx is
// installed.
func startNginx(ctx context.Context, tmp, www, port string) (target, func(), error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return target{}, nil, err
	}
	conf := filepath.Join(tmp, "nginx.conf")
	os.MkdirAll(filepath.Join(tmp, "nginx-logs"), 0o755)
	err = os.WriteFile(conf, []byte(fmt.Sprintf(`
user root;
worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/nginx-logs;
  types { application/jwk-set+json json; }
  server {
    listen 127.0.0.1:%[2]s;
    root %[3]s;
    location = /jwks.json { add_header Cache-Control "public, max-age=300"; }
  }
}
`, tmp, port, www)), 0o644)
	if err != nil {
		return target{}, nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "-c", conf, "-p", tmp)
	if err := cmd.Start(); err != nil {
		return target{}, nil, err
	}
	t := target{"nginx", "http://127.0.0.1:" + port + "/jwks.json", cmd.Process.Pid}
	if _, err := waitReady(t.url); err != nil {
		cmd.Process.Kill()
		return target{}, nil, err
	}
	return t, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }, nil
}
