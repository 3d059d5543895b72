#!/usr/bin/env bash
# Bridged-call and routing load test of centralita with SIPp on both sides,
# on loopback only. Bounded in calls and time; stops everything it starts
# (by PID).
#
#   scripts/bridge_load.sh bridged CALLS [HOLD]    CALLS callers dial the bench queue (500), each is
#                                                  routed to its own agent and bridged; both sides
#                                                  stream PCMA both ways; the agents hang up after
#                                                  HOLD s (default 90). Set up at max(50, CALLS/20)
#                                                  calls/s; relay rate and CPU are measured once
#                                                  every call is bridged.
#   scripts/bridge_load.sh routed RATE [SECONDS]   RATE calls/s for SECONDS (default 60) into the
#                                                  queue; agents answer at once and hang up after
#                                                  AGENT_HOLD_MS (default 1000); measures calls
#                                                  served per second and the time they take.
#
# Agents: AGENTS bench agents (default CALLS + 20 bridged, max(200, 2 x RATE)
# routed) with skill bench = 5 and no wrap-up, in a config generated from
# config/centralita.toml into a temp dir (one queue "bench", number 500).
# Each agent REGISTERs with digest auth (tests/sipp/bench_register.xml, MD5:
# its User-Agent is in registrar.md5_only_user_agents) naming one SIPp UAS
# (tests/sipp/bench_agent_uas.xml) on 127.0.0.1:5270 in its Contact, then
# dials *11 (ready). Callers: tests/sipp/bench_caller.xml.
# Audio: SIPp's rtp_stream loops the speech of SIPp's g711a.pcap (PCMA,
# 20 ms packets) from one RTP port per call; MEDIA=0 makes both sides silent.
# A caller who dials 500 goes straight into the queue (hold music, no menu);
# the script subtracts the agents' hold from the callers' 200-to-BYE time to
# show the time in the queue, ringing and the two BYEs.
#
# Uses target/release/centralita, or CENTRALITA_BIN=/path/to/centralita.
# Prints SIPp's summaries (callers and agents), the server's metrics (queue
# outcomes, relay rate, agents' states), CPU of each process over the steady
# window (from /proc), and the server log's error count.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh
repo=$PWD

usage="usage: scripts/bridge_load.sh bridged CALLS [HOLD] | routed RATE [SECONDS]"
mode=${1:?$usage}
arg=${2:?$usage}
bin=${CENTRALITA_BIN:-target/release/centralita}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
[ -x "$bin" ] || { echo "build first: cargo build --release (or set CENTRALITA_BIN)" >&2; exit 2; }
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 missing (extracts the pcap's audio)" >&2; exit 2; }
pcap=/usr/share/sip-tester/g711a.pcap
[ -r "$pcap" ] || { echo "$pcap missing (sip-tester)" >&2; exit 2; }
media=${MEDIA:-1}

sip=127.0.0.1:5290
http=127.0.0.1:8290
agent_port=5270
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && { echo "work dir kept: $work"; return; }
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

case "$mode" in
  bridged) hold=${3:-90}; agents=${AGENTS:-$((arg + 20))}; agent_hold_ms=$((hold * 1000)) ;;
  routed) secs=${3:-60}; agents=${AGENTS:-$((arg * 2 > 200 ? arg * 2 : 200))}; agent_hold_ms=${AGENT_HOLD_MS:-1000} ;;
  *) echo "$usage" >&2; exit 2 ;;
esac

pcap_to_alaw "$pcap" "$work/bench_audio.alaw"

