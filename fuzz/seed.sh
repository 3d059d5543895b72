#!/usr/bin/env bash
# Fill fuzz/corpus/<target>/ with seeds taken from the repository (SIP torture
# messages, SIP/SDP text embedded in tests and sipp scenarios, the shipped
# config and IVR menus) plus small hand-made packets. Idempotent: corpus file
# names are content hashes, so re-running adds nothing twice. Needs python3.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=..
C=corpus
TARGETS="sip_front sdp rtp rfc4733 sip_info_dtmf digest refer_to config ivr"
for t in $TARGETS; do mkdir -p "$C/$t"; done

# put TARGET FILE: copy FILE into the target's corpus under its sha1.
put() { local h; h=$(sha1sum "$2" | cut -c1-40); cp "$2" "$C/$1/seed-$h"; }
# putp TARGET FORMAT [ARGS...]: printf into a corpus file.
putp() {
    local t=$1 tmp; shift
    tmp=$(mktemp); printf "$@" >"$tmp"; put "$t" "$tmp"; rm -f "$tmp"
}

# --- SIP: RFC 4475 torture messages, embedded test messages, sipp scenarios.
for f in "$ROOT"/tests/sip-torture/*.dat; do put sip_front "$f"; done

python3 - "$ROOT" "$C" <<'PY'
import glob, hashlib, os, re, sys
root, out = sys.argv[1], sys.argv[2]

def save(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    h = hashlib.sha1(data).hexdigest()
    with open(os.path.join(out, target, "seed-" + h), "wb") as f:
        f.write(data)

def fill(s):
    # format!-style placeholders and sipp [keywords] get plausible values.
    s = re.sub(r"\{(port|rtp_port|media_port)[^}]*\}", "40000", s)
    s = re.sub(r"\{(len|content_length)[^}]*\}", "0", s)
    s = re.sub(r"\{[a-z_0-9.:?]*\}", "x1", s)
    s = s.replace("[local_ip]", "127.0.0.1").replace("[remote_ip]", "127.0.0.1")
    s = s.replace("[local_port]", "5070").replace("[remote_port]", "5060")
    s = s.replace("[media_ip]", "127.0.0.1").replace("[media_port]", "40000")
    s = re.sub(r"\[len\]", "0", s)
    s = re.sub(r"\[[a-z_0-9:.-]+\]", "x1", s)
    return s

def fix_length(msg):
    head, sep, body = msg.partition("\r\n\r\n")
    if not sep:
        return msg
    head = re.sub(r"(?im)^(content-length|l):.*$",
                  lambda m: m.group(1) + ": %d" % len(body.encode()), head)
    return head + sep + body

lit = re.compile(r'b?"((?:[^"\\]|\\.)*)"', re.S)
def unescape(s):
    s = re.sub(r"\\\n\s*", "", s)  # Rust line continuation
    return (s.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")
             .replace('\\"', '"').replace("\\\\", "\\"))

files = (glob.glob(root + "/tests/*.rs") + glob.glob(root + "/tests/common/*.rs")
         + glob.glob(root + "/src/**/*.rs", recursive=True))
for path in files:
    text = open(path, encoding="utf-8", errors="replace").read()
    for m in lit.finditer(text):
        s = fill(unescape(m.group(1)))
        if re.match(r"^[A-Z]+ \S+ SIP/2\.0\r\n", s) or s.startswith("SIP/2.0 "):
            save("sip_front", fix_length(s))
        if s.startswith("v=0"):
            save("sdp", s)
        if s.lstrip().startswith("Digest "):
            save("digest", s)
        if "Replaces=" in s or s.startswith("<sip:"):
            save("refer_to", s)
        if "Signal=" in s:
            save("sip_info_dtmf", "application/dtmf-relay\n" + s)

for path in glob.glob(root + "/tests/sipp/*.xml"):
    text = open(path, encoding="utf-8", errors="replace").read()
    for body in re.findall(r"<!\[CDATA\[(.*?)\]\]>", text, re.S):
        lines = [l.strip() for l in body.strip("\n").split("\n")]
        msg = "\r\n".join(lines)
        if not re.match(r"^([A-Z]+ \S+ SIP/2\.0|SIP/2\.0 )", msg):
            continue
        msg = fill(msg)
        if "\r\n\r\n" not in msg:
            msg += "\r\n\r\n"
        save("sip_front", fix_length(msg))
        sdp = msg.partition("\r\n\r\n")[2]
        if sdp.startswith("v=0"):
            save("sdp", sdp)
PY

