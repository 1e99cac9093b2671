#!/usr/bin/env bash
# chatbench smoke test (used by CI): build chatd and chatbench, start chatd on
# a temporary data folder with 127.0.0.1 ports, run a tiny connect and p2p
# load and a short host probe, stop chatd. Exits non-zero if chatbench fails (an error, or a failed
# check such as a lost message). No timing thresholds: CI machines vary.
#
# Usage: bench/smoke.sh        (from anywhere inside the repository)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/chatbench-smoke.XXXXXX")"
data="$work/data"
pid=""

cleanup() {
	status=$?
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		"$work/chatd" stop --data "$data" >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [[ $status -ne 0 && -f "$work/chatd.log" ]]; then
		echo "--- chatd log (last 50 lines) ---" >&2
		tail -n 50 "$work/chatd.log" >&2
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT

echo "smoke: building chatd and chatbench"
(cd "$root" && go build -o "$work/chatd" ./cmd/chatd && go build -o "$work/chatbench" ./cmd/chatbench)

echo "smoke: starting chatd on $data"
mkdir -p "$data"
"$work/chatd" --data "$data" --ws-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level warn >"$work/chatd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	[[ -s "$data/chatd.run" ]] && break
	kill -0 "$pid" 2>/dev/null || { echo "smoke: chatd exited before it was ready" >&2; exit 1; }
	sleep 0.1
done
[[ -s "$data/chatd.run" ]] || { echo "smoke: chatd not ready after 30s" >&2; exit 1; }

bench=("$work/chatbench")
echo "smoke: chatbench connect -n 300 --duration 3s"
"${bench[@]}" connect --data "$data" -n 300 --duration 3s --deadline 2m
echo "smoke: chatbench p2p --pairs 50 --rate 2000 --duration 3s"
"${bench[@]}" p2p --data "$data" --pairs 50 --rate 2000 --duration 3s --deadline 2m --json >"$work/p2p.json"
grep -q '"scenario":"p2p"' "$work/p2p.json" || { echo "smoke: p2p printed no JSON report" >&2; exit 1; }
echo "smoke: chatbench probe --duration 1s"
"${bench[@]}" probe --data "$data" --duration 1s --json >"$work/probe.json"
grep -q '"scenario":"probe"' "$work/probe.json" || { echo "smoke: probe printed no JSON report" >&2; exit 1; }
echo "smoke: ok"