# Config: the shipped one (its IVR names its queues), a trunk as large as the
# load, no in-band DTMF (speech must not press keys), SIPp's User-Agent
# offered MD5, plus the bench agents and queue.
sed -e "s#\"\.\./#\"$PWD/#" -e 's/^rtp_timeout_secs = .*/rtp_timeout_secs = 300/' \
  -e 's/^lines = .*/lines = 100000/' -e 's/^reserve = .*/reserve = 0/' \
  -e 's/^inband_dtmf = .*/inband_dtmf = false/' \
  -e 's/^md5_only_user_agents = .*/md5_only_user_agents = ["sipp-bench"]/' \
  config/centralita.toml >"$work/centralita.toml"
{
  printf 'SEQUENTIAL\n' >"$work/agents.csv"
  for i in $(seq "$agents"); do
    printf '\n[agents.bench%d]\nname = "Bench %d"\nsip_user = "b%d"\npassword = "pw-%d"\nskills = { bench = 5 }\nlevel = 1\nwrap_up_secs = 0\n' \
      "$i" "$i" "$i" "$i"
    printf 'b%d;pw-%d\n' "$i" "$i" >>"$work/agents.csv"
  done
  printf '\n[queues.bench]\nnumber = "500"\nskills = { bench = 1 }\nstrategy = "longest_idle"\nmax_wait_secs = 3600\non_max_wait = "accept"\non_no_agents = "accept"\nring_timeout_secs = 15\nannounce_every_secs = 0\n'
} >>"$work/centralita.toml"

sed -e "s#<pause milliseconds=\"60000\"/>#<pause milliseconds=\"$agent_hold_ms\"/>#" \
  tests/sipp/bench_agent_uas.xml >"$work/agent.xml"
cp tests/sipp/bench_caller.xml "$work/caller.xml"
if [ "$media" = 0 ]; then
  sed -i '/rtp_stream=/d' "$work/agent.xml" "$work/caller.xml"
fi

# From here on, the work dir is the current one (SIPp writes its traces there).
cd "$work"
start_server "$bin" "$work" "$sip" "$http"

udp_drops() { # UDP datagrams dropped by full receive buffers, machine-wide
  awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 } else print $c }' /proc/net/snmp
}
drops_start=$(udp_drops)
metric() { # sum of the samples whose line starts with $1
  curl -s "http://$http/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}
ticks() { # utime + stime of a process, in clock ticks
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
hz=$(getconf CLK_TCK)
cpu_all() { # busy and total jiffies of the whole machine
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# Total length of the test, to bound every process.
case "$mode" in
  bridged) rate=$((arg / 20 > 50 ? arg / 20 : 50)); total=$arg; bound=$((hold + arg / rate + 120)) ;;
  routed) rate=$arg; total=$((arg * secs)); bound=$((secs + 120)) ;;
esac

# The agents: one SIPp registers them all (and dials *11 for each), stays up
# for the whole test, and answers their calls with its out-of-call scenario.
sed -e "s#<pause milliseconds=\"600000\"/>#<pause milliseconds=\"$(((bound + 60) * 1000))\"/>#" \
  "$repo/tests/sipp/bench_register.xml" >"$work/register.xml"
echo "== $agents agents register (digest, MD5) and dial *11"
timeout $((bound + 120)) sipp "$sip" -sf "$work/register.xml" -oocsf "$work/agent.xml" -inf "$work/agents.csv" \
  -i 127.0.0.1 -p "$agent_port" -mi 127.0.0.1 -mp 50000 -m "$agents" -r 200 -l $((agents + 10)) \
  -nostdin -max_socket 65000 -trace_err >"$work/agents.log" 2>&1 &
uas_timeout=$!
pids+=($uas_timeout)
sleep 0.5
uas_pid=$(pgrep -P "$uas_timeout" -x sipp || echo "")
[ -n "$uas_pid" ] || { echo "agents' SIPp did not start:"; tail -n 5 "$work/agents.log"; exit 1; }
for _ in $(seq $((agents / 50 + 40))); do
  avail=$(curl -s "http://$http/metrics" | awk '/^centralita_agents\{state="available"\}/ { print $2 }')
  [ "${avail:-0}" -ge "$agents" ] && break
  sleep 0.5
done
echo "agents available: ${avail:-0} of $agents"
[ "${avail:-0}" -ge "$agents" ] || { echo "not every agent is available:"; tail -n 20 "$work/agents.log"; exit 1; }

caller_cmd=(sipp "$sip" -sf "$work/caller.xml" -i 127.0.0.1 -p 5291 -mi 127.0.0.1 -mp 40000
  -m "$total" -r "$rate" -nostdin -timeout "${bound}s" -timeout_error -max_socket 65000
  -trace_logs -trace_err)
case "$mode" in
  bridged)
    echo "== $arg bridged calls (set up at $rate calls/s), agents hang up after $hold s, media=$media"
    timeout $((bound + 30)) "${caller_cmd[@]}" -l "$arg" >"$work/callers.log" 2>&1 &
    caller_timeout=$!
    pids+=($caller_timeout)
    # Every call is bridged as soon as its agent answers.
    ramp=$((arg / rate))
    sleep $((ramp + 6))
    window=$((hold - ramp - 12 > 5 ? hold - ramp - 12 : 5))
    ;;
  routed)
    echo "== $total calls at $arg calls/s ($secs s), agents hang up after $agent_hold_ms ms, media=$media"
    timeout $((bound + 30)) "${caller_cmd[@]}" -l $((arg * 20 + 100)) >"$work/callers.log" 2>&1 &
    caller_timeout=$!
    pids+=($caller_timeout)
    # Steady state: from 10 s in (calls take ~4.5 s) to 5 s before the end.
    sleep 9
    window=$((secs - 15 > 5 ? secs - 15 : 5))
    ;;
