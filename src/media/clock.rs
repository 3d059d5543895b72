//! The media clock: a thread per core at most (shards), each of which, every
//! 20 ms, sends the next G.711 frame of every call it plays to. There is
//! never a timer per call: a call is a row in one shard's table (by call
//! id), and the shard's single absolute-deadline loop paces them all. Each packet's lateness against its 20 ms slot goes into
//! `centralita_rtp_send_lateness_seconds`.
//!
//! Prompts are shared, pre-encoded frames ([`Prompt`]); a stream only holds a
//! play position. When a playlist ends the call is told
//! ([`MediaEvent::PlaybackFinished`]) and the stream sends hold music if set,
//! else silence, so the caller's RTP never stops while the IVR waits.

use super::g711::Codec;
use super::prompts::Prompt;
use super::rtp::RtpStream;
use super::MediaEvent;
use crate::metrics::Metrics;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// One frame: 20 ms at 8 kHz.
pub const FRAME: Duration = Duration::from_millis(20);

/// What the clock is told to do.
pub enum ClockCommand {
    Add(Box<StreamSetup>),
    /// Play these prompts in order, replacing whatever was playing. `token`
    /// comes back in `PlaybackFinished` so a stale finish is recognisable.
    Play {
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        token: u64,
    },
    /// Play these prompts after whatever is playing (or at once if nothing
    /// is); the current token stays.
    Append {
        id: u64,
        prompts: Vec<Arc<Prompt>>,
    },
    /// Loop this (hold music) whenever no prompt is playing; `None` stops it.
    Background {
        id: u64,
        music: Option<Arc<Prompt>>,
    },
    /// Stop the playlist at once (barge-in); no PlaybackFinished is sent.
    Stop {
        id: u64,
    },
    /// The peer's RTP address changed (re-INVITE, or an ACK's answer).
    SetPeer {
        id: u64,
        peer: SocketAddr,
    },
    Remove {
        id: u64,
    },
    Shutdown,
}

/// A new stream: the call's RTP socket (a clone; the call keeps the other
/// half for receiving), its peer and codec.
pub struct StreamSetup {
    pub id: u64,
    pub socket: UdpSocket,
    pub peer: SocketAddr,
    pub codec: Codec,
    pub events: UnboundedSender<MediaEvent>,
}

struct Stream {
    socket: UdpSocket,
    peer: SocketAddr,
    codec: Codec,
    rtp: RtpStream,
    events: UnboundedSender<MediaEvent>,
    playlist: VecDeque<Arc<Prompt>>,
    position: usize,
    token: u64,
    background: Option<Arc<Prompt>>,
    background_pos: usize,
    buf: Vec<u8>,
}

impl Stream {
    /// The payload of the next frame, advancing the play positions.
    fn next_payload(&mut self, silence: &[u8; 160]) -> ([u8; 160], bool) {
        let mut out = [0u8; 160];
        while let Some(p) = self.playlist.front() {
            if let Some(f) = p.frame(self.codec, self.position) {
                out.copy_from_slice(f);
                self.position += 1;
                return (out, true);
            }
            self.playlist.pop_front();
            self.position = 0;
            if self.playlist.is_empty() {
                let _ = self
                    .events
                    .send(MediaEvent::PlaybackFinished { token: self.token });
            } else {
                self.rtp.start_talkspurt();
            }
        }
        if let Some(music) = &self.background {
            let frames = music.frame_count();
            if frames > 0 {
                if let Some(f) = music.frame(self.codec, self.background_pos % frames) {
                    out.copy_from_slice(f);
                    self.background_pos = (self.background_pos + 1) % frames;
                    return (out, true);
                }
            }
        }
        (*silence, false)
    }
}

/// Handle to the clock's shards.
#[derive(Clone)]
pub struct MediaClock {
    shards: Arc<Vec<mpsc::Sender<ClockCommand>>>,
}

