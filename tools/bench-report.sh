#!/bin/sh
# bench-report.sh FILE: mean ns/op of each benchmark in FILE and the ratio
# `ofmkeys init` / openssl route.
set -eu
awk '
/^Benchmark/ {
	name = $1; if (name !~ /^BenchmarkScan\//) sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) {
		if ($(i+1) == "ns/op") { sum[name] += $i; n[name]++ }
		if ($(i+1) == "calls/s") { rate[name] += $i; nr[name]++ }
		if (name == "BenchmarkCheck" && $(i+1) ~ /-ms$/) { st = $(i+1); sub(/-ms$/, "", st); step[st] += $i; ns[st]++; if (!(st in order)) { order[st] = ++nsteps; names[nsteps] = st } }
	}
}
END {
	print ""
	print "benchmark                         mean ms/op   runs"
	for (k in sum) printf "%-32s %12.4f   %d\n", k, sum[k]/n[k]/1e6, n[k]
	o = "BenchmarkInit/ofmkeys"; s = "BenchmarkInit/openssl"
	if (n[o] && n[s]) printf "\nofmkeys init / openssl route (3 x RSA-2048): %.2fx (target <= 0.30x)\n", (sum[o]/n[o]) / (sum[s]/n[s])
	if (n["BenchmarkCheck"]) {
		printf "full proof against the sandbox (%d steps, mutual TLS on loopback): %.1f ms (target <= 1000 ms)\n", nsteps, sum["BenchmarkCheck"]/n["BenchmarkCheck"]/1e6
		split("discovery platform-jwks par authorize token data-call data-pages refresh providers consent-revoke webhook", flow, " ")
		for (i = 1; i in flow; i++) if (ns[flow[i]]) printf "    %-16s %8.2f ms\n", flow[i], step[flow[i]]/ns[flow[i]]
	}
	for (c = 1; c <= 2; c++) {
		o = "BenchmarkScan/ofmkeys"; r = "BenchmarkScan/raw-parse-loop"
		if (c == 2) { o = o "-2"; r = r "-2" }
		if (n[o] && n[r]) printf "scan of 10,000 certificate files on %d core(s): ofmkeys %.0f ms, raw parse loop %.0f ms: %.2fx (target <= 1.50x)\n", c, sum[o]/n[o]/1e6, sum[r]/n[r]/1e6, (sum[o]/n[o]) / (sum[r]/n[r])
	}
	if (n["BenchmarkStatusPage"]) printf "status page render (keyset mid-rotation, 50 watched certificates): %.2f ms\n", sum["BenchmarkStatusPage"]/n["BenchmarkStatusPage"]/1e6
	if (nr["BenchmarkDataCall"]) printf "sandbox data calls (signed request, JWE-in-JWS answer verified and decrypted; both cores): %.0f calls/s\n", rate["BenchmarkDataCall"]/nr["BenchmarkDataCall"]
	o = "BenchmarkRotationStep/rotation-step"; s = "BenchmarkRotationStep/raw-keygen"
	if (n[o] && n[s]) printf "rotation step (keygen + store writes + snapshot) / raw RSA-2048 keygen: %.2fx (target <= 1.30x)\n", (sum[o]/n[o]) / (sum[s]/n[s])
	for (c = 200; c <= 304; c += 104) {
		o = "BenchmarkServe/ofmkeys/" c; s = "BenchmarkServe/bare/" c
		if (n[o] && n[s]) printf "JWKS handler, in-process, %d: ofmkeys %.0f ns vs bare net/http %.0f ns per request (%.2fx the bare speed)\n", c, sum[o]/n[o], sum[s]/n[s], (sum[s]/n[s]) / (sum[o]/n[o])
	}
}' "$1"
