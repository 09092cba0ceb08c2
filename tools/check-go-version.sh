#!/bin/sh
# check-go-version.sh GOVERSION FLOOR: fail when the toolchain is older than
# FLOOR (e.g. go1.26.8 against 1.25.5).
set -eu
have=${1#go}
floor=$2
lowest=$(printf '%s\n%s\n' "$have" "$floor" | sort -V | head -n1)
if [ "$lowest" != "$floor" ]; then
	echo "Go $have is older than $floor, the floor for the crypto/x509, encoding/pem and crypto/tls fixes ofmkeys relies on" >&2
	exit 1
fi
