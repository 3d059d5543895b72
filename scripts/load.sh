#!/usr/bin/env bash
# Load test of centralita with SIPp, on loopback only. Bounded in calls and
# time; stops everything it starts (by PID).
#
#   scripts/load.sh rate RATE [SECONDS]      2-s prompt calls at RATE calls/s for SECONDS (default 60)
#   scripts/load.sh concurrent CALLS [HOLD]  CALLS calls held HOLD s (default 40), plus
#                                            100 sampled by examples/rtp_sampler for RTP pacing
#
# Uses target/release/centralita (build it first: cargo build --release) and
# prints SIPp's summary, the server's call outcomes and the RTP lateness
# histogram quantiles.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

mode=${1:?usage: scripts/load.sh rate RATE [SECONDS] | concurrent CALLS [HOLD]}
arg=${2:?missing RATE or CALLS}
bin=target/release/centralita
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 2; }

sip=127.0.0.1:5090
http=127.0.0.1:8090
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
# SIPp's callers send no RTP: give them 300 s before the RTP timeout hangs up.
# and a trunk as large as the load.
sed -e "s#\"\.\./#\"$PWD/#" -e 's/^rtp_timeout_secs = .*/rtp_timeout_secs = 300/' \
  -e 's/^lines = .*/lines = 100000/' config/centralita.toml >"$work/centralita.toml"
start_server "$bin" "$work" "$sip" "$http"

idle_rss=$(ps -o rss= -p "$server_pid" | tr -d ' ')
scenario=$PWD/tests/sipp/uac_prompt.xml
case "$mode" in
  rate)
    secs=${3:-60}
    total=$((arg * secs))
    echo "== $total calls of 2 s at $arg calls/s ($secs s)"
    (cd "$work" && timeout $((secs + 60)) sipp "$sip" -sf "$scenario" -i 127.0.0.1 -p 5091 \
      -mi 127.0.0.1 -mp 6000 -m "$total" -r "$arg" -l $((arg * 4 + 100)) -nostdin \
      -timeout $((secs + 40))s -timeout_error -max_socket 65000 \
      -trace_stat -fd 10 -stf stat.csv 2>&1 | tail -n 30) || echo "SIPp exit status: failed calls or timeout"
    ;;
  concurrent)
    hold=${3:-40}
    sed "s/<pause milliseconds=\"2000\"\/>/<pause milliseconds=\"$((hold * 1000))\"\/>/" "$scenario" >"$work/hold.xml"
    rate=$((arg / 10 > 50 ? arg / 10 : 50))
    echo "== $arg concurrent calls held $hold s (set up at $rate calls/s), 100 sampled"
    (cd "$work" && timeout $((hold + arg / rate + 90)) sipp "$sip" -sf "$work/hold.xml" -i 127.0.0.1 -p 5091 \
      -mi 127.0.0.1 -mp 6000 -m "$arg" -r "$rate" -l "$arg" -nostdin -timeout $((hold + arg / rate + 60))s \
      -timeout_error -max_socket 65000 >"$work/sipp.log" 2>&1; echo "SIPp exit $?" >>"$work/sipp.log") &
    pids+=($!)
    # Sample once every SIPp call is up, until they start to end.
    ramp=$((arg / rate))
    sleep $((ramp + 3))
    sample=$((hold - 8 > 5 ? hold - 8 : 5))
    echo "server RSS with the calls up: $(ps -o rss= -p "$server_pid") KiB (idle: $idle_rss KiB)"
    target/release/examples/rtp_sampler "$sip" 100 "$sample" || true
    wait "${pids[-1]}" || true
    tail -n 30 "$work/sipp.log"
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac

echo "== server"
curl -s "http://$http/metrics" | grep -E '^centralita_calls_total|^centralita_rtp_packets_sent_total|^centralita_rtp_send_lateness_seconds_(bucket|count|sum)' \
  | awk '/_bucket/ { split($1, a, "le=\""); le=a[2]; sub(/".*/, "", le); b[le]=$2; order[++n]=le; next } { print } END {
      total=b["+Inf"]; if (total == 0) exit;
      for (q = 1; q <= 3; q++) { p = (q == 1 ? 0.5 : (q == 2 ? 0.99 : 0.999));
        for (i = 1; i <= n; i++) if (b[order[i]] >= p * total) { printf "lateness p%s <= %s s\n", p * 100, order[i]; break } } }'
grep -ciE 'error|panic' "$work/server.log" | sed 's/^/server log error lines: /'