impl MediaClock {
    /// Start `shards` clock threads (at least one).
    pub fn start(
        metrics: Metrics,
        shards: usize,
    ) -> std::io::Result<(MediaClock, Vec<std::thread::JoinHandle<()>>)> {
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..shards.max(1) {
            let (tx, rx) = mpsc::channel();
            let metrics = metrics.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("media-clock-{i}"))
                    .spawn(move || run(rx, metrics))?,
            );
            senders.push(tx);
        }
        Ok((
            MediaClock {
                shards: Arc::new(senders),
            },
            handles,
        ))
    }

    /// Send a command to the shard that owns its stream (all shards for
    /// shutdown).
    pub fn send(&self, cmd: ClockCommand) {
        // A shard only stops at shutdown; a command sent after that is moot.
        let id = match &cmd {
            ClockCommand::Add(s) => s.id,
            ClockCommand::Play { id, .. }
            | ClockCommand::Append { id, .. }
            | ClockCommand::Background { id, .. }
            | ClockCommand::Stop { id }
            | ClockCommand::SetPeer { id, .. }
            | ClockCommand::Remove { id } => *id,
            ClockCommand::Shutdown => {
                for s in self.shards.iter() {
                    let _ = s.send(ClockCommand::Shutdown);
                }
                return;
            }
        };
        let shard = (id % self.shards.len() as u64) as usize;
        if let Some(s) = self.shards.get(shard) {
            let _ = s.send(cmd);
        }
    }
}

fn silence_frame(codec: Codec) -> [u8; 160] {
    [codec.silence_byte(); 160]
}

fn run(rx: mpsc::Receiver<ClockCommand>, metrics: Metrics) {
    let mut streams: HashMap<u64, Stream> = HashMap::new();
    let mut next = Instant::now() + FRAME;
    let mut ssrc_seed: u32 = 0x5eed_1234;
    loop {
        // Apply commands; with nothing to play, block instead of ticking.
        loop {
            let cmd = if streams.is_empty() {
                match rx.recv() {
                    Ok(c) => {
                        next = Instant::now() + FRAME;
                        c
                    }
                    Err(_) => return,
                }
            } else {
                match rx.try_recv() {
                    Ok(c) => c,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            };
            if !apply(&mut streams, cmd, &mut ssrc_seed) {
                return;
            }
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let slot = next;
        for s in streams.values_mut() {
            let silence = silence_frame(s.codec);
            let (payload, _audible) = s.next_payload(&silence);
            s.buf.clear();
            s.rtp
                .next_packet(s.codec.payload_type(), &payload, &mut s.buf);
            if s.socket.send_to(&s.buf, s.peer).is_ok() {
                metrics.rtp_packets_sent.inc();
            }
            metrics
                .rtp_send_lateness
                .observe(Instant::now().saturating_duration_since(slot).as_secs_f64());
        }
        next += FRAME;
        let now = Instant::now();
        if now > next + FRAME * 5 {
            // Far behind (the machine stalled): start a fresh schedule rather
            // than bursting the backlog at the callers.
            next = now + FRAME;
        }
    }
}

/// Apply one command; false means shut down.
fn apply(streams: &mut HashMap<u64, Stream>, cmd: ClockCommand, seed: &mut u32) -> bool {
    match cmd {
        ClockCommand::Add(setup) => {
            let StreamSetup {
                id,
                socket,
                peer,
                codec,
                events,
            } = *setup;
            // xorshift: SSRC, sequence and timestamp start at random values.
            let mut r = || {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                *seed ^ (id as u32).wrapping_mul(0x9e37_79b9)
            };
            let rtp = RtpStream::new(r(), r() as u16, r());
            streams.insert(
                id,
                Stream {
                    socket,
                    peer,
                    codec,
                    rtp,
                    events,
                    playlist: VecDeque::new(),
                    position: 0,
                    token: 0,
                    background: None,
                    background_pos: 0,
                    buf: Vec::with_capacity(12 + 160),
                },
            );
        }
        ClockCommand::Play { id, prompts, token } => {
            if let Some(s) = streams.get_mut(&id) {
                s.playlist = prompts.into();
                s.position = 0;
                s.token = token;
                s.rtp.start_talkspurt();
                if s.playlist.is_empty() {
                    let _ = s.events.send(MediaEvent::PlaybackFinished { token });
                }
            }
        }
        ClockCommand::Append { id, prompts } => {
            if let Some(s) = streams.get_mut(&id) {
                if s.playlist.is_empty() {
                    s.position = 0;
                    s.rtp.start_talkspurt();
                }
                s.playlist.extend(prompts);
            }
        }
        ClockCommand::Background { id, music } => {
            if let Some(s) = streams.get_mut(&id) {
                s.background = music;
                s.background_pos = 0;
            }
        }
        ClockCommand::Stop { id } => {
            if let Some(s) = streams.get_mut(&id) {
                s.playlist.clear();
                s.position = 0;
            }
        }
        ClockCommand::SetPeer { id, peer } => {
            if let Some(s) = streams.get_mut(&id) {
                s.peer = peer;
            }
        }
        ClockCommand::Remove { id } => {
            streams.remove(&id);
        }
        ClockCommand::Shutdown => return false,
    }
    true
}
