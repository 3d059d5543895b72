//! One call's media: its RTP port, its row in the media clock, and a receive
//! task that accepts packets only from the call's peer, counts them, and
//! turns RFC 4733 events and in-band tones into digits.
//!
//! The peer is the address in the caller's SDP — unless that address never
//! sends and the first RTP comes from the host the caller's signalling came
//! from: a phone behind NAT (or a multi-homed one, like baresip writing its
//! LAN address) puts an address in its SDP that it does not send from. Then
//! the call latches on to that source once (symmetric RTP, as Asterisk's
//! `comedia`), and sends there too. Any other source is ignored and counted.

use super::clock::{ClockCommand, MediaClock, StreamSetup};
use super::dtmf::inband::InbandDetector;
use super::dtmf::rfc4733::{Rfc4733Receiver, TelephoneEvent};
use super::dtmf::DigitSource;
use super::g711::Codec;
use super::ports::RtpPort;
use super::prompts::Prompt;
use super::relay::{RelayState, Verdict};
use super::rtp::parse_rtp;
use super::MediaEvent;
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// Where a leg's RTP goes, with one owner: the address its SDP named (a
/// re-INVITE may name another), or the source the leg latched on to
/// instead. The leg's receiver, the other leg's relay (which sends out of
/// this leg's socket) and the leg's own prompts all read it here; the media
/// clock is told of each change.
#[derive(Debug)]
struct RtpPeer {
    state: Mutex<PeerState>,
    /// Goes up when the SDP names a new address (the receiver then trusts
    /// it afresh).
    generation: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
struct PeerState {
    sdp: SocketAddr,
    latched: Option<SocketAddr>,
}

impl RtpPeer {
    fn new(sdp: SocketAddr) -> Arc<RtpPeer> {
        Arc::new(RtpPeer {
            state: Mutex::new(PeerState { sdp, latched: None }),
            generation: AtomicU64::new(0),
        })
    }

    fn state(&self) -> PeerState {
        self.state.lock().map(|s| *s).unwrap_or(PeerState {
            sdp: SocketAddr::from(([0, 0, 0, 0], 0)),
            latched: None,
        })
    }

    /// Where the RTP goes now.
    fn get(&self) -> SocketAddr {
        let s = self.state();
        s.latched.unwrap_or(s.sdp)
    }