# --- SIP: a few hand-made requests reaching the header parsers.
putp sip_front 'REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:201@127.0.0.1>;tag=r1\r\nTo: <sip:201@127.0.0.1>\r\nCall-ID: reg-1\r\nCSeq: 2 REGISTER\r\nContact: <sip:201@10.0.0.2:5062;transport=udp>;expires=300, "B" <sip:201@10.0.0.3>;q=0.5\r\nAuthorization: Digest username="201", realm="centralita", nonce="abc", uri="sip:127.0.0.1", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"\r\nContent-Length: 0\r\n\r\n'
putp sip_front 'REFER sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2:5062;branch=z9hG4bKf1\r\nMax-Forwards: 70\r\nFrom: <sip:201@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>;tag=b\r\nCall-ID: ref-1\r\nCSeq: 3 REFER\r\nRefer-To: <sip:303@127.0.0.1?Replaces=consult-1%%40phone%%3Bto-tag%%3Dab%%3Bfrom-tag%%3Dcd>\r\nReferred-By: <sip:201@127.0.0.1>\r\nContent-Length: 0\r\n\r\n'
putp sip_front 'INFO sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKi1\r\nMax-Forwards: 70\r\nFrom: <sip:201@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>;tag=b\r\nCall-ID: info-1\r\nCSeq: 4 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=5\r\nDuration=160\r\n'
putp sip_front 'OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\nt: <sip:100@127.0.0.1>\r\ni: abc\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n\r\n\r\nOPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: abc\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n'

# --- SDP: hand-made offers next to the ones found in tests.
putp sdp 'v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendonly\r\n'
putp sdp 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n'
putp sdp 'v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 4000 RTP/AVP 96 8\na=rtpmap:96 opus/48000/2\n'

# --- RTP: PCMU, PCMA, telephone-event, CSRCs, extension, padding, RTCP-like.
putp rtp '\x80\x00\x00\x01\x00\x00\x00\xa0\xde\xad\xbe\xef\xff\xff\xff\xff\x7f\x7f\x00\x80'
putp rtp '\x80\x88\x12\x34\x00\x01\x00\x00\x00\x00\x00\x01\xd5\xd5\xd5\xd5'
putp rtp '\x80\xe5\x00\x02\x00\x00\x01\x40\x00\x00\x00\x01\x05\x0a\x00\xa0'
putp rtp '\x82\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03\xff'
putp rtp '\x90\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\xbe\xde\x00\x01\x10\xaa\x00\x00\xff'
putp rtp '\xa0\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x01\xff\xff\x00\x02'
putp rtp '\x80\xc8\x00\x06\x00\x00\x00\x00\x00\x00\x00\x01'

# --- RFC 4733: (timestamp, payload) pairs: a press with interim and end
# packets, a second press, a late packet; and single payloads.
putp rfc4733 '\x05\x0a\x00\xa0'
putp rfc4733 '\x0b\x8a\x03\x20'
putp rfc4733 '\x00\x00\x01\x40\x05\x0a\x00\xa0\x00\x00\x01\x40\x05\x0a\x01\x40\x00\x00\x01\x40\x05\x8a\x01\xe0\x00\x00\x01\x40\x05\x8a\x01\xe0\x00\x00\x05\x00\x0b\x0a\x00\xa0\x00\x00\x01\x40\x05\x8a\x01\xe0'
putp rfc4733 '\x00\x00\x00\x00\x01\x0a\xff\x00\x00\x00\xff\x00\x01\x0a\xff\xff\x00\x00\xff\x80\x01\x0a\x00\xa0'
putp rfc4733 '5\x01\x00'

# --- INFO bodies: first line Content-Type, rest the body.
putp sip_info_dtmf 'application/dtmf-relay\nSignal=5\r\nDuration=160\r\n'
putp sip_info_dtmf 'application/dtmf-relay; charset=utf-8\n  signal = 11 \n duration= 250\n'
putp sip_info_dtmf 'application/dtmf\n#'
putp sip_info_dtmf 'Application/DTMF\n10\r\n'

# --- Digest credentials.
putp digest 'Digest username="201", realm="centralita", nonce="7ypf/xlj9XXwfDPEoM4URrv", uri="sip:127.0.0.1", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b", opaque="5ccc069c"'
putp digest 'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
putp digest 'digest username=201,realm=centralita,nonce=abc,uri="sip:x",response=00'
putp digest 'Digest username="a\\"b", realm="r", nonce="n", uri="u", response="r", qop="auth", nc=0000000g'

# --- Refer-To / Contact / To values.
putp refer_to '<sip:303@127.0.0.1:5060?Replaces=consult-1%%40phone%%3Bto-tag%%3Dab%%3Bfrom-tag%%3Dcd>'
putp refer_to '"Soporte" <sips:soporte@Example.COM;transport=tcp>;tag=x'
putp refer_to 'sip:201@10.0.0.2:5062;expires=60;q=0.7\n*\n<sip:%%41bc@h>, "x,y" <sip:c@d>'
putp refer_to '<sip:303@h?Replaces=%%zz%%4&Require=replaces>'

# --- Config and IVR menus as shipped.
put config "$ROOT/config/centralita.toml"
for f in "$ROOT"/ivr/*.toml; do put ivr "$f"; done
# IVR: the menus concatenated (%% separates files) and a call after a NUL.
tmp=$(mktemp)
first=1
for f in "$ROOT"/ivr/*.toml; do
    [ $first = 1 ] || printf '\n%%%%\n' >>"$tmp"
    first=0
    cat "$f" >>"$tmp"
done
put ivr "$tmp"
printf '\0P1P2T#P*0TT' >>"$tmp"
put ivr "$tmp"
rm -f "$tmp"

for t in $TARGETS; do printf '%-14s %s seeds\n' "$t" "$(ls "$C/$t" | wc -l)"; done
