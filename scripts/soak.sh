#!/usr/bin/env bash
# Soak test of centralita (issue 11): MINUTES (default 60) of mixed traffic
# at half the measured capacity, then checks that nothing leaked, got stuck
# or went unaccounted. Loopback only (127.0.0.1); bounded (MINUTES, then a
# drain of at most DRAIN_MAX s); stops every process it starts, by PID, on
# any exit.
#
#   scripts/soak.sh [MINUTES]     (2 at least for the memory verdict: it
#                                  needs 6 samples after the warm-up)
#
# Half the measured capacity (docs/BENCHMARKS.md, "Bridged calls and routed
# calls/s", the current table "Callers straight into the queue"):
# - routed calls with audio on both sides: 600 calls/s pass with no failed
#   call, 800/s fail (the machine is full) -> RATE = 300 new callers/s;
# - concurrent two-way bridged calls: 1,800 pass, 2,000 do not -> at most
#   ~900 bridged at once: at 300 callers/s, 90 % of them reaching an agent,
#   15 % of the answers transferred (another agent's leg each) and agents
#   talking HOLD_MS = 3 s (0.5 s before a transfer, 1.5 s when the caller
#   hangs up first), ~850 calls are bridged at once;
# - prompt streams (load.sh concurrent: ~3,100 at p99 < 25 ms, half 1,550):
#   IVR callers hear ~6 s of prompts, callback callers ~11 s, abandoning
#   ones 2 s of announcements and music: ~1,000 streams at 300 callers/s.
# Measured since (docs/RELIABILITY.md, "Soak"): with every SIPp on the same
# two cores the soak's mix saturates this machine below 300/s (SIPp placed
# 229/s, the rest refused 503); RATE=110 passes. Use RATE to fit the machine.
# Agents: AGENTS = RATE x 6.5 + 20 (1,970 at 300/s), each busy ~4.5 s per
# answer (talk + WRAPUP 2 s): about 70 % occupied, so queues stay short and
# no caller waits long enough to race the scenarios' timers.
#
# The mix (MIX="queue ivr callback hangup abandon" in percent, default
# "40 30 10 10 10"), one SIPp for all callers (tests/sipp/soak_caller.xml,
# its kind from the injection file; keys by SIP INFO; PCMA audio both ways):
# - queue:    dials 201, 202, 203 or 200: straight into that queue; waits
#             until the agent hangs up (the server's BYE);
# - ivr:      dials soporte, presses 1 or 2 (language), then 1, 2, 3 or 0
#             (software, hardware, network, general); as above;
# - callback: dials soporte, presses 1, then 8 and types 600123456#: a
#             callback to that number in queue general through
#             acd.callback_trunk (the soak's IVR copy adds option 8, as
#             tests/interop_sipp.rs does); hears the confirmation, is hung
#             up; an agent is rung, then the trunk: a SIPp gateway
#             (tests/sipp/soak_gateway_uas.xml) answers and echoes the RTP;
# - hangup:   dials a queue and hangs up itself after CALLER_HANGUP_MS
#             (1500: talking with an agent by then);
# - abandon:  dials 590, a queue of the soak's that no agent serves, hangs
#             up after ABANDON_MS (2000).
# Agents: AGENTS SIPp agents (tests/sipp/bench_register.xml, digest MD5,
# *11, as scripts/bridge_load.sh) answering with
# tests/sipp/soak_agent_uas.xml: talk HOLD_MS then hang up; or, with
# probability XFER_PCT % (15; never a callback), after 0.5 s a blind
# transfer (REFER) of the caller to queue 202 or 203, where another agent
# answers. Skills software, hardware, redes, english = 5, wrap-up WRAPUP s.
# API reads: every API_EVERY s (5) GET /api/v1/queues, /agents, /calls,
# /tickets?limit=50, /tickets?status=open and the newest ticket, with the
# demo token (README), besides the sampler's /metrics.
#
# Checks, printed with the figures (exit status 1 if any fails):
# 1. memory: RSS (/proc/PID/status) and open fds (/proc/PID/fd) sampled
#    every SAMPLE_EVERY s (10). After WARMUP s (default: a third of the run,
#    30 s to 600 s; in the validation runs RSS climbed for ~6 minutes of
#    traffic, at 20 and at 60 callers/s alike, then stayed within 1 MiB),
#    the samples of the traffic window are cut in thirds;
#    PASS if the last third's maximum is at most the first third's maximum
#    + max(RSS_TOL_PCT % of it, RSS_TOL_MIB) (10 %, 8 MiB); fds the same
#    with FD_TOL (max(10 %, 16)); and, after the drain, fds back within
#    FD_IDLE_TOL (8) of the figure before the traffic. Why these: with the
#    same traffic the server's memory has no reason to grow, but it follows
#    the calls up (in the validation runs ~0.5 MiB of RSS per line in use:
#    the caller, its agent's leg and relay, the allocator's slack; lines in
#    use vary by +-5 % between samples), glibc's per-thread arenas and
#    SQLite's page caches (2 MiB per connection) fill in their own time
#    (the climb above), and one 10-s sample can catch a burst: 10 % covers
#    that, 8 MiB is the floor for small runs; each fd is a socket of a call
#    up (its RTP port and an agent's, each held by 3 or 4 fds),
#    so fds follow the calls up and only the idle figure is exact (SQLite's
#    files, listening sockets: 8 leaves room for a lazily opened reader
#    connection and the HTTP clients' keep-alive sockets). The growth per
#    call between the two thirds is printed too: a leak of a few hundred
#    bytes per call stays under 8 MiB in a short run but not in an hour.
# 2. agents: after the traffic and the drain (wrap-ups passed), every soak
#    agent is available (GET /api/v1/agents).
# 3. tickets: no live call (GET /api/v1/calls empty, lines in use 0,
#    callbacks pending 0) and no ticket whose last call is still up
#    (last_outcome null, walking every ticket of GET /api/v1/tickets);
#    one ticket per caller SIPp placed.
# 4. logbook: `centralita logbook verify` over the store exits 0.
# 5. accounting: the callers SIPp placed = the growth of
#    centralita_calls_total summed over outcomes (agents' *11 calls are
#    counted before the traffic and left out), and by outcome: agent_hangup
#    = queue + ivr callers, ivr_hangup = callback callers, caller_hangup =
#    hangup + abandon callers, every other outcome 0; transfers done =
#    REFERs the SIPp agents sent, none refused; callbacks: requested =
#    called_back = calls the gateway took, none gave up.
# 6. API: every read answered 200.
# 7. SIPp: no failed call among the callers, agents and gateway.
#
# Env: RATE, AGENTS, HOLD_MS, WRAPUP, XFER_PCT, MIX, CALLER_HANGUP_MS,
# ABANDON_MS, MEDIA (0: silent SIPp), API_EVERY, SAMPLE_EVERY, WARMUP,
# RSS_TOL_PCT, RSS_TOL_MIB, FD_TOL, FD_IDLE_TOL, DRAIN_MAX (120),
# CENTRALITA_BIN (default target/release/centralita, copied into the work
# dir so that a rebuild meanwhile does not matter), KEEP_WORK=1 keeps the
# work dir (config, store, SIPp logs), SOAK_OUT (target/soak).
# Figures: SOAK_OUT/soak-<time>.txt (what is printed) and
# SOAK_OUT/soak-<time>-samples.csv (time, RSS, fds, threads, lines in use,
# agents on call, calls ended).
#
# Needs sipp (apt-get install sip-tester), curl, python3, and room in TMPDIR
# for the store (~1.5 KB a caller: ~2 GB for the default hour). Ports: SIP
# 127.0.0.1:5390, HTTP 127.0.0.1:8390, RTP 20000-39999; SIPp agents 5370,
# callers 5391, gateway 5395; SIPp's UDP control sockets 8871-8873 (SIPp
# always opens one, on every interface; the script sends them "Q", to
# 127.0.0.1, to stop the gateway and agents with their statistics written).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh disable=SC1091
. scripts/common.sh
repo=$PWD