    /// A re-INVITE named `sdp`: any latch is forgotten.
    fn set_sdp(&self, sdp: SocketAddr) {
        if let Ok(mut s) = self.state.lock() {
            *s = PeerState { sdp, latched: None };
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn latch(&self, src: SocketAddr) {
        if let Ok(mut s) = self.state.lock() {
            s.latched = Some(src);
        }
    }
}

/// Streams are numbered in the media clock by this counter, one number per
/// session for the process's life (a number says nothing but "this stream").
static NEXT_STREAM: AtomicU64 = AtomicU64::new(1);

/// What a session needs to start.
pub struct SessionSetup {
    pub port: RtpPort,
    pub peer: SocketAddr,
    /// The IP the caller's SIP came from, the only other host whose RTP may
    /// be latched on to.
    pub signalling_ip: std::net::IpAddr,
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
    /// Where this leg's RTP goes.
    peer: Arc<RtpPeer>,
    /// Packets this leg receives are sent on from here when bridged.
    forward: Arc<Mutex<Option<Forward>>>,
    /// The forward set aside while the other leg hears a prompt of its own
    /// ([`MediaSession::play_in_bridge`]).
    parked: Mutex<Option<Forward>>,
    /// A handle on this leg's socket, for the other leg to send from.
    socket: Arc<std::net::UdpSocket>,
    events: UnboundedSender<MediaEvent>,
    receiver: tokio::task::JoinHandle<()>,
    _port: RtpPort,
    pub local_port: u16,
    pub codec: Codec,
    /// The peer's telephone-event payload type, if it has one.
    pub dtmf_pt: Option<u8>,
    /// The relay counters, by direction.
    relayed: prometheus::IntCounterVec,
}

impl MediaSession {
    pub fn start(
        setup: SessionSetup,
        clock: &MediaClock,
        metrics: &Metrics,
    ) -> std::io::Result<MediaSession> {
        let id = NEXT_STREAM.fetch_add(1, Ordering::Relaxed);
        let send_half = setup.port.socket.try_clone()?;
        let socket = Arc::new(setup.port.socket.try_clone()?);
        let peer = RtpPeer::new(setup.peer);
        let forward = Arc::new(Mutex::new(None));
        let recv_half = tokio::net::UdpSocket::from_std(setup.port.socket.try_clone()?)?;
        clock.send(ClockCommand::Add(Box::new(StreamSetup {
            id,
            socket: send_half,
            peer: setup.peer,
            codec: setup.codec,
            events: setup.events.clone(),
        })));
        let rx = Receiver {
            socket: recv_half,
            peer: Arc::clone(&peer),
            generation: 0,
            forward: Arc::clone(&forward),
            signalling_ip: setup.signalling_ip,
            heard_from_peer: false,
            clock: clock.clone(),
            id,
            codec: setup.codec,
            dtmf_pt: setup.dtmf_pt,
            inband: setup.inband_dtmf.then(InbandDetector::default),
            rfc4733: Rfc4733Receiver::new(),
            timeout: setup.rtp_timeout,
            events: setup.events.clone(),
            metrics: metrics.clone(),
        };
        let receiver = tokio::spawn(rx.run());
        Ok(MediaSession {
            id,
            clock: clock.clone(),
            peer,
            forward,
            parked: Mutex::new(None),
            socket,
            events: setup.events.clone(),
            receiver,
            local_port: setup.port.port,
            codec: setup.codec,
            dtmf_pt: setup.dtmf_pt,
            relayed: metrics.rtp_packets_relayed.clone(),
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

    /// Play after whatever is playing (the playback token stays).
    pub fn append(&self, prompts: Vec<Arc<Prompt>>) {
        self.clock.send(ClockCommand::Append {
            id: self.id,
            prompts,
        });
    }

    pub fn stop_playback(&self) {
        self.clock.send(ClockCommand::Stop { id: self.id });
    }

    pub fn set_background(&self, music: Option<Arc<Prompt>>) {
        self.clock
            .send(ClockCommand::Background { id: self.id, music });
    }

    /// Bridge two legs: what either receives goes out of the other's socket
    /// to the other's peer, as it came (payload, SSRC, DTMF events); the
    /// clock stops playing to both. Whatever either was bridged to before
    /// (parked or not) is forgotten. `a_to_b` and `b_to_a` label the relay
    /// counters. With `b_keys`, `b`'s RFC 4733 keys are not relayed but
    /// reported as digits on `b`'s events; [`MediaSession::send_digit`] on
    /// `b` passes one on to `a`.
    pub fn bridge(
        a: &MediaSession,
        b: &MediaSession,
        a_to_b: &'static str,
        b_to_a: &'static str,
        b_keys: bool,
    ) {
        for leg in [a, b] {
            if let Ok(mut p) = leg.parked.lock() {
                *p = None;
            }
        }
        if let Ok(mut f) = a.forward.lock() {
            *f = Some(Forward {
                socket: Arc::clone(&b.socket),
                peer: Arc::clone(&b.peer),
                relayed: a.relayed.with_label_values(&[a_to_b]),
                // Nothing of `a`'s is withheld; keys `a` signals otherwise
                // (SIP INFO) can be sent on to `b` as events.
                state: RelayState::taking_keys(None, b.dtmf_pt),
            });
        }
        if let Ok(mut f) = b.forward.lock() {
            *f = Some(Forward {
                socket: Arc::clone(&a.socket),
                peer: Arc::clone(&a.peer),
                relayed: b.relayed.with_label_values(&[b_to_a]),
                state: if b_keys {
                    RelayState::taking_keys(b.dtmf_pt, a.dtmf_pt)
                } else {
                    RelayState::plain()
                },
            });
        }
        a.clock.send(ClockCommand::Remove { id: a.id });
        b.clock.send(ClockCommand::Remove { id: b.id });
    }

    /// Leave a bridge: stop relaying what this leg receives and let the
    /// clock play to it again (prompts, hold music).
    pub fn unbridge(&self) -> std::io::Result<()> {
        if let Ok(mut f) = self.forward.lock() {
            *f = None;
        }
        if let Ok(mut p) = self.parked.lock() {
            *p = None;
        }
        self.rejoin_clock()
    }

    /// The media clock plays to this leg's peer again (it stopped when the
    /// leg was bridged): silence until something is played.
    pub fn join_clock(&self) -> std::io::Result<()> {
        self.rejoin_clock()
    }

    fn rejoin_clock(&self) -> std::io::Result<()> {
        self.clock.send(ClockCommand::Add(Box::new(StreamSetup {
            id: self.id,
            socket: self.socket.try_clone()?,
            peer: self.peer.get(),
            codec: self.codec,
            events: self.events.clone(),
        })));
        Ok(())
    }

    /// Stop relaying what this leg receives (its forward is set aside, not
    /// dropped): a prompt for the other leg alone, or a hold. `false` if
    /// it was set aside already (or the leg is not bridged).
    pub fn park(&self) -> bool {
        match (self.forward.lock(), self.parked.lock()) {
            (Ok(mut f), Ok(mut p)) if p.is_none() && f.is_some() => {
                *p = f.take();
                true
            }
            _ => false,
        }
    }

    /// Relay what this leg receives again, as before [`MediaSession::park`].
    pub fn unpark(&self) {
        if let (Ok(mut f), Ok(mut p)) = (self.forward.lock(), self.parked.lock()) {
            if let Some(parked) = p.take() {
                *f = Some(parked);
            }
        }
    }

    /// Play prompts to this bridged leg's peer only: what `other` receives
    /// stops being relayed here meanwhile (so the two streams do not
    /// interleave), and flows again with [`MediaSession::resume_bridge`].
    /// What this leg receives still reaches `other`. `token` comes back as
    /// `PlaybackFinished` on this leg's events.
    pub fn play_in_bridge(
        &self,
        other: &MediaSession,
        prompts: Vec<Arc<Prompt>>,
        token: u64,
    ) -> std::io::Result<()> {
        if other.park() {
            self.rejoin_clock()?;
        }
        self.play(prompts, token);
        Ok(())
    }

    /// After [`MediaSession::play_in_bridge`]: the clock stops playing to
    /// this leg and `other`'s packets are relayed to it again.
    pub fn resume_bridge(&self, other: &MediaSession) {
        self.leave_clock();
        other.unpark();
    }

    /// Hold: neither leg's packets are relayed, and the clock plays to
    /// this leg again (hold music). [`MediaSession::unhold`] undoes it.
    pub fn hold(&self, other: &MediaSession) -> std::io::Result<()> {
        let parked = self.park();
        other.park();
        if parked {
            self.rejoin_clock()?;
        }
        Ok(())
    }

    /// After [`MediaSession::hold`]: bridged again both ways.
    pub fn unhold(&self, other: &MediaSession) {
        self.leave_clock();
        self.unpark();
        other.unpark();
    }

    /// The media clock stops playing to this leg (it is bridged).
    fn leave_clock(&self) {
        self.clock.send(ClockCommand::Remove { id: self.id });
    }

    /// Send one key on to the leg this one is bridged to, as RFC 4733
    /// events: a key withheld by [`MediaSession::bridge`]'s `b_keys` that is
    /// not a feature code, or one this leg's peer sent by SIP INFO.
    pub fn send_digit(&self, digit: char) {
        let Ok(mut guard) = self.forward.lock() else {
            return;
        };
        let Some(f) = guard.as_mut() else { return };
        let peer = f.peer.get();
        if peer.ip().is_unspecified() {
            return;
        }
        for p in f.state.inject_digit(digit) {
            let _ = f.socket.send_to(&p, peer);
        }
    }

    pub fn set_peer(&self, peer: SocketAddr) {
        self.peer.set_sdp(peer);
        self.clock.send(ClockCommand::SetPeer { id: self.id, peer });
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        self.clock.send(ClockCommand::Remove { id: self.id });
        self.receiver.abort();
    }
}

/// Where a bridged leg's packets go: out of the other leg's socket to the
/// other leg's peer.
struct Forward {
    socket: Arc<std::net::UdpSocket>,
    peer: Arc<RtpPeer>,
    /// This direction's relay counter (looked up once, not per packet).
    relayed: prometheus::IntCounter,
    state: RelayState,
}

/// What became of a received packet.
enum Relayed {
    /// Not bridged: the packet is this leg's (digits, or nothing).
    NotBridged,
    Sent,
    /// A key of the leg's own, kept from the other leg.
    Withheld,
}

struct Receiver {
    socket: tokio::net::UdpSocket,
    peer: Arc<RtpPeer>,
    /// The peer's generation this receiver has seen.
    generation: u64,
    forward: Arc<Mutex<Option<Forward>>>,
    signalling_ip: std::net::IpAddr,
    heard_from_peer: bool,
    clock: MediaClock,
    id: u64,
    codec: Codec,
    dtmf_pt: Option<u8>,
    inband: Option<InbandDetector>,
    rfc4733: Rfc4733Receiver,
    timeout: Duration,
    events: UnboundedSender<MediaEvent>,
    metrics: Metrics,
}

impl Receiver {
    /// Send a packet on to the bridged leg, unless it is a withheld key.
    fn relay(&self, packet: &mut [u8], head: (u8, u16, u32, u32)) -> Relayed {
        let Ok(mut guard) = self.forward.lock() else {
            return Relayed::NotBridged;
        };
        let Some(f) = guard.as_mut() else {
            return Relayed::NotBridged;
        };
        let (pt, seq, ts, ssrc) = head;
        if f.state.on_packet(packet, pt, seq, ts, ssrc) == Verdict::Withhold {
            return Relayed::Withheld;
        }
        let peer = f.peer.get();
        if !peer.ip().is_unspecified() && f.socket.send_to(packet, peer).is_ok() {
            f.relayed.inc();
        }
        Relayed::Sent
    }

    /// Whether a packet from `src` is the peer's, latching once on to the
    /// signalling host when the SDP address has never sent.
    fn accept_source(&mut self, src: SocketAddr) -> bool {
        let generation = self.peer.generation.load(Ordering::SeqCst);
        if generation != self.generation {
            // A re-INVITE named a new address: trust it afresh.
            self.generation = generation;
            self.heard_from_peer = false;
        }
        let state = self.peer.state();
        let peer = state.latched.unwrap_or(state.sdp);
        if src == peer {
            self.heard_from_peer = true;
            return true;
        }
        if !self.heard_from_peer && state.latched.is_none() && src.ip() == self.signalling_ip {
            tracing::debug!(sdp = %peer, %src, "RTP latched on to the signalling host");
            self.peer.latch(src);
            self.heard_from_peer = true;
            self.metrics.rtp_peers_latched.inc();
            self.clock.send(ClockCommand::SetPeer {
                id: self.id,
                peer: src,
            });
            return true;
        }
        false
    }

    async fn run(mut self) {
        let mut buf = vec![0u8; 2048];
        let mut pcm = vec![0i16; 1024];
        // The RTP timeout: one timer per call, moved on only when it fires
        // (a timer per packet cost a timer-wheel insert and remove each).
        let mut last_heard = tokio::time::Instant::now();
        let idle = tokio::time::sleep(self.timeout);
        tokio::pin!(idle);
        loop {
            let (len, src) = tokio::select! {
                biased;
                r = self.socket.recv_from(&mut buf) => match r {
                    Err(_) => continue,
                    Ok(x) => x,
                },
                _ = &mut idle => {
                    let now = tokio::time::Instant::now();
                    if now >= last_heard + self.timeout {
                        if self.events.send(MediaEvent::RtpTimeout).is_err() {
                            return;
                        }
                        last_heard = now;
                    }
                    idle.as_mut().reset(last_heard + self.timeout);
                    continue;
                }
            };
            if !self.accept_source(src) {
                self.metrics
                    .rtp_packets_ignored
                    .with_label_values(&["wrong_source"])
                    .inc();
                continue;
            }
            // Only the peer's packets keep the call alive.
            last_heard = tokio::time::Instant::now();
            let head = match parse_rtp(&buf[..len]) {
                Ok(p) => (p.payload_type, p.sequence, p.timestamp, p.ssrc),
                Err(_) => {
                    self.metrics
                        .rtp_packets_ignored
                        .with_label_values(&["malformed"])
                        .inc();
                    continue;
                }
            };
            self.metrics.rtp_packets_received.inc();
            if let Relayed::Sent = self.relay(&mut buf[..len], head) {
                continue;
            }
            let Ok(pkt) = parse_rtp(&buf[..len]) else {
                continue;
            };
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
