# Shared by the load scripts (sourced, not run): start the controller on
# loopback with the work dir's config and wait until /health answers.
#
#   start_server BIN WORK SIP HTTP   sets server_pid and appends it to pids

start_server() {
  local bin=$1 work=$2 sip=$3 http=$4
  RUST_LOG=${RUST_LOG:-warn} "$bin" --config "$work/centralita.toml" --sip-listen "$sip" \
    --http-listen "$http" --rtp-ports 20000-39999 --data-dir "$work/data" 2>"$work/server.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 100); do
    curl -sf "http://$http/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start:" >&2
  tail "$work/server.log" >&2
  exit 1
}
