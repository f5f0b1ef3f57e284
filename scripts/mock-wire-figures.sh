#!/usr/bin/env bash
# The mock provider's own figures (issue 2, "it must not be the bottleneck"): the speed of a 50 MB curl
# upload, five times, and the mock's peak RSS while ten 50 MB uploads arrive at once.
# Usage: scripts/mock-wire-figures.sh [PYTHON]   (PYTHON defaults to python3 with the project installed)
set -euo pipefail
python=${1:-python3}
work=$(mktemp -d)
trap 'kill "$mock" "$sampler" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
head -c 52428800 /dev/urandom > "$work/f50.bin"
"$python" -m mock_provider --port 0 --profile calm > "$work/url.txt" 2> "$work/mock.err" &
mock=$!
sampler=$mock
for _ in $(seq 100); do url=$(head -1 "$work/url.txt"); [ -n "$url" ] && break; sleep 0.1; done
files="$url/glm/api/paas/v4/files"
upload() {
    curl -sS -o /dev/null -w '%{speed_upload}\n' -H 'Authorization: Bearer k' \
        -F purpose=batch -F "file=@$work/f50.bin" "$files"
}
echo "single 50 MB uploads (MB/s):"
for _ in 1 2 3 4 5; do upload | awk '{printf "  %.0f\n", $1 / 1e6}'; done
( while kill -0 "$mock" 2>/dev/null; do ps -o rss= -p "$mock"; sleep 0.05; done ) > "$work/rss.txt" &
sampler=$!
pids=()
for _ in $(seq 10); do upload > /dev/null & pids+=($!); done
wait "${pids[@]}"
sleep 0.3
echo "peak RSS while ten 50 MB uploads arrive at once: $(sort -n "$work/rss.txt" | tail -1 | awk '{printf "%.1f MiB", $1 / 1024}')"