esac
caller_pid=$(pgrep -P "$caller_timeout" -x sipp || echo "")
# Steady window: relay and routing rates, CPU of each process.
c2a0=$(metric 'centralita_rtp_packets_relayed_total{direction="caller_to_agent"}')
a2c0=$(metric 'centralita_rtp_packets_relayed_total{direction="agent_to_caller"}')
served0=$(metric 'centralita_queue_calls_total{outcome="served",queue="bench"}')
sent0=$(metric 'centralita_rtp_packets_sent_total')
s0=$(ticks "$server_pid"); c0=$(ticks "$caller_pid"); u0=$(ticks "$uas_pid"); t0=$(date +%s.%N)
read -r busy0 all0 < <(cpu_all)
oncall_max=0; waiting_max=0; longest_max=0
end=$(($(date +%s) + window))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep 1
  m=$(curl -s "http://$http/metrics")
  oc=$(awk '/^centralita_agents\{state="on_call"\}/ { print $2 }' <<<"$m")
  wq=$(awk '/^centralita_queue_waiting\{queue="bench"\}/ { print $2 }' <<<"$m")
  lw=$(awk '/^centralita_queue_longest_wait_seconds\{queue="bench"\}/ { print $2 }' <<<"$m")
  oncall_max=$(awk -v a="$oncall_max" -v b="${oc:-0}" 'BEGIN { print (b > a ? b : a) }')
  waiting_max=$(awk -v a="$waiting_max" -v b="${wq:-0}" 'BEGIN { print (b > a ? b : a) }')
  longest_max=$(awk -v a="$longest_max" -v b="${lw:-0}" 'BEGIN { print (b > a ? b : a) }')
done
t1=$(date +%s.%N); s1=$(ticks "$server_pid"); c1=$(ticks "$caller_pid"); u1=$(ticks "$uas_pid")
read -r busy1 all1 < <(cpu_all)
c2a1=$(metric 'centralita_rtp_packets_relayed_total{direction="caller_to_agent"}')
a2c1=$(metric 'centralita_rtp_packets_relayed_total{direction="agent_to_caller"}')
served1=$(metric 'centralita_queue_calls_total{outcome="served",queue="bench"}')
sent1=$(metric 'centralita_rtp_packets_sent_total')
rss=$(ps -o rss= -p "$server_pid" | tr -d ' ')
# Datagrams dropped so far by each open socket's full receive buffer (sockets
# of ended calls are gone): centralita's RTP ports, SIP ports, SIPp's RTP.
awk 'function hex(h,  i, n) { n = 0; for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1; return n }
  NR > 1 { split($2, a, ":"); p = hex(a[2]); d = $NF
    if (p >= 20000 && p <= 39999) r += d; else if (p == 5290) s += d; else if (p == 5270 || p == 5291) q += d; else o += d }
  END { printf "receive-buffer drops of open sockets: centralita RTP %d, centralita SIP %d, SIPp SIP %d, SIPp RTP and other %d\n", r, s, q, o }' /proc/net/udp || true