minutes=${1:-60}
case "$minutes" in '' | *[!0-9]*) echo "usage: scripts/soak.sh [MINUTES]" >&2; exit 2 ;; esac
[ "$minutes" -ge 1 ] || { echo "MINUTES must be at least 1" >&2; exit 2; }
rate=${RATE:-300}
agents=${AGENTS:-$((rate * 13 / 2 + 20))}
hold_ms=${HOLD_MS:-3000}
wrapup=${WRAPUP:-2}
xfer_pct=${XFER_PCT:-15}
read -r mix_queue mix_ivr mix_callback mix_hangup mix_abandon <<<"${MIX:-40 30 10 10 10}"
caller_hangup_ms=${CALLER_HANGUP_MS:-1500}
abandon_ms=${ABANDON_MS:-2000}
media=${MEDIA:-1}
api_every=${API_EVERY:-5}
sample_every=${SAMPLE_EVERY:-10}
secs=$((minutes * 60))
warmup=${WARMUP:-$((secs / 3 < 30 ? 30 : (secs / 3 > 600 ? 600 : secs / 3)))}
rss_tol_pct=${RSS_TOL_PCT:-10}
rss_tol_mib=${RSS_TOL_MIB:-8}
fd_tol=${FD_TOL:-16}
fd_idle_tol=${FD_IDLE_TOL:-8}
drain_max=${DRAIN_MAX:-120}
out_dir=${SOAK_OUT:-target/soak}

bin=${CENTRALITA_BIN:-target/release/centralita}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
if [ ! -x "$bin" ] && [ -z "${CENTRALITA_BIN:-}" ]; then
  echo "== building the release binary (cargo build --release)"
  cargo build --release
