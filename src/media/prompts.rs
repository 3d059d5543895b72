//! Prompt audio: every IVR prompt (per language) and the language-neutral
//! extras such as hold music, loaded once at start-up into a
//! [`PromptLibrary`] and shared by every call as `Arc<Prompt>`.
//!
//! Each WAV is converted once — any integer width or 32-bit float, any
//! channel count (mixed to mono), any sample rate (resampled to 8 kHz) — to
//! 8 kHz `i16` samples and to ready-made 20 ms (160-byte) frames in both
//! µ-law and A-law, so playing a prompt is a slice copy per packet.
//!
//! Sans-IO apart from [`PromptLibrary::load`] / [`load_wav`], which read
//! files: nothing here touches a socket or the clock, and the conversion
//! ([`convert_to_8k`], [`Prompt::from_samples_8k`]) is pure.
//!
//! The resampler is hand-written (a windowed-sinc, polyphase when the rate
//! ratio allows): prompts are converted once at start-up, so a plain,
//! dependency-free filter with a proper low-pass before decimation (cut-off
//! at 92 % of the output Nyquist frequency, Blackman window, 32 zero
//! crossings per side) is enough, and 8 kHz input skips it and stays
//! bit-exact.

use super::g711::{alaw_encode, ulaw_encode, Codec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The sample rate of everything we play.
pub const RATE: u32 = 8000;
/// Samples (and G.711 bytes) in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;

/// Why a prompt file could not be loaded. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("{}: prompt file is missing", path.display())]
    Missing { path: PathBuf },
    #[error("{}: cannot read as WAV: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: WAV file has no audio", path.display())]
    Empty { path: PathBuf },
}

impl PromptError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PromptError::Missing { path }
            | PromptError::Unreadable { path, .. }
            | PromptError::Empty { path } => path,
        }
    }
}

/// One prompt, converted once: 8 kHz samples and 20 ms G.711 frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// `<lang>/<name>` for prompts, the key for extras.
    pub name: String,
    pub samples_8k: Vec<i16>,
    /// µ-law frames; the last one is padded with the silence code.
    pub ulaw: Vec<[u8; FRAME_SAMPLES]>,
    /// A-law frames; the last one is padded with the silence code.
    pub alaw: Vec<[u8; FRAME_SAMPLES]>,
    /// Length of `samples_8k` at 8 kHz.
    pub duration: Duration,
}

impl Prompt {
    /// Build a prompt from 8 kHz mono samples (also handy for tones and
    /// tests).
    pub fn from_samples_8k(name: impl Into<String>, samples_8k: Vec<i16>) -> Prompt {
        let frames = |enc: fn(i16) -> u8| -> Vec<[u8; FRAME_SAMPLES]> {
            samples_8k
                .chunks(FRAME_SAMPLES)
                .map(|chunk| {
                    let mut f = [enc(0); FRAME_SAMPLES];
                    for (o, &s) in f.iter_mut().zip(chunk) {
                        *o = enc(s);
                    }
                    f
                })
                .collect()
        };
        let ulaw = frames(ulaw_encode);
        let alaw = frames(alaw_encode);
        let duration = Duration::from_micros(samples_8k.len() as u64 * 1_000_000 / u64::from(RATE));
        Prompt {
            name: name.into(),
            samples_8k,
            ulaw,
            alaw,
            duration,
        }
    }

    /// Number of 20 ms frames.
    pub fn frame_count(&self) -> usize {
        self.ulaw.len()
    }

    /// Frame `i` in `codec`, or `None` past the end.
    pub fn frame(&self, codec: Codec, i: usize) -> Option<&[u8; FRAME_SAMPLES]> {
        self.frames(codec).get(i)
    }

    /// All frames in `codec`.
    pub fn frames(&self, codec: Codec) -> &[[u8; FRAME_SAMPLES]] {
        match codec {
            Codec::Pcmu => &self.ulaw,
            Codec::Pcma => &self.alaw,
        }
    }
}

/// Every prompt of every language, plus the extras; read-only once loaded.
#[derive(Debug, Default)]
pub struct PromptLibrary {
    prompts: BTreeMap<(String, String), Arc<Prompt>>,
    extra: BTreeMap<String, Arc<Prompt>>,
}

