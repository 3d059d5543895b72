//! SIP over TCP on the same port as UDP: a call placed over a TCP
//! connection hears its prompt; stream framing by Content-Length holds for
//! split and back-to-back messages; broken framing gets 400 and a close.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads whole SIP messages from a stream.
struct StreamReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl StreamReader {
    async fn connect(server: std::net::SocketAddr) -> (StreamReader, std::net::SocketAddr) {
        let stream = TcpStream::connect(server).await.expect("connect over TCP");
        let local = stream.local_addr().expect("local");
        (
            StreamReader {
                stream,
                buf: Vec::new(),
            },
            local,
        )
    }

    async fn next(&mut self, within: Duration) -> Option<Msg> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while self.buf.starts_with(b"\r\n") {
                self.buf.drain(..2);
            }
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
                let cl: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .or_else(|| l.strip_prefix("l:"))
                    })
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + cl {
                    let msg: Vec<u8> = self.buf.drain(..end + 4 + cl).collect();
                    return Msg::parse(&msg);
                }
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn closed(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 1024];
        matches!(
            tokio::time::timeout(within, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn options(local: std::net::SocketAddr, cid: &str) -> String {
    format!(
        "OPTIONS sip:soporte@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK{cid}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=t{cid}\r\nTo: <sip:soporte@127.0.0.1>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_tcp_hears_its_prompt_and_hangs_up() {
    let server = start_server().await;
    let stream = TcpStream::connect(server.sip_addr)
        .await
        .expect("connect over TCP");
    let local = stream.local_addr().expect("local");
    let mut r = StreamReader {
        stream,
        buf: Vec::new(),
    };
    let rtp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("rtp");
    let sdp = sdp_offer(rtp.local_addr().expect("addr"), "0 101");
    let invite = format!(
        "INVITE sip:soporte@{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp1\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=tcp1\r\nTo: <sip:soporte@{srv}>\r\nCall-ID: tcp-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local};transport=tcp>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        srv = server.sip_addr,
        len = sdp.len()
    );
    // Split the INVITE across two writes: framing waits for the whole body.
    let (a, b) = invite.split_at(invite.len() - 40);
    r.stream.write_all(a.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    r.stream.write_all(b.as_bytes()).await.expect("write");
    let ok = loop {
        let m = r
            .next(WAIT)
            .await
            .expect("responses over the same connection");
        if m.status().is_some_and(|s| s >= 200) {
            break m;
        }
    };
    assert_eq!(ok.status(), Some(200));
    assert!(
        ok.header("contact")
            .is_some_and(|c| c.to_ascii_lowercase().contains("transport=tcp")),
        "{:?}",
        ok.header("contact")
    );
    let to = ok.header("to").unwrap_or_default().to_string();
    let ack = format!(
        "ACK sip:centralita@{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp1a\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=tcp1\r\nTo: {to}\r\nCall-ID: tcp-call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        srv = server.sip_addr
    );
    r.stream.write_all(ack.as_bytes()).await.expect("ack");
    // The prompt arrives over RTP.
    let welcome = prompt_samples("es", "welcome");
    let mut audio = Vec::new();
    let mut buf = [0u8; 2048];
    while audio.len() < welcome.len() + 160 * 40 {
        let (n, _) = tokio::time::timeout(WAIT, rtp.recv_from(&mut buf))
            .await
            .expect("rtp")
            .expect("recv");
        if let Some(p) = parse_rtp(&buf[..n]) {
            audio.extend(
                p.payload
                    .iter()
                    .map(|&b| audio_codec_algorithms::decode_ulaw(b)),
            );
        }
    }
    let corr = best_correlation(&audio, &welcome, 40);
    assert!(
        corr >= 0.9,
        "welcome over a TCP-signalled call, correlation {corr:.3}"
    );
    let bye = format!(
        "BYE sip:centralita@{srv} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKtcp1b\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{local}>;tag=tcp1\r\nTo: {to}\r\nCall-ID: tcp-call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        srv = server.sip_addr
    );
    r.stream.write_all(bye.as_bytes()).await.expect("bye");
    let resp = loop {
        let m = r.next(WAIT).await.expect("BYE answered");
        if m.cseq_method() == Some("BYE") {
            break m;
        }
    };
    assert_eq!(resp.status(), Some(200));
    wait_metric(
        &server,
        "centralita_calls_total{outcome=\"caller_hangup\"}",
        1.0,
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_messages_on_one_stream_are_each_answered() {
    let server = start_server().await;
    let (mut r, local) = StreamReader::connect(server.sip_addr).await;
    let both = format!(
        "{}\r\n\r\n{}",
        options(local, "b2b-1"),
        options(local, "b2b-2")
    );
    r.stream.write_all(both.as_bytes()).await.expect("write");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let m = r.next(WAIT).await.expect("answer");
        assert_eq!(m.status(), Some(200));
        ids.push(m.header("call-id").unwrap_or_default().to_string());
    }
    ids.sort();
    assert_eq!(ids, ["b2b-1", "b2b-2"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_content_length_on_a_stream_gets_400_and_a_close() {
    let server = start_server().await;
    let (mut r, local) = StreamReader::connect(server.sip_addr).await;
    let bad = options(local, "ncl-tcp").replace("Content-Length: 0", "Content-Length: -999");
    r.stream.write_all(bad.as_bytes()).await.expect("write");
    let m = r.next(WAIT).await.expect("an answer before the close");
    assert_eq!(m.status(), Some(400));
    assert!(
        r.closed(WAIT).await,
        "the connection is closed: its framing is lost"
    );
    // The server still takes other connections.
    let (mut r, local) = StreamReader::connect(server.sip_addr).await;
    r.stream
        .write_all(options(local, "after").as_bytes())
        .await
        .expect("write");
    assert_eq!(r.next(WAIT).await.and_then(|m| m.status()), Some(200));
    server.shutdown().await;
}