fi
[ -x "$bin" ] || { echo "no binary at $bin (cargo build --release, or set CENTRALITA_BIN)" >&2; exit 2; }
for tool in sipp curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (sipp: apt-get install sip-tester)" >&2; exit 2; }
done
pcap=/usr/share/sip-tester/g711a.pcap
[ -r "$pcap" ] || { echo "$pcap missing (sip-tester)" >&2; exit 2; }
[ $((mix_queue + mix_ivr + mix_callback + mix_hangup + mix_abandon)) -eq 100 ] || {
  echo "MIX must add up to 100 (queue ivr callback hangup abandon)" >&2; exit 2; }

sip=127.0.0.1:5390
http=127.0.0.1:8390
agent_port=5370
caller_port=5391
gw_port=5395
token=demo-token-change-me
auth="Authorization: Bearer $token"
work=$(mktemp -d)
pids=()
server_pid=""
cleanup() {
  local p
  for p in "${pids[@]}"; do
    pkill -P "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work dir kept: $work"; return; fi
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

case "$out_dir" in /*) ;; *) out_dir=$repo/$out_dir ;; esac
mkdir -p "$out_dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
report=$out_dir/soak-$stamp.txt
samples=$out_dir/soak-$stamp-samples.csv
: >"$report"
say() { printf '%s\n' "$*" | tee -a "$report"; }
failures=0
verdict() { # NAME OK(0/1) DETAIL
  if [ "$2" = 1 ]; then say "CHECK $1: PASS ($3)"; else say "CHECK $1: FAIL ($3)"; failures=$((failures + 1)); fi
}

# The binary, copied: the other build going on in target/ may replace it.
bin_src=$bin
cp "$bin" "$work/centralita"
bin=$work/centralita

pcap_to_alaw "$pcap" "$work/bench_audio.alaw"

# Config: the shipped one, as bridge_load.sh makes it (a trunk as large as
# the load, no in-band DTMF, SIPp's User-Agent offered MD5), plus the
# callback trunk (the gateway SIPp), the IVR from a copy with option 8
# (a callback to a typed number), the soak agents and the unserved queue.
cp -r ivr "$work/ivr"
cat >>"$work/ivr/soporte.toml" <<'EOF'

# scripts/soak.sh: 8, the number to be called back on, then #: a callback
# through acd.callback_trunk (as tests/interop_sipp.rs does).
[menu.principal.options.8]
action = "collect"
field = "phone"
prompts = ["ticket_prompt"]
max_length = 15
terminator = "#"
next = { action = "callback", queue = "general", number_field = "phone", prompt = "callback_confirm", goodbye = "goodbye" }
EOF
sed -e "s#^dir = \"\.\./ivr\"#dir = \"$work/ivr\"#" -e "s#\"\.\./#\"$PWD/#" \
  -e 's/^rtp_timeout_secs = .*/rtp_timeout_secs = 300/' \
  -e 's/^lines = .*/lines = 100000/' -e 's/^reserve = .*/reserve = 0/' \
  -e 's/^inband_dtmf = .*/inband_dtmf = false/' \
  -e 's/^md5_only_user_agents = .*/md5_only_user_agents = ["sipp-bench"]/' \
  -e "s/^# callback_trunk = .*/callback_trunk = \"sip:127.0.0.1:$gw_port\"/" \
  config/centralita.toml >"$work/centralita.toml"
grep -q "^callback_trunk = \"sip:127.0.0.1:$gw_port\"" "$work/centralita.toml" || {
  echo "config/centralita.toml has no '# callback_trunk = ' line to set" >&2; exit 2; }
printf 'SEQUENTIAL\n' >"$work/agents.csv"
{
  for i in $(seq "$agents"); do
    printf '\n[agents.soak%d]\nname = "Soak %d"\nsip_user = "s%d"\npassword = "pw-%d"\n' "$i" "$i" "$i" "$i"
    printf 'skills = { software = 5, hardware = 5, redes = 5, english = 5 }\nlevel = 1\nwrap_up_secs = %d\n' "$wrapup"
    printf 's%d;pw-%d\n' "$i" "$i" >>"$work/agents.csv"
  done
  printf '\n[queues.soak_abandon]\nnumber = "590"\nskills = { soak_nobody = 5 }\nmax_wait_secs = 3600\non_max_wait = "accept"\non_no_agents = "accept"\n'
} >>"$work/centralita.toml"
"$bin" --config "$work/centralita.toml" check-config >"$work/check-config.log" 2>&1 || {
  echo "the generated config does not check:" >&2; cat "$work/check-config.log" >&2; exit 2; }

# The callers' injection file: 100 rows in the MIX proportions, spread
# evenly (each kind at its own pace through the cycle).
python3 - "$work/callers.csv" "$mix_queue" "$mix_ivr" "$mix_callback" "$mix_hangup" "$mix_abandon" <<'EOF'
import sys
path, shares = sys.argv[1], [int(x) for x in sys.argv[2:]]
rows = {
    1: [f"1;{n};;" for n in ("201", "202", "203", "200")],
    2: [f"2;soporte;{lang};{key}" for lang in ("1", "2") for key in ("1", "2", "3", "0")],
    3: ["3;soporte;1;8"],
    4: [f"4;{n};;" for n in ("201", "202", "203")],
    5: ["5;590;;"],
}
# Bresenham: at each of the 100 slots take the kind furthest behind its share.
made, seen, out = [0] * 5, [0] * 5, []
for slot in range(1, 101):
    k = max(range(5), key=lambda i: shares[i] * slot / 100 - made[i])
    made[k] += 1
    kind = k + 1
    out.append(rows[kind][seen[k] % len(rows[kind])])
    seen[k] += 1
with open(path, "w") as f:
    f.write("SEQUENTIAL\n" + "\n".join(out) + "\n")
EOF

# Scenarios: the script's times and odds; MEDIA=0 silences SIPp.
half_pct=$(awk -v p="$xfer_pct" 'BEGIN { print p / 2 }')
sed -e "s/timeout=\"3000\" ontimeout=\"hangup\"/timeout=\"$hold_ms\" ontimeout=\"hangup\"/" \
  -e "s/compare=\"less_than\" value=\"15\"/compare=\"less_than\" value=\"$xfer_pct\"/" \
  -e "s/compare=\"less_than\" value=\"7.5\"/compare=\"less_than\" value=\"$half_pct\"/" \
  tests/sipp/soak_agent_uas.xml >"$work/agent.xml"
sed -e "s/timeout=\"1500\" ontimeout=\"our_bye\"/timeout=\"$caller_hangup_ms\" ontimeout=\"our_bye\"/" \
  -e "s/timeout=\"2000\" ontimeout=\"our_bye\"/timeout=\"$abandon_ms\" ontimeout=\"our_bye\"/" \
  tests/sipp/soak_caller.xml >"$work/caller.xml"
cp tests/sipp/soak_gateway_uas.xml "$work/gateway.xml"
if [ "$media" = 0 ]; then
  sed -i '/rtp_stream=/d' "$work/agent.xml" "$work/caller.xml"
fi

# The API and ticket helpers (JSON from 127.0.0.1 only).
cat >"$work/soak_api.py" <<'EOF'
import json, sys, urllib.request
base, token, what = sys.argv[1], sys.argv[2], sys.argv[3]
def get(path):
    req = urllib.request.Request(f"http://{base}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)
if what == "agents":
    # soak agents not available: count and the first few with their state
    bad = [(a["id"], a["state"], a.get("reason")) for a in get("/api/v1/agents")["agents"]
           if a["id"].startswith("soak") and a["state"] != "available"]
    total = sum(1 for a in get("/api/v1/agents")["agents"] if a["id"].startswith("soak"))
    print(len(bad), total, " ".join(f"{i}={s}" + (f"({r})" if r else "") for i, s, r in bad[:10]))
elif what == "calls":
    calls = get("/api/v1/calls")["calls"]
    print(len(calls), json.dumps(calls[:3]))
elif what == "tickets":
    # every ticket, newest first, 200 a page
    n = up = calls = 0
    status, outcomes, stuck, cursor = {}, {}, [], None
    while True:
        page = get("/api/v1/tickets?limit=200" + (f"&cursor={cursor}" if cursor else ""))
        for t in page["tickets"]:
            n += 1
            calls += t["calls"]
            status[t["status"]] = status.get(t["status"], 0) + 1
            o = t["last_outcome"]
            outcomes[o] = outcomes.get(o, 0) + 1
            if o is None:
                up += 1
                if len(stuck) < 10:
                    stuck.append(str(t["number"]))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    st = ",".join(f"{k}={v}" for k, v in sorted(status.items()))
    oc = ",".join(f"{k}={v}" for k, v in sorted(outcomes.items(), key=lambda kv: str(kv[0])))
    print(n, up, calls, st, oc, " ".join(stuck) or "-")
elif what == "newest":
    t = get("/api/v1/tickets?limit=1")["tickets"]
    print(t[0]["number"] if t else "")
EOF
api() { python3 "$work/soak_api.py" "$http" "$token" "$@"; }
metric() { # sum of the samples whose line starts with $1 (from the page in $m, or a fresh one)
  awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%d\n", s }' <<<"${m:-$(curl -s "http://$http/metrics")}"
}
proc_rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
proc_fds() { find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
sipp_stat() { # the last value of column $2 of SIPp's statistics file $1
  awk -F';' -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next } c { v = $c } END { printf "%d\n", v }' "$1" 2>/dev/null || echo 0
}
sipp_quit() { # SIPp's control socket: Q, quit now (its logs and statistics flushed)
  printf 'Q' >"/dev/udp/127.0.0.1/$1" 2>/dev/null || true
}

overrides=$(env | grep -E '^(RATE|AGENTS|HOLD_MS|WRAPUP|XFER_PCT|MIX|CALLER_HANGUP_MS|ABANDON_MS|MEDIA|API_EVERY|SAMPLE_EVERY|WARMUP|RSS_TOL_PCT|RSS_TOL_MIB|FD_TOL|FD_IDLE_TOL|DRAIN_MAX|CENTRALITA_BIN)=' | sort | sed -E 's/^([^=]*)=(.*[ ].*)$/\1="\2"/' | tr '\n' ' ' || true)
say "== centralita soak, $(date -u +%FT%TZ): $minutes min at $rate callers/s, $agents agents"
say "command: ${overrides}scripts/soak.sh $minutes"
say "mix (percent): queue $mix_queue, ivr $mix_ivr, callback $mix_callback, hangup $mix_hangup, abandon $mix_abandon;" \
  "agents talk $hold_ms ms, wrap up $wrapup s, transfer $xfer_pct %; media=$media; API reads every $api_every s"
say "binary: ${CENTRALITA_BIN:-target/release/centralita} (built $(stat -c %y "$bin_src" | cut -d. -f1)); work dir $work"

# From here on, the work dir is the current one (SIPp writes its logs there).
cd "$work"
if curl -s --max-time 2 "http://$http/health" >/dev/null 2>&1; then
  echo "something already answers on $http: another soak?" >&2; exit 2
fi
start_server "$bin" "$work" "$sip" "$http"
sleep 0.5
kill -0 "$server_pid" 2>/dev/null || { echo "the server exited:" >&2; tail "$work/server.log" >&2; exit 1; }
idle_rss=$(proc_rss); idle_fds=$(proc_fds)
say "server pid $server_pid: idle RSS $idle_rss KiB, $idle_fds fds"

bound=$((secs + drain_max + 600))

# The agents: one SIPp registers them all and dials *11 for each, stays up,
# and answers their offers with its out-of-call scenario.
sed -e "s#<pause milliseconds=\"600000\"/>#<pause milliseconds=\"$((bound * 1000))\"/>#" \
  "$repo/tests/sipp/bench_register.xml" >"$work/register.xml"
timeout $((bound + 60)) sipp "$sip" -sf "$work/register.xml" -oocsf "$work/agent.xml" -inf "$work/agents.csv" \
  -i 127.0.0.1 -p "$agent_port" -mi 127.0.0.1 -mp 50000 -m "$agents" -r 200 -l $((agents + 10)) \
  -cp 8871 -nostdin -max_socket 65000 -trace_logs -trace_err -trace_stat -stf "$work/agents_stat.csv" -fd 5 \
  >"$work/agents.log" 2>&1 &
agents_timeout=$!
pids+=("$agents_timeout")
sleep 0.5
agents_pid=$(pgrep -P "$agents_timeout" -x sipp || echo "")
[ -n "$agents_pid" ] || { echo "agents' SIPp did not start:"; tail -n 5 "$work/agents.log"; exit 1; }
avail=0
for _ in $(seq $((agents / 50 + 40))); do
  avail=$(curl -s "http://$http/metrics" | awk '/^centralita_agents\{state="available"\}/ { print $2 }')
  [ "${avail:-0}" -ge "$agents" ] && break
  sleep 0.5
done
[ "${avail:-0}" -ge "$agents" ] || { say "only ${avail:-0} of $agents agents available:"; tail -n 20 "$work/agents.log"; exit 1; }
# Their *11 calls end once "Disponible." is played: wait for them, so that
# the baseline (calls counted, fds) has no call up.
for _ in $(seq 60); do
  ready_calls=$(metric 'centralita_calls_total{')
  [ "$ready_calls" -ge "$agents" ] && [ "$(metric 'centralita_calls_active')" = 0 ] && break
  sleep 0.5
done
sleep 1
ready_calls=$(metric 'centralita_calls_total{')
base_rss=$(proc_rss); base_fds=$(proc_fds)
say "agents available: $avail of $agents (their *11 calls: $ready_calls in centralita_calls_total); RSS $base_rss KiB, $base_fds fds"

# The callback trunk's gateway, up until the end.
timeout $((bound + 60)) sipp "$sip" -sf "$work/gateway.xml" -i 127.0.0.1 -p "$gw_port" -mi 127.0.0.1 -mp 45000 \
  -rtp_echo -cp 8873 -nostdin -max_socket 65000 -trace_err -trace_stat -stf "$work/gateway_stat.csv" -fd 1 \
  >"$work/gateway.log" 2>&1 &
pids+=($!)

# The sampler: RSS, fds, threads, lines in use, agents on call, calls ended.
echo "time,rss_kib,rss_anon_kib,rss_file_kib,fds,threads,lines_in_use,agents_on_call,calls_ended" >"$samples"
sampler() {
  local next t m
  next=$(date +%s)
  while [ ! -e "$work/stop_sampler" ] && [ -d "/proc/$server_pid" ]; do
    t=$(date +%s)
    m=$(curl -s --max-time 5 "http://$http/metrics" || true)
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$t" "$(proc_rss)" \
      "$(awk '/^RssAnon:/ { print $2 }' "/proc/$server_pid/status")" \
      "$(awk '/^RssFile:/ { print $2 }' "/proc/$server_pid/status")" "$(proc_fds)" \
      "$(awk '/^Threads:/ { print $2 }' "/proc/$server_pid/status")" \
      "$(metric 'centralita_lines_in_use{')" \
      "$(awk '/^centralita_agents\{state="on_call"\}/ { printf "%d", $2 }' <<<"$m")" \
      "$(metric 'centralita_calls_total{')" >>"$samples"
    next=$((next + sample_every))
    sleep $((next - $(date +%s) > 0 ? next - $(date +%s) : 0))
  done
}
sampler &
pids+=($!)

# The API reader: the desk's reads, with the demo token; one line per read.
api_reader() {
  local path n
  while [ ! -e "$work/stop_api" ]; do
    n=$(curl -s --max-time 10 -H "$auth" "http://$http/api/v1/tickets?limit=1" | grep -o '"number":[0-9]*' | head -n 1 | cut -d: -f2 || true)
    for path in /api/v1/queues /api/v1/agents /api/v1/calls '/api/v1/tickets?limit=50' \
      '/api/v1/tickets?status=open&limit=20' ${n:+/api/v1/tickets/$n}; do
      printf '%s %s\n' "$path" "$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 -H "$auth" "http://$http$path" || true)" >>"$work/api.log"
    done
    sleep "$api_every"
  done
}
api_reader &
pids+=($!)

# The callers.
total=$((rate * secs))
say "== traffic: $total callers at $rate/s for $minutes min"
t0=$(date +%s)
timeout $((secs + 300)) sipp "$sip" -sf "$work/caller.xml" -inf "$work/callers.csv" -i 127.0.0.1 -p "$caller_port" \
  -mi 127.0.0.1 -mp 40000 -m "$total" -r "$rate" -l $((rate * 60 + 100)) -cp 8872 -nostdin -max_socket 65000 \
  -trace_logs -trace_err -trace_stat -stf "$work/callers_stat.csv" -fd 5 >"$work/callers.log" 2>&1 &
callers_timeout=$!
pids+=("$callers_timeout")
callers_status=0
wait "$callers_timeout" || callers_status=$?
t1=$(date +%s)
say "callers' SIPp done after $((t1 - t0)) s (exit status $callers_status)"

# The drain: no call up, no line taken, no callback pending, every agent
# available (wrap-ups passed), for at most DRAIN_MAX s.
drain_ok=0
for _ in $(seq $((drain_max / 2))); do
  m=$(curl -s "http://$http/metrics")
  read -r not_avail _ _ < <(api agents)
  read -r live _ < <(api calls)
  if [ "$live" = 0 ] && [ "$(metric 'centralita_lines_in_use{')" = 0 ] &&
    [ "$(metric 'centralita_queue_callbacks_pending{')" = 0 ] && [ "$not_avail" = 0 ]; then
    drain_ok=1
    break
  fi
  sleep 2
done
m=
t2=$(date +%s)
say "drain: $((t2 - t1)) s ($([ "$drain_ok" = 1 ] && echo "quiet" || echo "NOT quiet after $drain_max s"))"
sleep "$sample_every"
touch "$work/stop_api" "$work/stop_sampler"
sleep 1
sipp_quit 8873
after_rss=$(proc_rss); after_fds=$(proc_fds)

# ---- figures and checks -------------------------------------------------
say "== figures"
m=$(curl -s "http://$http/metrics")
say "centralita_calls_total by outcome (traffic only, *11 calls left out of ivr_hangup):"
declare -A out
ended=0
for o in agent_hangup caller_hangup ivr_hangup cancelled timeout failed unavailable blocked no_codec not_found shutdown; do
  v=$(metric "centralita_calls_total{outcome=\"$o\"}")
  [ "$o" = ivr_hangup ] && v=$((v - ready_calls))
  out[$o]=$v
  ended=$((ended + v))
  [ "$v" = 0 ] || say "  $o $v"
done
transfers_done=$(metric 'centralita_transfers_total{how="refer",result="done",to="queue"}')
transfers_refused=$(metric 'centralita_transfers_total{how="refer",result="refused"')
transfers_all=$(metric 'centralita_transfers_total{')
cb_requested=$(metric 'centralita_ivr_callback_requests_total{')
called_back=$(metric 'centralita_queue_calls_total{outcome="called_back"')
cb_gave_up=$(metric 'centralita_queue_calls_total{outcome="callback_gave_up"')
abandoned=$(metric 'centralita_queue_calls_total{outcome="abandoned"')
served=$(metric 'centralita_queue_calls_total{outcome="served"')
say "queues: served $served, abandoned $abandoned, callbacks requested $cb_requested, called back $called_back, gave up $cb_gave_up"
say "transfers: $transfers_all (refer to a queue, done: $transfers_done; refused: $transfers_refused)"

callers_log=$(find "$work" -maxdepth 1 -name 'caller_*_logs.log' | head -n 1)
agents_log=$(find "$work" -maxdepth 1 -name 'register_*_logs.log' | head -n 1)
kind_count() { awk -F';' -v k="$1" '$2 == "answered" && $3 == k { n++ } END { printf "%d\n", n }' "${callers_log:-/dev/null}"; }
n_queue=$(kind_count 1); n_ivr=$(kind_count 2); n_callback=$(kind_count 3); n_hangup=$(kind_count 4); n_abandon=$(kind_count 5)
created=$(sipp_stat "$work/callers_stat.csv" 'TotalCallCreated')
callers_ok=$(sipp_stat "$work/callers_stat.csv" 'SuccessfulCall(C)')
callers_failed=$(sipp_stat "$work/callers_stat.csv" 'FailedCall(C)')
say "SIPp callers: $created placed ($(awk -v n="$created" -v d="$((t1 - t0))" 'BEGIN { printf "%.1f", d ? n / d : 0 }')/s)," \
  "$callers_ok successful, $callers_failed failed; answered by kind: queue $n_queue, ivr $n_ivr, callback $n_callback, hangup $n_hangup, abandon $n_abandon"
agent_answers=$(grep -c '^answer;' "${agents_log:-/dev/null}" || true)
agent_refers=$(grep -c '^refer;' "${agents_log:-/dev/null}" || true)
agent_hangups=$(grep -c '^hangup;' "${agents_log:-/dev/null}" || true)
agent_caller_byes=$(grep -c '^caller_bye;' "${agents_log:-/dev/null}" || true)
agent_callbacks=$(grep -c '^callback;' "${agents_log:-/dev/null}" || true)
agents_failed=$(sipp_stat "$work/agents_stat.csv" 'FailedCall(C)')
sleep 1
gw_ok=$(sipp_stat "$work/gateway_stat.csv" 'SuccessfulCall(C)')
gw_failed=$(sipp_stat "$work/gateway_stat.csv" 'FailedCall(C)')
say "SIPp agents: $agent_answers offers answered ($agent_callbacks callbacks), $agent_hangups hung up after the talk," \
  "$agent_caller_byes hung up on by the caller, $agent_refers REFERs; $agents_failed failed"
say "SIPp gateway (callback trunk): $gw_ok calls taken, $gw_failed failed"
say "offers answered $agent_answers = served $served + transfers $transfers_done + callbacks $called_back" \
  "($((served + transfers_done + called_back)); fewer if a transferred caller hung up before the next answer)"
api_reads=$(wc -l <"$work/api.log" 2>/dev/null || echo 0)
api_bad=$(awk '$2 != 200' "$work/api.log" 2>/dev/null | wc -l)
api_slowest=$(awk '{ if ($3 > s) s = $3 } END { printf "%.3f", s }' "$work/api.log" 2>/dev/null)
say "API reads: $api_reads ($api_bad not 200), slowest ${api_slowest} s"

# The RSS and fds over time, a sample a minute (and the last).
say "RSS MiB / fds / lines in use, one sample a minute from the first agent ready:"
say "  $(awk -F, -v every="$((60 / sample_every > 0 ? 60 / sample_every : 1))" 'NR > 1 && ((NR - 2) % every == 0) { printf "%s%.1f/%d/%d", sep, $2 / 1024, $5, $7; sep = "  " } END { }' "$samples")"

# 1. Memory and fds.
say "== checks"
read -r mem_ok mem_detail fd_ok fd_detail < <(python3 - "$samples" "$t0" "$t1" "$warmup" "$rss_tol_pct" "$rss_tol_mib" "$fd_tol" <<'EOF'
import csv, sys
path, t0, t1, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pct, mib, fdtol = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
rows = [r for r in csv.DictReader(open(path)) if r["rss_kib"] and t0 + warm <= int(r["time"]) <= t1]
if len(rows) < 6:
    print(0, f"too_few_samples_after_warm-up:{len(rows)}", 0, "-")
    sys.exit()
third = len(rows) // 3
first, last = rows[:third], rows[-third:]
def mx(rs, k): return max(int(r[k]) for r in rs)
r1, r3 = mx(first, "rss_kib"), mx(last, "rss_kib")
tol = max(r1 * pct / 100, mib * 1024)
calls = int(last[len(last) // 2]["calls_ended"]) - int(first[len(first) // 2]["calls_ended"])
per_call = (r3 - r1) * 1024 / calls if calls > 0 else 0
f1, f3 = mx(first, "fds"), mx(last, "fds")
ftol = max(f1 // 10, fdtol)
print(int(r3 <= r1 + tol),
      f"RSS_max_first_third={r1}KiB,last_third={r3}KiB,growth={r3 - r1:+d}KiB,allowed={tol:.0f}KiB,"
      f"{per_call:+.1f}B/call_over_{calls}_calls,{len(rows)}_samples_after_{warm}s_warm-up",
      int(f3 <= f1 + ftol), f"fds_max_first_third={f1},last_third={f3},allowed=+{ftol}")
EOF
)
verdict "memory (RSS flat)" "$mem_ok" "${mem_detail//,/, }"
verdict "fds (flat under traffic)" "$fd_ok" "${fd_detail//,/, }"
verdict "fds (back to idle after the drain)" "$([ "$after_fds" -le $((base_fds + fd_idle_tol)) ] && echo 1 || echo 0)" \
  "before the traffic $base_fds, after the drain $after_fds, allowed +$fd_idle_tol; RSS idle $idle_rss KiB, with agents $base_rss KiB, after the drain $after_rss KiB"

# 2. No agent stuck.
read -r not_avail n_soak stuck_agents < <(api agents)
verdict "agents (all available after the drain)" "$([ "$not_avail" = 0 ] && [ "$n_soak" = "$agents" ] && echo 1 || echo 0)" \
  "$((n_soak - not_avail)) of $agents available${stuck_agents:+; not: $stuck_agents}"

# 3. No ticket left open without a call.
read -r live live_json < <(api calls)
read -r n_tickets tickets_up ticket_calls ticket_status ticket_outcomes tickets_stuck < <(api tickets)
lines_now=$(metric 'centralita_lines_in_use{')
pending_now=$(metric 'centralita_queue_callbacks_pending{')
say "tickets: $n_tickets ($ticket_status), calls on them $ticket_calls; last outcome: $ticket_outcomes"
verdict "tickets (none left with a call up, no call live)" \
  "$([ "$tickets_up" = 0 ] && [ "$live" = 0 ] && [ "$lines_now" = 0 ] && [ "$pending_now" = 0 ] && [ "$n_tickets" = "$created" ] && echo 1 || echo 0)" \
  "tickets whose last call is up: $tickets_up (e.g. $tickets_stuck), live calls $live ($live_json), lines in use $lines_now, callbacks pending $pending_now; tickets $n_tickets for $created callers"

# 4. The logbook verifies.
verify_status=0
verify_out=$("$bin" --config "$work/centralita.toml" logbook verify --data-dir "$work/data" 2>&1) || verify_status=$?
verdict "logbook (centralita logbook verify)" "$([ "$verify_status" = 0 ] && echo 1 || echo 0)" \
  "exit $verify_status: $(tr '\n' ' ' <<<"$verify_out" | cut -c1-300)"

# 5. Every call accounted for.
others=$((ended - out[agent_hangup] - out[ivr_hangup] - out[caller_hangup]))
acc_ok=1
[ "$created" -gt 0 ] && [ "$created" = "$ended" ] || acc_ok=0
[ "${out[agent_hangup]}" = $((n_queue + n_ivr)) ] && [ "${out[ivr_hangup]}" = "$n_callback" ] &&
  [ "${out[caller_hangup]}" = $((n_hangup + n_abandon)) ] && [ "$others" = 0 ] || acc_ok=0
verdict "accounting (calls)" "$acc_ok" \
  "SIPp placed $created, centralita_calls_total grew by $ended; agent_hangup ${out[agent_hangup]} = queue+ivr $((n_queue + n_ivr)), ivr_hangup ${out[ivr_hangup]} = callback $n_callback, caller_hangup ${out[caller_hangup]} = hangup+abandon $((n_hangup + n_abandon)), other outcomes $others"
verdict "accounting (transfers)" "$([ "$transfers_done" = "$agent_refers" ] && [ "$transfers_refused" = 0 ] && [ "$transfers_all" = "$transfers_done" ] && echo 1 || echo 0)" \
  "REFERs sent $agent_refers, transfers done $transfers_done, refused $transfers_refused"
verdict "accounting (callbacks)" "$([ "$cb_requested" = "$n_callback" ] && [ "$called_back" = "$n_callback" ] && [ "$gw_ok" = "$n_callback" ] && [ "$cb_gave_up" = 0 ] && echo 1 || echo 0)" \
  "callback callers $n_callback, requested $cb_requested, called back $called_back, gateway calls $gw_ok, gave up $cb_gave_up"

# 6. API reads.
verdict "API reads (all 200)" "$([ "$api_reads" -gt 0 ] && [ "$api_bad" = 0 ] && echo 1 || echo 0)" "$api_reads reads, $api_bad not 200"

# 7. SIPp's own view.
verdict "SIPp (no failed call)" "$([ "$callers_failed" = 0 ] && [ "$agents_failed" = 0 ] && [ "$gw_failed" = 0 ] && [ "$callers_status" = 0 ] && echo 1 || echo 0)" \
  "callers $callers_failed failed (exit $callers_status), agents $agents_failed, gateway $gw_failed"

sipp_quit 8871
errors=$(grep -ciE 'error|panic' "$work/server.log" || true)
say "server log: $errors error/panic lines$([ "$errors" = 0 ] || printf '; first: %s' "$(grep -iE -m1 'error|panic' "$work/server.log" | cut -c1-200)")"
say "figures: $report, samples: $samples"
if [ "$failures" = 0 ]; then
  say "SOAK PASS"
else
  say "SOAK FAIL: $failures check(s) failed"
  exit 1
fi