impl PromptLibrary {
    /// Load `sounds_dir/<lang>/<name>.wav` for every language and name
    /// (names may contain `/`, e.g. `numbers/42`), and each
    /// `(key, relative path)` of `extra` from `sounds_dir/<relative path>`.
    /// Every failure is collected, so one start-up reports them all.
    pub fn load(
        sounds_dir: &Path,
        languages: &[String],
        names: &BTreeSet<String>,
        extra: &[(String, String)],
    ) -> Result<PromptLibrary, Vec<PromptError>> {
        let mut lib = PromptLibrary::default();
        let mut errors = Vec::new();
        for lang in languages {
            for name in names {
                let path = sounds_dir.join(lang).join(format!("{name}.wav"));
                match load_wav(&path) {
                    Ok(samples) => {
                        let p = Prompt::from_samples_8k(format!("{lang}/{name}"), samples);
                        lib.prompts
                            .insert((lang.clone(), name.clone()), Arc::new(p));
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        for (key, rel) in extra {
            let path = sounds_dir.join(rel);
            match load_wav(&path) {
                Ok(samples) => {
                    lib.extra.insert(
                        key.clone(),
                        Arc::new(Prompt::from_samples_8k(key.clone(), samples)),
                    );
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(lib)
        } else {
            Err(errors)
        }
    }

    /// The prompt `name` in `lang`.
    pub fn get(&self, lang: &str, name: &str) -> Option<Arc<Prompt>> {
        self.prompts
            .get(&(lang.to_string(), name.to_string()))
            .cloned()
    }

    /// A language-independent extra (e.g. `hold_music`).
    pub fn get_extra(&self, key: &str) -> Option<Arc<Prompt>> {
        self.extra.get(key).cloned()
    }

    /// Insert a prompt (tests, generated tones).
    pub fn insert(&mut self, lang: &str, name: &str, prompt: Prompt) {
        self.prompts
            .insert((lang.to_string(), name.to_string()), Arc::new(prompt));
    }

    /// Insert an extra (tests, generated tones).
    pub fn insert_extra(&mut self, key: &str, prompt: Prompt) {
        self.extra.insert(key.to_string(), Arc::new(prompt));
    }

    /// Number of per-language prompts loaded.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty() && self.extra.is_empty()
    }
}

/// Read a WAV file and convert it to 8 kHz mono `i16`.
pub fn load_wav(path: &Path) -> Result<Vec<i16>, PromptError> {
    let unreadable = |reason: String| PromptError::Unreadable {
        path: path.to_path_buf(),
        reason,
    };
    let reader = match hound::WavReader::open(path) {
        Ok(r) => r,
        Err(hound::Error::IoError(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PromptError::Missing {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    if channels == 0 {
        return Err(unreadable("zero channels".into()));
    }
    if !(1000..=768_000).contains(&spec.sample_rate) {
        return Err(unreadable(format!(
            "unsupported sample rate {} Hz",
            spec.sample_rate
        )));
    }
    // Capacity from the header, bounded: a lying header must not allocate.
    let mut interleaved: Vec<f64> = Vec::with_capacity((reader.len() as usize).min(1 << 24));
    match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(unreadable(format!(
                    "{}-bit float is not supported",
                    spec.bits_per_sample
                )));
            }
            let mut reader = reader;
            for s in reader.samples::<f32>() {
                let s = s.map_err(|e| unreadable(e.to_string()))?;
                interleaved.push(if s.is_finite() {
                    f64::from(s).clamp(-1.0, 1.0)
                } else {
                    0.0
                });
            }
        }
        hound::SampleFormat::Int => {
            let bits = spec.bits_per_sample;
            if !(1..=32).contains(&bits) {
                return Err(unreadable(format!(
                    "{bits}-bit integer samples are not supported"
                )));
            }
            let scale = 1.0 / 2f64.powi(i32::from(bits) - 1);
            let mut reader = reader;
            for s in reader.samples::<i32>() {
                let s = s.map_err(|e| unreadable(e.to_string()))?;
                interleaved.push(f64::from(s) * scale);
            }
        }
    }
    let samples = convert_to_8k(&interleaved, channels, spec.sample_rate);
    if samples.is_empty() {
        return Err(PromptError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(samples)
}

/// Mix interleaved samples in [-1, 1] to mono, resample from `rate` to
/// 8 kHz and quantise to `i16`. Pure; 8 kHz 16-bit input comes out
/// bit-exact. Returns nothing for `channels == 0` or `rate == 0`.
pub fn convert_to_8k(interleaved: &[f64], channels: usize, rate: u32) -> Vec<i16> {
    if channels == 0 || rate == 0 {
        return Vec::new();
    }
    let mono: Vec<f64> = if channels == 1 {
        interleaved.to_vec()
    } else {
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f64>() / channels as f64)
            .collect()
    };
    let resampled = resample(&mono, rate, RATE);
    resampled
        .iter()
        .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zero crossings of the sinc on each side of the centre.
const ZERO_CROSSINGS: f64 = 32.0;
/// Cut-off as a fraction of the lower Nyquist frequency.
const CUTOFF: f64 = 0.92;
/// Largest polyphase table (taps × phases) precomputed; beyond it the
/// kernel is computed per output sample.
const MAX_TABLE: usize = 1 << 22;

/// Windowed-sinc resampling of `input` from `in_rate` to `out_rate`.
/// Output sample `n` sits at input position `n * in_rate / out_rate`; the
/// low-pass cut-off is `CUTOFF` × the lower of the two Nyquist
/// frequencies, so decimation does not alias. Each phase of the kernel is
/// normalised to unity DC gain.
pub fn resample(input: &[f64], in_rate: u32, out_rate: u32) -> Vec<f64> {
    if in_rate == out_rate || input.is_empty() || in_rate == 0 || out_rate == 0 {
        return if in_rate == 0 || out_rate == 0 {
            Vec::new()
        } else {
            input.to_vec()
        };
    }
    let g = gcd(u64::from(in_rate), u64::from(out_rate));
    let step = u64::from(in_rate) / g; // input advance per output sample, in 1/den units
    let den = u64::from(out_rate) / g;
    let len = input.len() as u64;
    let out_len = (len * den).div_ceil(step) as usize;
    // Cut-off in cycles per input sample.
    let fc = 0.5 * CUTOFF * (f64::from(out_rate) / f64::from(in_rate)).min(1.0);
    let half = (ZERO_CROSSINGS / (2.0 * fc)).ceil() as i64;
    let taps = (2 * half) as usize;
    let kernel = |frac: f64, out: &mut Vec<f64>| {
        out.clear();
        // Tap j is input index i0 - half + 1 + j, at distance x from the output position.
        for j in 0..taps as i64 {
            let x = (j - half + 1) as f64 - frac;
            let u = x / half as f64;
            let w = if u.abs() >= 1.0 {
                0.0
            } else {
                0.42 + 0.5 * (std::f64::consts::PI * u).cos()
                    + 0.08 * (2.0 * std::f64::consts::PI * u).cos()
            };
            let arg = 2.0 * fc * x;
            let sinc = if arg.abs() < 1e-12 {
                1.0
            } else {
                (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
            };
            out.push(sinc * w);
        }
        let sum: f64 = out.iter().sum();
        if sum.abs() > 1e-12 {
            for t in out.iter_mut() {
                *t /= sum;
            }
        }
    };
    let table: Option<Vec<Vec<f64>>> =
        (taps.saturating_mul(den as usize) <= MAX_TABLE).then(|| {
            (0..den)
                .map(|p| {
                    let mut k = Vec::with_capacity(taps);
                    kernel(p as f64 / den as f64, &mut k);
                    k
                })
                .collect()
        });
    let mut scratch = Vec::with_capacity(taps);
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len as u64 {
        let pos = n * step;
        let i0 = (pos / den) as i64;
        let phase = pos % den;
        let k: &[f64] = match &table {
            Some(t) => &t[phase as usize],
            None => {
                kernel(phase as f64 / den as f64, &mut scratch);
                &scratch
            }
        };
        let first = i0 - half + 1;
        let mut acc = 0.0;
        let lo = (-first).max(0) as usize;
        let hi = ((len as i64 - first).min(taps as i64)).max(0) as usize;
        for j in lo..hi.max(lo) {
            acc += k[j] * input[(first + j as i64) as usize];
        }
        out.push(acc);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_decode, ulaw_decode};

    fn tmpdir(tag: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("centralita-prompts-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp dir");
        d
    }

    fn write_wav_i16(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).expect("dir");
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).expect("create");
        for &s in samples {
            w.write_sample(s).expect("write");
        }
        w.finalize().expect("finalize");
    }

    fn sine(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<f64> {
        (0..n)
            .map(|i| amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    /// Goertzel power of `freq` in `x` (8 kHz), normalised by length.
    fn goertzel(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &v in x {
            let s = f64::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
    }

    fn zero_crossings(x: &[i16]) -> usize {
        x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    #[test]
    fn stereo_16k_sine_is_resampled_to_8k_and_stays_1khz() {
        let dir = tmpdir("stereo16k");
        let n = 16_000; // one second
        let tone = sine(1000.0, 16_000, n, 0.5);
        let mut inter = Vec::with_capacity(2 * n);
        for v in &tone {
            let s = (v * 32767.0).round() as i16;
            inter.push(s); // left
            inter.push(s / 2); // right, quieter: the mix is their mean
        }
        write_wav_i16(&dir.join("es/tone.wav"), 16_000, 2, &inter);
        let names: BTreeSet<String> = ["tone".to_string()].into();
        let lib = PromptLibrary::load(&dir, &["es".to_string()], &names, &[]).expect("loads");
        let p = lib.get("es", "tone").expect("present");
        assert_eq!(p.name, "es/tone");
        assert_eq!(p.samples_8k.len(), 8000);
        assert_eq!(p.duration, Duration::from_secs(1));
        assert_eq!(p.frame_count(), 50);
        assert_eq!(p.ulaw.len(), 50);
        assert_eq!(p.alaw.len(), 50);
        // Skip the filter's edges.
        let mid = &p.samples_8k[400..7600];
        // 1 kHz over 0.9 s: 1800 zero crossings (±2).
        let zc = zero_crossings(mid);
        assert!((1798..=1802).contains(&zc), "zero crossings {zc}");
        let at_1k = goertzel(mid, 1000.0);
        for other in [500.0, 1500.0, 2000.0, 3000.0] {
            assert!(
                at_1k > 1e4 * goertzel(mid, other),
                "1 kHz dominates {other}"
            );
        }
        // Amplitude: mean of 0.5 and 0.25 of full scale → ~0.375 × 32767.
        let peak = mid.iter().map(|v| i32::from(*v).abs()).max().unwrap_or(0);
        assert!((12_000..=12_600).contains(&peak), "peak {peak}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn decimation_filters_out_tones_above_4khz() {
        // 6 kHz at 16 kHz would alias to 2 kHz without a low-pass.
        let hi = sine(6000.0, 16_000, 16_000, 0.5);
        let lo = sine(1000.0, 16_000, 16_000, 0.5);
        let mixed: Vec<f64> = hi.iter().zip(&lo).map(|(a, b)| a + b * 0.5).collect();
        let out = convert_to_8k(&mixed, 1, 16_000);
        let mid = &out[400..7600];
        let alias = goertzel(mid, 2000.0);
        let wanted = goertzel(mid, 1000.0);
        assert!(
            wanted > 1e5 * alias,
            "alias suppressed: {wanted} vs {alias}"
        );
    }

    #[test]
    fn odd_ratios_44k1_and_48k_keep_the_tone() {
        for rate in [44_100u32, 48_000, 11_025, 22_050] {
            let x = sine(1000.0, rate, rate as usize, 0.5);
            let out = convert_to_8k(&x, 1, rate);
            assert!(
                (7999..=8001).contains(&out.len()),
                "{rate}: len {}",
                out.len()
            );
            let mid = &out[400..7600];
            let zc = zero_crossings(mid);
            assert!((1798..=1802).contains(&zc), "{rate}: zero crossings {zc}");
            let peak = mid.iter().map(|v| i32::from(*v).abs()).max().unwrap_or(0);
            assert!((16_000..=16_700).contains(&peak), "{rate}: peak {peak}");
        }
    }

    #[test]
    fn upsampling_from_4khz_works() {
        let x = sine(500.0, 4000, 4000, 0.5);
        let out = convert_to_8k(&x, 1, 4000);
        assert_eq!(out.len(), 8000);
        let zc = zero_crossings(&out[400..7600]);
        assert!((898..=902).contains(&zc), "zero crossings {zc}");
    }

    #[test]
    fn mono_8k_passes_through_bit_exact() {
        let dir = tmpdir("mono8k");
        let samples: Vec<i16> = (0..1000)
            .map(|i| ((i * 7919) % 65536 - 32768) as i16)
            .collect();
        write_wav_i16(&dir.join("music/hold.wav"), 8000, 1, &samples);
        let extra = vec![("hold_music".to_string(), "music/hold.wav".to_string())];
        let lib = PromptLibrary::load(&dir, &[], &BTreeSet::new(), &extra).expect("loads");
        let p = lib.get_extra("hold_music").expect("present");
        assert_eq!(p.samples_8k, samples);
        assert_eq!(p.name, "hold_music");
        // 1000 samples → 7 frames, the last padded with silence.
        assert_eq!(p.frame_count(), 7);
        let last = p.frame(Codec::Pcmu, 6).expect("last frame");
        assert!(last[40..].iter().all(|&b| b == 0xFF));
        assert!(p.frame(Codec::Pcma, 6).expect("last")[40..]
            .iter()
            .all(|&b| b == 0xD5));
        assert!(p.frame(Codec::Pcmu, 7).is_none());
        for (i, &s) in samples.iter().enumerate() {
            assert_eq!(p.ulaw[i / 160][i % 160], ulaw_encode(s));
            assert_eq!(p.alaw[i / 160][i % 160], alaw_encode(s));
        }
        // Decoding the frames gives back the samples within G.711 error.
        let d = ulaw_decode(p.ulaw[0][0]);
        assert!((i32::from(d) - i32::from(samples[0])).abs() <= 1100);
        let d = alaw_decode(p.alaw[0][0]);
        assert!((i32::from(d) - i32::from(samples[0])).abs() <= 1100);
        assert_eq!(lib.get("es", "hold_music"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_sample_formats_load() {
        let dir = tmpdir("formats");
        let x = sine(1000.0, 8000, 800, 0.5);
        let write = |name: &str, bits: u16, fmt: hound::SampleFormat| {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            let mut w =
                hound::WavWriter::create(dir.join(format!("en/{name}.wav")), spec).expect("create");
            for v in &x {
                match (fmt, bits) {
                    (hound::SampleFormat::Float, _) => w.write_sample(*v as f32).expect("w"),
                    (_, 8) => w.write_sample((v * 127.0).round() as i8).expect("w"),
                    (_, b) => w
                        .write_sample((v * 2f64.powi(i32::from(b) - 1)).round() as i32)
                        .expect("w"),
                }
            }
            w.finalize().expect("finalize");
        };
        std::fs::create_dir_all(dir.join("en")).expect("dir");
        write("f32", 32, hound::SampleFormat::Float);
        write("i8", 8, hound::SampleFormat::Int);
        write("i24", 24, hound::SampleFormat::Int);
        write("i32", 32, hound::SampleFormat::Int);
        let names: BTreeSet<String> = ["f32", "i8", "i24", "i32"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let lib = PromptLibrary::load(&dir, &["en".to_string()], &names, &[]).expect("loads");
        assert_eq!(lib.len(), 4);
        for n in &names {
            let p = lib.get("en", n).expect("present");
            assert_eq!(p.samples_8k.len(), 800, "{n}");
            let peak = p
                .samples_8k
                .iter()
                .map(|v| i32::from(*v).abs())
                .max()
                .unwrap_or(0);
            assert!((16_000..=16_500).contains(&peak), "{n}: peak {peak}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_path_and_are_all_collected() {
        let dir = tmpdir("errors");
        std::fs::create_dir_all(dir.join("es")).expect("dir");
        std::fs::write(dir.join("es/notwav.wav"), b"this is not a RIFF file at all")
            .expect("write");
        write_wav_i16(&dir.join("es/empty.wav"), 8000, 1, &[]);
        let names: BTreeSet<String> = ["missing", "notwav", "empty"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let extra = vec![("hold_music".to_string(), "music/nope.wav".to_string())];
        let errs =
            PromptLibrary::load(&dir, &["es".to_string()], &names, &extra).expect_err("fails");
        assert_eq!(errs.len(), 4, "{errs:?}");
        let find = |suffix: &str| {
            errs.iter()
                .find(|e| e.path().ends_with(suffix))
                .cloned()
                .expect(suffix)
        };
        let missing = find("es/missing.wav");
        assert!(matches!(missing, PromptError::Missing { .. }));
        assert!(
            missing
                .to_string()
                .contains(&dir.join("es/missing.wav").display().to_string()),
            "{missing}"
        );
        let notwav = find("es/notwav.wav");
        assert!(
            matches!(notwav, PromptError::Unreadable { .. }),
            "{notwav:?}"
        );
        assert!(notwav.to_string().contains("notwav.wav"), "{notwav}");
        assert!(matches!(find("es/empty.wav"), PromptError::Empty { .. }));
        assert!(matches!(
            find("music/nope.wav"),
            PromptError::Missing { .. }
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_files_never_panic() {
        let dir = tmpdir("garbage");
        let mut seed = 0x1234_5678u32;
        for i in 0..200 {
            // A valid header followed by random bytes, or random bytes alone.
            let mut bytes: Vec<u8> = if i % 2 == 0 {
                b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data".to_vec()
            } else {
                Vec::new()
            };
            for _ in 0..(seed % 64) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                bytes.push(seed as u8);
            }
            // Sometimes corrupt a header byte.
            if i % 3 == 0 && !bytes.is_empty() {
                let k = (seed as usize) % bytes.len();
                bytes[k] ^= 0xFF;
            }
            let path = dir.join("g.wav");
            std::fs::write(&path, &bytes).expect("write");
            let _ = load_wav(&path);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn random_wav_headers_never_panic() {
        let dir = tmpdir("headers");
        let path = dir.join("h.wav");
        let mut seed = 0x9E37_79B9u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for _ in 0..500 {
            let fmt_tag: u16 = [1, 3, 0xFFFE, 0, 2][(rnd() % 5) as usize];
            let channels = (rnd() % 4) as u16;
            let rate = [0u32, 1, 8000, 16_000, 44_100, u32::MAX][(rnd() % 6) as usize];
            let bits: u16 = [0, 1, 7, 8, 12, 16, 24, 32, 64][(rnd() % 9) as usize];
            let align = (rnd() % 9) as u16;
            let mut b = b"RIFF\xff\xff\x00\x00WAVEfmt \x10\x00\x00\x00".to_vec();
            b.extend_from_slice(&fmt_tag.to_le_bytes());
            b.extend_from_slice(&channels.to_le_bytes());
            b.extend_from_slice(&rate.to_le_bytes());
            b.extend_from_slice(&rate.wrapping_mul(u32::from(align)).to_le_bytes());
            b.extend_from_slice(&align.to_le_bytes());
            b.extend_from_slice(&bits.to_le_bytes());
            b.extend_from_slice(b"data");
            b.extend_from_slice(&(rnd() % 64).to_le_bytes());
            for _ in 0..(rnd() % 64) {
                b.push(rnd() as u8);
            }
            std::fs::write(&path, &b).expect("write");
            let _ = load_wav(&path);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn from_samples_frames_and_duration() {
        let p = Prompt::from_samples_8k("x", vec![0; 320]);
        assert_eq!(
            (p.frame_count(), p.duration),
            (2, Duration::from_millis(40))
        );
        let p = Prompt::from_samples_8k("x", vec![1000; 161]);
        assert_eq!(p.frame_count(), 2);
        assert_eq!(p.frames(Codec::Pcma)[1][1], Codec::Pcma.silence_byte());
        assert_eq!(p.frames(Codec::Pcmu)[1][0], ulaw_encode(1000));
    }
}
