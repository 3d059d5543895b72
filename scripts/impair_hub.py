#!/usr/bin/env python3
"""A lossy Ethernet hub between veth ends: netem in user space.

tests/lossy_network.rs runs it inside a network namespace of its own when
the kernel has no `sch_netem` (tc qdisc ... netem). Every frame received on
one port is sent out of all the others, each copy dropped with probability
LOSS and delayed by a uniform random 0..JITTER ms, in order: a frame never
overtakes one sent before it to the same port (netem with a FIFO behind
it; reordering SIP messages a few ms apart would test SIPp's scenarios,
not the controller). `--drop-first PATTERN` drops the first frame containing
PATTERN (bytes), once per pattern: a SIP request or response lost for sure,
so that retransmission is proven, not left to chance.

IPv4 UDP checksums are set to 0 (none): see no_udp_checksum. TCP is
not carried well (its checksums stay offloaded); the test uses UDP.

Counters are printed as one JSON line on SIGTERM or SIGINT, then it exits.
Bounded: at most MAX_QUEUED frames wait for their time; past it, frames are
dropped (counted as "overflow").

    impair_hub.py --loss 0.05 --jitter-ms 40 --seed 7 \
        --drop-first 'INVITE sip:' IFACE1 IFACE2 IFACE3

Standard library only; Linux (AF_PACKET); needs CAP_NET_RAW.
"""

import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_QUEUED = 20000


def no_udp_checksum(frame):
    """IPv4 UDP with its checksum set to 0 ("none", RFC 768).

    veth hands AF_PACKET the frames of its own namespace before the
    checksum is filled in (offloaded, CHECKSUM_PARTIAL); sent on as they
    are, the receiver would drop them. There is no ethtool here to turn
    the offload off, so the hub says "no checksum" instead.
    """
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return frame
    ihl = (frame[14] & 0x0F) * 4
    off = 14 + ihl + 6
    if len(frame) < off + 2:
        return frame
    return frame[:off] + b"\x00\x00" + frame[off + 2 :]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drop-first", action="append", default=[])
    ap.add_argument("ifaces", nargs="+")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    socks = []
    for name in a.ifaces:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        socks.append(s)
    pending = [p.encode() for p in a.drop_first]
    counts = {
        "received": 0,
        "forwarded": 0,
        "dropped_random": 0,
        "dropped_pattern": 0,
        "overflow": 0,
        "patterns_hit": [],
    }
    queue = []  # (due, seq, out_index, frame)
    last_due = [0.0] * len(a.ifaces)
    seq = 0
    stop = []

    def on_signal(_sig, _frm):
        stop.append(True)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)

    while not stop:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                socks[out].send(frame)
                counts["forwarded"] += 1
            except OSError:
                pass
        timeout = max(0.0, queue[0][0] - now) if queue else 0.2
        try:
            ready, _, _ = select.select(socks, [], [], min(timeout, 0.2))
        except InterruptedError:
            continue
        for s in ready:
            i = socks.index(s)
            while True:
                try:
                    frame, addr = s.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                counts["received"] += 1
                frame = no_udp_checksum(frame)
                hit = next((p for p in pending if p in frame), None)
                if hit is not None:
                    pending.remove(hit)
                    counts["dropped_pattern"] += 1
                    counts["patterns_hit"].append(hit.decode(errors="replace"))
                    continue
                for out in range(len(socks)):
                    if out == i:
                        continue
                    if rng.random() < a.loss:
                        counts["dropped_random"] += 1
                        continue
                    if len(queue) >= MAX_QUEUED:
                        counts["overflow"] += 1
                        continue
                    seq += 1
                    due = time.monotonic() + rng.uniform(0, a.jitter_ms) / 1000.0
                    due = max(due, last_due[out])
                    last_due[out] = due
                    heapq.heappush(queue, (due, seq, out, frame))
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
