# Shared by the load scripts (sourced, not run): start the controller on
# loopback with the work dir's config and wait until /health answers.
#
#   start_server BIN WORK SIP HTTP   sets server_pid and appends it to pids
#   pcap_to_alaw PCAP OUT             the pcap's RTP payloads (PCMA),
#                                     concatenated, for SIPp's rtp_stream

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

pcap_to_alaw() {
  python3 - "$1" "$2" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if struct.unpack("<I", d[:4])[0] == 0xA1B2C3D4 else ">"
link = struct.unpack(e + "I", d[20:24])[0]
l2 = {1: 14, 113: 16}.get(link, 0)
off, out = 24, bytearray()
while off + 16 <= len(d):
    n = struct.unpack(e + "I", d[off + 8:off + 12])[0]
    p = d[off + 16:off + 16 + n][l2:]
    off += 16 + n
    rtp = p[(p[0] & 15) * 4 + 8:]
    out += rtp[12 + 4 * (rtp[0] & 15):]
open(sys.argv[2], "wb").write(out)
EOF
}
