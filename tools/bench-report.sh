#!/bin/sh
# bench-report.sh FILE: mean ns/op of each benchmark in FILE and the ratio
# `ofmkeys init` / openssl route.
set -eu
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) if ($(i+1) == "ns/op") { sum[name] += $i; n[name]++ }
}
END {
	print ""
	print "benchmark                         mean ms/op   runs"
	for (k in sum) printf "%-32s %12.4f   %d\n", k, sum[k]/n[k]/1e6, n[k]
	o = "BenchmarkInit/ofmkeys"; s = "BenchmarkInit/openssl"
	if (n[o] && n[s]) printf "\nofmkeys init / openssl route (3 x RSA-2048): %.2fx (target <= 0.30x)\n", (sum[o]/n[o]) / (sum[s]/n[s])
	if (n["BenchmarkCheck"]) printf "full proof against the sandbox (7 steps, mutual TLS on loopback): %.1f ms (target <= 1000 ms)\n", sum["BenchmarkCheck"]/n["BenchmarkCheck"]/1e6
	o = "BenchmarkRotationStep/rotation-step"; s = "BenchmarkRotationStep/raw-keygen"
	if (n[o] && n[s]) printf "rotation step (keygen + store writes + snapshot) / raw RSA-2048 keygen: %.2fx (target <= 1.30x)\n", (sum[o]/n[o]) / (sum[s]/n[s])
	for (c = 200; c <= 304; c += 104) {
		o = "BenchmarkServe/ofmkeys/" c; s = "BenchmarkServe/bare/" c
		if (n[o] && n[s]) printf "JWKS handler, in-process, %d: ofmkeys %.0f ns vs bare net/http %.0f ns per request (%.2fx the bare speed)\n", c, sum[o]/n[o], sum[s]/n[s], (sum[s]/n[s]) / (sum[o]/n[o])
	}
}' "$1"
