# ofmkeys: `make run` makes (or shows) a keyset on the embedded file store, serves its JWKS and proves the keys;
# `make test` runs every test, building and installing what they need.
GO      ?= go
BIN     := bin/ofmkeys
VAULTDEV := tools/vaultdev/bin/vaultdev
JOSE    := tools/jose-interop/node_modules/jose/package.json
# The sandbox identity `make run` uses (override: make run DC_ID=… CLIENT_ID=… ORG=…).
DC_ID     ?= 0123456789abcdef01234567
CLIENT_ID ?= 6f1c7a9e-2b3d-4e5f-8a9b-0c1d2e3f4a5b
ORG       ?= Example Fintech Sdn Bhd

.PHONY: run build test lint bench vaultdev deps gofloor clean

build:
	$(GO) build -o $(BIN) ./cmd/ofmkeys

# Creates the sandbox keyset when the store has none, shows it, then runs the
# daemon in the foreground (Ctrl-C stops it) with a local sandbox OFP the keys
# are proven against, printing the JWKS, health and sandbox URLs.
run: build
	@./$(BIN) list 2>/dev/null || ./$(BIN) init --dc-id $(DC_ID) --client-id $(CLIENT_ID) --org "$(ORG)"
	@echo
	@./$(BIN) serve --sandbox

test: gofloor lint deps $(VAULTDEV) $(JOSE)
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The toolchain floor of RELIABILITY.md §7.8 (crypto/x509, encoding/pem and
# crypto/tls fixes).
gofloor:
	@$(GO) version
	@tools/check-go-version.sh "$$($(GO) env GOVERSION)" 1.25.5

# openssl and Node run the interop tests; Chromium renders the status page
# (headless); promtool checks the example alert rules; systemd-analyze the
# example unit. Each is installed from Debian when missing (Chromium and
# Prometheus once: ≈ 250 MB).
APT := apt-get install -y -qq --no-install-recommends
deps:
	@command -v openssl >/dev/null || (apt-get update -qq && $(APT) openssl)
	@command -v npm >/dev/null || (apt-get update -qq && $(APT) nodejs npm)
	@command -v chromium >/dev/null || (apt-get update -qq && $(APT) chromium)
	@command -v promtool >/dev/null || (apt-get update -qq && $(APT) prometheus)
	@command -v systemd-analyze >/dev/null || (apt-get update -qq && $(APT) systemd)

$(JOSE): tools/jose-interop/package.json tools/jose-interop/package-lock.json
	cd tools/jose-interop && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# A real Vault server built from Vault's Go modules (its own module; first
# build ~5 min and ~0.6 GB of modules, then seconds). Never committed.
vaultdev: $(VAULTDEV)
$(VAULTDEV): tools/vaultdev/main.go tools/vaultdev/go.mod tools/vaultdev/go.sum
	cd tools/vaultdev && $(GO) build -o bin/vaultdev .

# Benchmarks, side by side in one run, and the ratios the issues ask for:
# `ofmkeys init` against the openssl route; the daemon's handler against a
# bare net/http one in-process; then `ofmkeys serve` against bare net/http
# and nginx over loopback with wrk, and its idle memory; a rotation step
# against raw key generation, and the three-year rotation simulation; the
# full proof against the sandbox, step by step.
bench: deps build
	@command -v wrk >/dev/null || (apt-get update -qq && $(APT) wrk)
	@command -v nginx >/dev/null || (apt-get update -qq && $(APT) nginx-light)
	$(GO) test -run '^$$' -bench 'BenchmarkInit|BenchmarkCreateKeyset' -benchtime 20x -count 3 ./cmd/ofmkeys/ | tee bench.out
	$(GO) test -run '^$$' -bench 'BenchmarkServe' -benchtime 200000x -count 3 ./daemon/ | tee -a bench.out
	$(GO) test -run '^$$' -bench 'BenchmarkRotationStep' -benchtime 40x -count 3 ./rotation/ | tee -a bench.out
	$(GO) test -run '^$$' -bench 'BenchmarkCheck' -benchtime 30x -count 3 ./ofmcheck/sandbox/ | tee -a bench.out
	$(GO) test -run '^$$' -bench 'BenchmarkDataCall' -benchtime 400x -count 3 ./ofmcheck/sandbox/ | tee -a bench.out
	$(GO) test -run '^$$' -bench 'BenchmarkScan|BenchmarkStatusPage' -benchtime 5x -count 3 -cpu 1,2 ./monitor/ | tee -a bench.out
	@tools/bench-report.sh bench.out
	@echo; echo "Three years of rotation on a fake clock (wall time, every invariant checked at every tick):"
	@$(GO) test -count=1 -run 'TestThreeYears' -v ./rotation/ | grep -E '^--- (PASS|FAIL)'
	$(GO) run ./tools/servebench -ofmkeys $(BIN)

clean:
	rm -rf bin bench.out $(VAULTDEV) tools/jose-interop/node_modules
