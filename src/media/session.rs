//! One call's media: its RTP port, its row in the media clock, and a receive
//! task that accepts packets only from the call's peer, counts them, and
//! turns RFC 4733 events and in-band tones into digits.

use super::clock::{ClockCommand, MediaClock, StreamSetup};
use super::dtmf::inband::InbandDetector;
use super::dtmf::rfc4733::{Rfc4733Receiver, TelephoneEvent};
use super::dtmf::DigitSource;
use super::g711::Codec;
use super::ports::RtpPort;
use super::prompts::Prompt;
use super::rtp::parse_rtp;
use super::MediaEvent;
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc::UnboundedSender, watch};

/// What a session needs to start.
pub struct SessionSetup {
    pub id: u64,
    pub port: RtpPort,
    pub peer: SocketAddr,
    pub codec: Codec,
    pub dtmf_pt: Option<u8>,
    pub inband_dtmf: bool,
    pub rtp_timeout: Duration,
    pub events: UnboundedSender<MediaEvent>,
}

/// A live call's media. Dropping it stops the stream, the receiver and
/// frees the port.
pub struct MediaSession {
    id: u64,
    clock: MediaClock,
    peer_tx: watch::Sender<SocketAddr>,
    receiver: tokio::task::JoinHandle<()>,
    _port: RtpPort,
    pub local_port: u16,
    pub codec: Codec,
}

impl MediaSession {
    pub fn start(
        setup: SessionSetup,
        clock: &MediaClock,
        metrics: &Metrics,
    ) -> std::io::Result<MediaSession> {
        let send_half = setup.port.socket.try_clone()?;
        let recv_half = tokio::net::UdpSocket::from_std(setup.port.socket.try_clone()?)?;
        let (peer_tx, peer_rx) = watch::channel(setup.peer);
        clock.send(ClockCommand::Add(Box::new(StreamSetup {
            id: setup.id,
            socket: send_half,
            peer: setup.peer,
            codec: setup.codec,
            events: setup.events.clone(),
        })));
        let rx = Receiver {
            socket: recv_half,
            peer: peer_rx,
            codec: setup.codec,
            dtmf_pt: setup.dtmf_pt,
            inband: setup.inband_dtmf.then(InbandDetector::default),
            rfc4733: Rfc4733Receiver::new(),
            timeout: setup.rtp_timeout,
            events: setup.events,
            metrics: metrics.clone(),
        };
        let receiver = tokio::spawn(rx.run());
        Ok(MediaSession {
            id: setup.id,
            clock: clock.clone(),
            peer_tx,
            receiver,
            local_port: setup.port.port,
            codec: setup.codec,
            _port: setup.port,
        })
    }

    pub fn play(&self, prompts: Vec<Arc<Prompt>>, token: u64) {
        self.clock.send(ClockCommand::Play {
            id: self.id,
            prompts,
            token,
        });
    }

    pub fn stop_playback(&self) {
        self.clock.send(ClockCommand::Stop { id: self.id });
    }

    pub fn set_background(&self, music: Option<Arc<Prompt>>) {
        self.clock
            .send(ClockCommand::Background { id: self.id, music });
    }

    pub fn set_peer(&self, peer: SocketAddr) {
        let _ = self.peer_tx.send(peer);
        self.clock.send(ClockCommand::SetPeer { id: self.id, peer });
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.clock.send(ClockCommand::Remove { id: self.id });
        self.receiver.abort();
    }
}

struct Receiver {
    socket: tokio::net::UdpSocket,
    peer: watch::Receiver<SocketAddr>,
    codec: Codec,
    dtmf_pt: Option<u8>,
    inband: Option<InbandDetector>,
    rfc4733: Rfc4733Receiver,
    timeout: Duration,
    events: UnboundedSender<MediaEvent>,
    metrics: Metrics,
}

impl Receiver {
    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let mut pcm = vec![0i16; 1024];
        loop {
            let (len, src) =
                match tokio::time::timeout(self.timeout, self.socket.recv_from(&mut buf)).await {
                    Err(_) => {
                        if self.events.send(MediaEvent::RtpTimeout).is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(Err(_)) => continue,
                    Ok(Ok(x)) => x,
                };
            if src != *self.peer.borrow() {
                self.metrics
                    .rtp_packets_ignored
                    .with_label_values(&["wrong_source"])
                    .inc();
                continue;
            }
            let Ok(pkt) = parse_rtp(&buf[..len]) else {
                self.metrics
                    .rtp_packets_ignored
                    .with_label_values(&["malformed"])
                    .inc();
                continue;
            };
            self.metrics.rtp_packets_received.inc();
            let digit = if Some(pkt.payload_type) == self.dtmf_pt {
                match TelephoneEvent::parse(pkt.payload) {
                    Ok(ev) => self
                        .rfc4733
                        .on_packet(pkt.timestamp, ev)
                        .map(|d| (d, DigitSource::Rfc4733)),
                    Err(_) => {
                        self.metrics
                            .rtp_packets_ignored
                            .with_label_values(&["malformed"])
                            .inc();
                        None
                    }
                }
            } else if pkt.payload_type == self.codec.payload_type() {
                match self.inband.as_mut() {
                    Some(det) => {
                        let n = pkt.payload.len().min(pcm.len());
                        self.codec.decode_frame(&pkt.payload[..n], &mut pcm[..n]);
                        let mut found = None;
                        det.process_with(&pcm[..n], |d| found = Some(d));
                        found.map(|d| (d, DigitSource::Inband))
                    }
                    None => None,
                }
            } else {
                self.metrics
                    .rtp_packets_ignored
                    .with_label_values(&["unknown_payload"])
                    .inc();
                None
            };
            if let Some((digit, source)) = digit {
                if self
                    .events
                    .send(MediaEvent::Digit { digit, source })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
