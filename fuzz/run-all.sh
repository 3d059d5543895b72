#!/usr/bin/env bash
# Seed the corpora, build, then fuzz every target for SECONDS each, one at a
# time, niced (nice -n 15) so other builds keep a core. Each run is a
# single-job libFuzzer fork run that keeps going after a crash, timeout or
# OOM (artifacts land in fuzz/artifacts/<target>/). Logs go to
# fuzz/artifacts/logs/<target>.log; the last stats line of each run is
# printed after each run.
#
# The targets are built once up front and the built binaries are run
# directly, so later edits under src/ do not trigger rebuilds mid-way.
#
#   fuzz/run-all.sh 600            # every target, 10 minutes each
#   fuzz/run-all.sh 60 rtp sdp     # only these targets
set -euo pipefail
SECONDS_EACH=${1:?usage: run-all.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")"
ALL="sip_front sdp rtp rfc4733 sip_info_dtmf digest refer_to config ivr"
TARGETS=${*:-$ALL}

max_len() {
    case $1 in
        rtp | rfc4733) echo 4096 ;;
        sip_info_dtmf | digest | refer_to) echo 8192 ;;
        *) echo 65536 ;;
    esac
}
dict() {
    case $1 in
        sip_front | refer_to | digest | sip_info_dtmf) echo "-dict=dict/sip.dict" ;;
        sdp) echo "-dict=dict/sdp.dict" ;;
        config | ivr) echo "-dict=dict/toml.dict" ;;
        *) echo "" ;;
    esac
}

if [ -z "${NO_SEED:-}" ]; then ./seed.sh; fi
if [ -z "${NO_BUILD:-}" ]; then nice -n 15 cargo +nightly fuzz build; fi
BIN=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
mkdir -p artifacts/logs
for t in $TARGETS; do
    mkdir -p "artifacts/$t"
    echo "== $t: ${SECONDS_EACH}s from $(date -u +%FT%TZ)"
    # shellcheck disable=SC2046
    nice -n 15 "$BIN/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$(max_len "$t")" $(dict "$t") \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -print_final_stats=1 >"artifacts/logs/$t.log" 2>&1 || true
    echo "   $(grep -E '^#[0-9]+: cov' "artifacts/logs/$t.log" | tail -1)"
    echo "   corpus: $(ls "corpus/$t" | wc -l) files; artifacts: $(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)"
done