awk -v t0="$t0" -v t1="$t1" -v hz="$hz" -v s="$((s1 - s0))" -v c="$((c1 - c0))" -v u="$((u1 - u0))" \
  -v c2a="$((c2a1 - c2a0))" -v a2c="$((a2c1 - a2c0))" -v served="$((served1 - served0))" \
  -v sent="$((sent1 - sent0))" -v busy="$((busy1 - busy0))" -v all="$((all1 - all0))" -v ncpu="$(nproc)" -v oc="$oncall_max" -v wq="$waiting_max" -v lw="$longest_max" -v rss="$rss" 'BEGIN {
    d = t1 - t0
    printf "== steady window: %.1f s\n", d
    printf "agents on a call (max sampled): %d; callers waiting (max): %d; longest wait (max): %.2f s\n", oc, wq, lw
    printf "relayed caller->agent: %.0f packets/s, agent->caller: %.0f packets/s", c2a / d, a2c / d
    if (oc > 0) printf " (%.1f and %.1f per on-call agent)", c2a / d / oc, a2c / d / oc
    printf "\nplayed by the server (prompts, music): %.0f packets/s\n", sent / d
    printf "served from the queue: %.1f calls/s\n", served / d
    printf "CPU: centralita %.0f%%, SIPp callers %.0f%%, SIPp agents %.0f%% (of one core; 2 cores = 200%%)\n",
      100 * s / hz / d, 100 * c / hz / d, 100 * u / hz / d
    printf "machine: %.0f%% busy of %d%%\n", 100 * ncpu * busy / all, 100 * ncpu
    printf "server RSS: %d KiB\n", rss
  }'

caller_status=0
wait "$caller_timeout" || caller_status=$?
echo "== SIPp callers"
grep -E 'Call Rate|Successful call|Failed call|Response Time|Call Length' "$work/callers.log" | tail -n 6
echo "SIPp (callers) exit status: $caller_status"
# 200 -> server's BYE of each successful call, from the callers' logs.
log=$(ls "$work"/caller_*_logs.log 2>/dev/null | head -n 1)
if [ -n "$log" ]; then
  awk -F';' -v hold="$agent_hold_ms" '$2 == "answered" { a[$1] = $3 } $2 == "bye" && ($1 in a) { print $3 - a[$1] - hold }' "$log" \
    | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) exit;
      printf "queue + ring + answer (200-to-BYE minus the hold), %d calls: p50 %d ms, p90 %d ms, p99 %d ms, max %d ms\n",
        NR, v[int(NR * 0.5) + 1], v[int(NR * 0.9) + 1], v[int(NR * 0.99) + 1], v[NR] }'
fi
# The agents' SIPp stays up (its calls pause for the whole bound): stop it.
kill "$uas_pid" 2>/dev/null || true
echo "== SIPp agents (out-of-call scenario answering the offers)"
echo "agents SIPp aborted calls: $(cat "$work"/register_*_errors.log 2>/dev/null | grep -o 'Aborting call' | wc -l)"
echo "callers SIPp aborted calls: $(cat "$work"/caller_*_errors.log 2>/dev/null | grep -o 'Aborting call' | wc -l)"

echo "== server"
curl -s "http://$http/metrics" | grep -E '^centralita_calls_total|^centralita_queue_calls_total|^centralita_rtp_packets_(relayed|received|sent)_total|^centralita_rtp_packets_ignored_total|^centralita_agents\{|^centralita_calls_active|^centralita_queue_waiting' \
  | awk '$NF != 0'
curl -s "http://$http/metrics" | grep -E '^centralita_rtp_send_lateness_seconds_(bucket|count)' \
  | awk '/_bucket/ { split($1, a, "le=\""); le=a[2]; sub(/".*/, "", le); b[le]=$2; order[++n]=le; next } END {
      total=b["+Inf"]; if (total == 0) exit;
      for (q = 1; q <= 3; q++) { p = (q == 1 ? 0.5 : (q == 2 ? 0.99 : 0.999));
        for (i = 1; i <= n; i++) if (b[order[i]] >= p * total) { printf "prompt/music send lateness p%s <= %s s\n", p * 100, order[i]; break } } }'
echo "UDP receive-buffer drops (machine-wide, whole run): $(($(udp_drops) - drops_start))"
grep -ciE 'error|panic' "$work/server.log" | sed 's/^/server log error lines: /' || true
