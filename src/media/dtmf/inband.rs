//! In-band DTMF detection on 8 kHz linear PCM (`i16`, G.711 already decoded).
//!
//! # Analysis
//!
//! Samples are cut into *units* of [`UNIT`] = 26 samples (3.25 ms). For each
//! unit a Goertzel filter per DTMF frequency (8 bins) gives the complex DFT
//! value, and the unit's energy is summed. Every completed unit closes an
//! analysis *window* made of the last 4 units: [`WINDOW`] = 104 samples
//! (13 ms), sliding by one unit. Per window:
//!
//! 1. The 8 full-window DFT values are assembled from the unit values (no
//!    second pass). In each group the strongest frequency is chosen; it must
//!    exceed the second-strongest of its group by
//!    [`InbandParams::min_group_dominance_db`] (6 dB). At 104 samples a bin
//!    is 77 Hz wide, so neighbouring low-group tones fall near a null.
//! 2. For the chosen pair, each half window (52 samples) is fitted by least
//!    squares with both sinusoids at their nominal frequencies at once
//!    (precomputed 4×4 inverse Gram matrices, one per digit). The joint fit
//!    removes the leakage of one tone into the other's estimate, which makes
//!    the level and twist figures accurate to a fraction of a dB.
//! 3. **Signal-to-rest**: in *each* half, the energy explained by the two
//!    fitted tones must be at least [`InbandParams::min_signal_ratio`] (0.85)
//!    of that half's total energy. Speech, music with harmonics, noise and
//!    windows only partly covered by a tone fail here.
//! 4. **Frequency**: the actual frequency of each tone is measured from the
//!    phase advance of its fitted phasor between the two halves (unambiguous
//!    within ±77 Hz). Offsets up to [`InbandParams::freq_tolerance`] (2.5 %)
//!    are accepted: the midpoint between ITU-T Q.24's "must accept ±1.5 %"
//!    and "must reject ±3.5 %", leaving ±1 % for estimation error. (Bins at
//!    104 samples are far too wide to make this decision from magnitudes,
//!    hence the phase measurement; gross offsets that alias in phase fail the
//!    signal-to-rest test.)
//! 5. **Level**: each tone's amplitude (corrected for the known loss caused
//!    by its measured offset) must reach [`InbandParams::min_tone_dbm0`]
//!    (−30 dBm0 per tone; 0 dBm0 is taken as a sine of peak
//!    [`DBM0_PEAK`] = 22 300, i.e. G.711 full scale is +3.17 dBm0).
//! 6. **Twist**: low-group level minus high-group level must lie within
//!    [−[`InbandParams::max_reverse_twist_db`], +[`InbandParams::max_normal_twist_db`]]
//!    = [−4 dB, +8 dB].
//!
//! # Per-press rule
//!
//! A digit is reported when [`InbandParams::min_windows`] (8) *consecutive*
//! windows all yield that same digit: a continuous tone spanning
//! 104 + 7 × 26 = 286 samples (35.75 ms). Because every window must be
//! ≥ 85 % tone in each half, edges add at most ~16 samples, so a tone of
//! ≥ 40 ms is always reported and one of ≤ 33 ms never is, at any alignment.
//! A digit is reported **once per press**: it is re-armed only after
//! [`InbandParams::release_windows`] (8) consecutive windows without it:
//! a gap of ≥ 20 ms always re-arms, drop-outs of ≤ 10 ms are bridged. A
//! different digit following directly is reported after its own 8 windows.
//!
//! # Stated limits
//!
//! Anything that satisfies all rules above for 36 ms *is* DTMF by the
//! standard's definition: e.g. a pure two-sine chord F5 + E6 (698 + 1319 Hz)
//! matches `2`. Real speech and music fail the signal-to-rest rule (their
//! energy is spread over harmonics and formants) long before that.
//!
//! Cost: per sample 8 Goertzel updates (one multiply-add each) and one
//! square; per unit (26 samples) a few dozen complex operations, two 4×4
//! solves and two `atan2`. No allocation after [`InbandDetector::new`]
//! ([`InbandDetector::process`] allocates only when it returns a digit).

use std::f32::consts::PI;

/// Sample rate the detector works at.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples per analysis unit (the hop between windows).
pub const UNIT: usize = 26;
/// Samples per half window.
pub const HALF: usize = 2 * UNIT;
/// Samples per analysis window.
pub const WINDOW: usize = 4 * UNIT;
/// Peak of the sine taken as 0 dBm0, in 16-bit linear units.
pub const DBM0_PEAK: f32 = 22_300.0;

/// Low-group frequencies (rows), Hz.
pub const LOW_FREQS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group frequencies (columns), Hz.
pub const HIGH_FREQS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Keypad: `KEYPAD[row][column]`.
pub const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Acceptance limits. The defaults are the module's stated limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandParams {
    /// Minimum level of each tone, dBm0 (default −30).
    pub min_tone_dbm0: f32,
    /// Largest accepted normal twist (high group weaker), dB (default 8).
    pub max_normal_twist_db: f32,
    /// Largest accepted reverse twist (low group weaker), dB (default 4).
    pub max_reverse_twist_db: f32,
    /// Largest accepted relative frequency offset of each tone (default
    /// 0.025: ±1.5 % is always accepted, ±3.5 % always rejected).
    pub freq_tolerance: f32,
    /// Minimum fraction of each half window's energy carried by the two
    /// tones (default 0.85).
    pub min_signal_ratio: f32,
    /// How much each chosen tone must exceed the next strongest frequency of
    /// its group, dB (default 6).
    pub min_group_dominance_db: f32,
    /// Consecutive windows (hop 26 samples) a digit must hold to be reported
    /// (default 8: 286 samples, 35.75 ms).
    pub min_windows: u32,
    /// Consecutive windows without the reported digit before the same digit
    /// can be reported again (default 8).
    pub release_windows: u32,
}

impl Default for InbandParams {
    fn default() -> Self {
        InbandParams {
            min_tone_dbm0: -30.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            freq_tolerance: 0.025,
            min_signal_ratio: 0.85,
            min_group_dominance_db: 6.0,
            min_windows: 8,
            release_windows: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct C {
    re: f32,
    im: f32,
}

impl C {
    fn new(re: f32, im: f32) -> Self {
        C { re, im }
    }
    fn expj(theta: f32) -> Self {
        C::new(theta.cos(), theta.sin())
    }
    fn add(self, o: C) -> C {
        C::new(self.re + o.re, self.im + o.im)
    }
    fn mul(self, o: C) -> C {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn conj(self) -> C {
        C::new(self.re, -self.im)
    }
    fn norm2(self) -> f32 {
        self.re * self.re + self.im * self.im
    }
}

/// Per-bin constants.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    freq: f32,
    omega: f32,
    /// 2 cos ω, the Goertzel coefficient.
    coeff: f32,
    /// e^{-jω}
    back: C,
    /// e^{-jω(UNIT-1)}: turns the Goertzel output into the DFT value
    /// referenced to the unit's first sample.
    finish: C,
    /// e^{-jω·UNIT}: shifts a unit's value to the next unit position.
    unit_shift: C,
    /// e^{-jω·HALF}
    half_shift: C,
}

const NBINS: usize = 8;

/// In-band DTMF detector; see the module doc for the rules.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    params: InbandParams,
    bins: [Bin; NBINS],
    /// Inverse Gram matrices of the 2-tone least-squares fit over a half
    /// window, indexed `row * 4 + column`.
    ginv: [[[f32; 4]; 4]; 16],
    min_amp2: f32,
    dominance: f32,
    normal_twist: f32,
    reverse_twist: f32,
    // Goertzel state of the unit being filled.
    s1: [f32; NBINS],
    s2: [f32; NBINS],
    energy: f32,
    filled: usize,
    // Ring of the last 4 completed units.
    units: [[C; NBINS]; 4],
    unit_energy: [f32; 4],
    head: usize,
    have_units: usize,
    // Press state machine.
    candidate: Option<char>,
    count: u32,
    latched: Option<char>,
    misses: u32,
}

impl Default for InbandDetector {
    fn default() -> Self {
        Self::new(InbandParams::default())
    }
}

impl InbandDetector {
    /// A detector with the given limits (`min_windows` and `release_windows`
    /// below 1 are taken as 1).
    pub fn new(params: InbandParams) -> Self {
        let mut bins = [Bin::default(); NBINS];
        for (bin, &freq) in bins
            .iter_mut()
            .zip(LOW_FREQS.iter().chain(HIGH_FREQS.iter()))
        {
            let omega = 2.0 * PI * freq / SAMPLE_RATE as f32;
            *bin = Bin {
                freq,
                omega,
                coeff: 2.0 * omega.cos(),
                back: C::expj(-omega),
                finish: C::expj(-omega * (UNIT as f32 - 1.0)),
                unit_shift: C::expj(-omega * UNIT as f32),
                half_shift: C::expj(-omega * HALF as f32),
            };
        }
        let mut ginv = [[[0.0f32; 4]; 4]; 16];
        for (row, &fl) in LOW_FREQS.iter().enumerate() {
            for (col, &fh) in HIGH_FREQS.iter().enumerate() {
                ginv[row * 4 + col] = inverse_gram(fl, fh);
            }
        }
        let amp = DBM0_PEAK * db_to_amp(params.min_tone_dbm0);
        InbandDetector {
            params,
            bins,
            ginv,
            min_amp2: amp * amp,
            dominance: db_to_power(params.min_group_dominance_db),
            normal_twist: db_to_power(params.max_normal_twist_db),
            reverse_twist: db_to_power(params.max_reverse_twist_db),
            s1: [0.0; NBINS],
            s2: [0.0; NBINS],
            energy: 0.0,
            filled: 0,
            units: [[C::default(); NBINS]; 4],
            unit_energy: [0.0; 4],
            head: 0,
            have_units: 0,
            candidate: None,
            count: 0,
            latched: None,
            misses: 0,
        }
    }

    /// The limits in force.
    pub fn params(&self) -> &InbandParams {
        &self.params
    }

    /// Forget all audio and press state (e.g. after a media restart).
    pub fn reset(&mut self) {
        *self = Self::new(self.params);
    }

    /// Feeds samples (any chunk size, usually 160); returns the digits whose
    /// press was recognised within them, in order. Allocates only when a
    /// digit is returned.
    pub fn process(&mut self, samples: &[i16]) -> Vec<char> {
        let mut out = Vec::new();
        self.process_with(samples, |d| out.push(d));
        out
    }

    /// Like [`process`](Self::process) but calls `on_digit` for each digit
    /// (never allocates).
    pub fn process_with(&mut self, samples: &[i16], mut on_digit: impl FnMut(char)) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (UNIT - self.filled).min(rest.len());
            let (now, later) = rest.split_at(take);
            rest = later;
            self.feed_unit(now);
            if self.filled == UNIT {
                self.finish_unit();
                if self.have_units == 4 {
                    let window = self.evaluate_window();
                    if let Some(d) = self.track(window) {
                        on_digit(d);
                    }
                }
            }
        }
    }

    fn feed_unit(&mut self, samples: &[i16]) {
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut coeff = [0.0f32; NBINS];
        for (c, b) in coeff.iter_mut().zip(self.bins.iter()) {
            *c = b.coeff;
        }
        let mut energy = 0.0f32;
        for &x in samples {
            let x = f32::from(x);
            energy += x * x;
            for k in 0..NBINS {
                let s0 = x + coeff[k] * s1[k] - s2[k];
                s2[k] = s1[k];
                s1[k] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy += energy;
        self.filled += samples.len();
    }

    fn finish_unit(&mut self) {
        let slot = self.head;
        for (k, bin) in self.bins.iter().enumerate() {
            let y = C::new(self.s1[k], 0.0).add(bin.back.mul(C::new(-self.s2[k], 0.0)));
            self.units[slot][k] = bin.finish.mul(y);
        }
        self.unit_energy[slot] = self.energy;
        self.head = (self.head + 1) % 4;
        self.have_units = (self.have_units + 1).min(4);
        self.s1 = [0.0; NBINS];
        self.s2 = [0.0; NBINS];
        self.energy = 0.0;
        self.filled = 0;
    }

    /// The digit the current window shows, if every per-window rule passes.
    fn evaluate_window(&self) -> Option<char> {
        // Oldest unit is at `head` (the slot about to be overwritten).
        let u = |i: usize| (self.head + i) % 4;
        let (u0, u1, u2, u3) = (u(0), u(1), u(2), u(3));
        let e_a = self.unit_energy[u0] + self.unit_energy[u1];
        let e_b = self.unit_energy[u2] + self.unit_energy[u3];
        // Cheapest rejection first: too little energy for two tones at the
        // minimum level in either half.
        let min_half_energy = HALF as f32 * self.min_amp2;
        if !(e_a >= min_half_energy && e_b >= min_half_energy) {
            return None;
        }
        let mut half_a = [C::default(); NBINS];
        let mut half_b = [C::default(); NBINS];
        let mut power = [0.0f32; NBINS];
        for (k, bin) in self.bins.iter().enumerate() {
            let a = self.units[u0][k].add(self.units[u1][k].mul(bin.unit_shift));
            let b = self.units[u2][k].add(self.units[u3][k].mul(bin.unit_shift));
            half_a[k] = a;
            half_b[k] = b;
            power[k] = a.add(b.mul(bin.half_shift)).norm2();
        }
        let row = dominant(&power[0..4], self.dominance)?;
        let col = dominant(&power[4..8], self.dominance)?;
        let (kl, kh) = (row, 4 + col);
        let ginv = self.ginv.get(row * 4 + col)?;
        let fit = |h: &[C; NBINS]| {
            let v = [h[kl].re, -h[kl].im, h[kh].re, -h[kh].im];
            let mut theta = [0.0f32; 4];
            for (t, g) in theta.iter_mut().zip(ginv.iter()) {
                *t = g[0] * v[0] + g[1] * v[1] + g[2] * v[2] + g[3] * v[3];
            }
            let explained: f32 = theta.iter().zip(v.iter()).map(|(t, v)| t * v).sum();
            (
                C::new(theta[0], -theta[1]),
                C::new(theta[2], -theta[3]),
                explained,
            )
        };
        let (la, ha, xa) = fit(&half_a);
        let (lb, hb, xb) = fit(&half_b);
        let ratio = self.params.min_signal_ratio;
        if !(xa >= ratio * e_a && xb >= ratio * e_b) {
            return None;
        }
        let low_amp2 = self.tone_power(kl, la, lb)?;
        let high_amp2 = self.tone_power(kh, ha, hb)?;
        if !(low_amp2 >= self.min_amp2 && high_amp2 >= self.min_amp2) {
            return None;
        }
        if !(low_amp2 <= high_amp2 * self.normal_twist
            && high_amp2 <= low_amp2 * self.reverse_twist)
        {
            return None;
        }
        KEYPAD.get(row).and_then(|r| r.get(col)).copied()
    }

    /// Checks the tone's frequency offset (phase advance between the halves)
    /// and returns its squared amplitude corrected for that offset.
    fn tone_power(&self, k: usize, a: C, b: C) -> Option<f32> {
        let bin = self.bins.get(k)?;
        let z = b.mul(a.conj());
        if z.norm2() <= 0.0 {
            return None;
        }
        let advance = wrap_pi(z.im.atan2(z.re) - bin.omega * HALF as f32);
        let offset_hz = advance * SAMPLE_RATE as f32 / (2.0 * PI * HALF as f32);
        let within = offset_hz.abs() <= self.params.freq_tolerance * bin.freq;
        if !within {
            return None;
        }
        // Amplitude loss of a nominal-frequency fit over HALF samples for a
        // tone `offset_hz` away (Dirichlet kernel).
        let x = PI * offset_hz / SAMPLE_RATE as f32;
        let gain = if x.abs() < 1e-6 {
            1.0
        } else {
            ((x * HALF as f32).sin() / (HALF as f32 * x.sin()))
                .abs()
                .max(0.5)
        };
        Some((a.norm2() + b.norm2()) / (2.0 * gain * gain))
    }

    /// Per-press state machine; returns a digit when a press is recognised.
    fn track(&mut self, window: Option<char>) -> Option<char> {
        match window {
            Some(d) if self.candidate == Some(d) => self.count = self.count.saturating_add(1),
            Some(d) => {
                self.candidate = Some(d);
                self.count = 1;
            }
            None => {
                self.candidate = None;
                self.count = 0;
            }
        }
        if self.latched.is_some() {
            if window == self.latched {
                self.misses = 0;
            } else {
                self.misses = self.misses.saturating_add(1);
                if self.misses >= self.params.release_windows.max(1) {
                    self.latched = None;
                }
            }
        }
        if self.count >= self.params.min_windows.max(1) && self.latched != self.candidate {
            self.latched = self.candidate;
            self.misses = 0;
            return self.candidate;
        }
        None
    }
}

/// Index of the strongest entry if it beats every other by `factor`.
fn dominant(power: &[f32], factor: f32) -> Option<usize> {
    let mut best = 0;
    for (i, &p) in power.iter().enumerate() {
        if p > power.get(best).copied().unwrap_or(0.0) {
            best = i;
        }
    }
    let top = power.get(best).copied()?;
    let ok = power
        .iter()
        .enumerate()
        .all(|(i, &p)| i == best || top >= p * factor);
    (ok && top > 0.0).then_some(best)
}

fn wrap_pi(mut a: f32) -> f32 {
    if !a.is_finite() {
        return a;
    }
    let two_pi = 2.0 * PI;
    a %= two_pi;
    if a > PI {
        a -= two_pi;
    } else if a <= -PI {
        a += two_pi;
    }
    a
}

fn db_to_power(db: f32) -> f32 {
    10f32.powf(db / 10.0)
}

fn db_to_amp(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Inverse of the Gram matrix of [cos ωl n, sin ωl n, cos ωh n, sin ωh n]
/// over n = 0..HALF, computed in f64 by Gauss-Jordan elimination. A
/// singular matrix (not the case for DTMF pairs) gives all zeros, which
/// makes the fit explain nothing and so never detects.
fn inverse_gram(fl: f32, fh: f32) -> [[f32; 4]; 4] {
    let wl = 2.0 * std::f64::consts::PI * f64::from(fl) / f64::from(SAMPLE_RATE);
    let wh = 2.0 * std::f64::consts::PI * f64::from(fh) / f64::from(SAMPLE_RATE);
    let mut g = [[0.0f64; 8]; 4];
    for n in 0..HALF {
        let n = n as f64;
        let basis = [
            (wl * n).cos(),
            (wl * n).sin(),
            (wh * n).cos(),
            (wh * n).sin(),
        ];
        for i in 0..4 {
            for j in 0..4 {
                g[i][j] += basis[i] * basis[j];
            }
        }
    }
    for (i, row) in g.iter_mut().enumerate() {
        row[4 + i] = 1.0;
    }
    for col in 0..4 {
        let mut pivot = col;
        for r in col + 1..4 {
            if g[r][col].abs() > g[pivot][col].abs() {
                pivot = r;
            }
        }
        if g[pivot][col].abs() < 1e-9 {
            return [[0.0; 4]; 4];
        }
        g.swap(col, pivot);
        let p = g[col][col];
        for v in g[col].iter_mut() {
            *v /= p;
        }
        let pivot_row = g[col];
        for (r, row) in g.iter_mut().enumerate() {
            if r != col {
                let f = row[col];
                for (v, pv) in row.iter_mut().zip(pivot_row.iter()) {
                    *v -= f * pv;
                }
            }
        }
    }
    let mut out = [[0.0f32; 4]; 4];
    for (o, row) in out.iter_mut().zip(g.iter()) {
        for (j, v) in o.iter_mut().enumerate() {
            *v = row[4 + j] as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FS: f32 = SAMPLE_RATE as f32;

    /// Row/column frequencies of a digit.
    fn freqs(d: char) -> (f32, f32) {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &k) in row.iter().enumerate() {
                if k == d {
                    return (LOW_FREQS[r], HIGH_FREQS[c]);
                }
            }
        }
        panic!("not a digit: {d}");
    }

    fn all_digits() -> impl Iterator<Item = char> {
        KEYPAD.iter().flat_map(|r| r.iter().copied())
    }

    fn amp(dbm0: f32) -> f32 {
        DBM0_PEAK * 10f32.powf(dbm0 / 20.0)
    }

    /// Sum of sines `(freq Hz, level dBm0)` lasting `n` samples.
    fn sines(parts: &[(f32, f32)], n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                parts
                    .iter()
                    .enumerate()
                    .map(|(k, &(f, l))| {
                        amp(l) * (2.0 * PI * f * i as f32 / FS + 0.7 * k as f32).sin()
                    })
                    .sum()
            })
            .collect()
    }

    fn pcm(x: &[f32]) -> Vec<i16> {
        x.iter()
            .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
            .collect()
    }

    fn ms(m: f32) -> usize {
        (m * FS / 1000.0).round() as usize
    }

    /// A digit's tone pair with per-tone levels and relative offsets.
    fn dtmf(d: char, low_db: f32, high_db: f32, low_off: f32, high_off: f32, n: usize) -> Vec<i16> {
        let (fl, fh) = freqs(d);
        pcm(&sines(
            &[
                (fl * (1.0 + low_off), low_db),
                (fh * (1.0 + high_off), high_db),
            ],
            n,
        ))
    }

    fn tone(d: char, n: usize) -> Vec<i16> {
        dtmf(d, -10.0, -10.0, 0.0, 0.0, n)
    }

    /// `lead` samples of silence, the signal, 100 ms of silence; fed in
    /// 160-sample frames.
    fn detect_padded(lead: usize, sig: &[i16]) -> Vec<char> {
        let mut s = vec![0i16; lead];
        s.extend_from_slice(sig);
        s.extend(std::iter::repeat_n(0, ms(100.0)));
        detect(&s, 160)
    }

    fn detect(s: &[i16], chunk: usize) -> Vec<char> {
        let mut det = InbandDetector::default();
        s.chunks(chunk.max(1))
            .flat_map(|c| det.process(c))
            .collect()
    }

    /// Deterministic white noise (LCG), uniform, RMS `rms`.
    fn noise(n: usize, rms: f32, seed: u64) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5; // [-0.5, 0.5)
                u * rms * 12f32.sqrt()
            })
            .collect()
    }

    fn mix(a: &[f32], b: &[f32]) -> Vec<f32> {
        a.iter().zip(b).map(|(x, y)| x + y).collect()
    }

    #[test]
    fn each_digit_detected_once() {
        for d in all_digits() {
            assert_eq!(detect_padded(37, &tone(d, ms(100.0))), vec![d], "digit {d}");
        }
    }

    #[test]
    fn duration_40ms_detected_30ms_not_at_any_alignment() {
        for d in ['1', '5', '#', 'D', '0'] {
            for lead in 0..UNIT + 1 {
                assert_eq!(
                    detect_padded(lead, &tone(d, ms(40.0))),
                    vec![d],
                    "{d} 40ms lead {lead}"
                );
                assert_eq!(
                    detect_padded(lead, &tone(d, ms(30.0))),
                    vec![],
                    "{d} 30ms lead {lead}"
                );
                assert_eq!(
                    detect_padded(lead, &tone(d, ms(33.0))),
                    vec![],
                    "{d} 33ms lead {lead}"
                );
            }
        }
    }

    #[test]
    fn frequency_tolerance_1_5_accepted_3_5_rejected() {
        for d in all_digits() {
            for (lo, hi) in [
                (0.015, 0.015),
                (-0.015, -0.015),
                (0.015, -0.015),
                (-0.015, 0.015),
            ] {
                let s = dtmf(d, -10.0, -10.0, lo, hi, ms(60.0));
                assert_eq!(detect_padded(11, &s), vec![d], "{d} offsets {lo} {hi}");
            }
            for (lo, hi) in [
                (0.035, 0.0),
                (-0.035, 0.0),
                (0.0, 0.035),
                (0.0, -0.035),
                (0.035, 0.035),
                (-0.035, -0.035),
                (0.05, 0.0),
                (0.0, -0.06),
            ] {
                let s = dtmf(d, -10.0, -10.0, lo, hi, ms(200.0));
                assert_eq!(detect_padded(11, &s), vec![], "{d} offsets {lo} {hi}");
            }
        }
    }

    #[test]
    fn twist_limits() {
        for d in all_digits() {
            let normal_ok = dtmf(d, -8.0, -15.5, 0.0, 0.0, ms(60.0));
            assert_eq!(detect_padded(5, &normal_ok), vec![d], "{d} normal 7.5");
            let normal_bad = dtmf(d, -8.0, -17.0, 0.0, 0.0, ms(200.0));
            assert_eq!(detect_padded(5, &normal_bad), vec![], "{d} normal 9");
            let reverse_ok = dtmf(d, -11.5, -8.0, 0.0, 0.0, ms(60.0));
            assert_eq!(detect_padded(5, &reverse_ok), vec![d], "{d} reverse 3.5");
            let reverse_bad = dtmf(d, -13.0, -8.0, 0.0, 0.0, ms(200.0));
            assert_eq!(detect_padded(5, &reverse_bad), vec![], "{d} reverse 5");
        }
    }

    #[test]
    fn level_floor() {
        for d in ['1', '0', 'D'] {
            assert_eq!(
                detect_padded(3, &dtmf(d, -28.0, -28.0, 0.0, 0.0, ms(60.0))),
                vec![d]
            );
            assert_eq!(
                detect_padded(3, &dtmf(d, -33.0, -33.0, 0.0, 0.0, ms(200.0))),
                vec![]
            );
            // Loudest possible (+3 dBm0 total, just below clipping).
            assert_eq!(
                detect_padded(3, &dtmf(d, -3.0, -3.0, 0.0, 0.0, ms(60.0))),
                vec![d]
            );
        }
    }

    fn sequence(digits: &str, on_ms: f32, off_ms: f32) -> Vec<i16> {
        let mut s = Vec::new();
        for d in digits.chars() {
            s.extend(tone(d, ms(on_ms)));
            s.extend(std::iter::repeat_n(0, ms(off_ms)));
        }
        s
    }

    #[test]
    fn sequence_with_50ms_gaps() {
        let s = sequence("123#", 50.0, 50.0);
        assert_eq!(detect(&s, 160), vec!['1', '2', '3', '#']);
        // Repeated digit with 50 ms gaps is reported each time.
        assert_eq!(detect(&sequence("5555", 50.0, 50.0), 160), vec!['5'; 4]);
    }

    #[test]
    fn any_chunk_size_gives_same_digits() {
        let s = sequence("9A*0", 45.0, 40.0);
        for chunk in [1, 7, 26, 100, 160, 161, 4000, 100_000] {
            assert_eq!(detect(&s, chunk), vec!['9', 'A', '*', '0'], "chunk {chunk}");
        }
    }

    #[test]
    fn long_press_once_and_dropout_bridged() {
        assert_eq!(detect_padded(0, &tone('7', ms(500.0))), vec!['7']);
        // 100 ms, a 10 ms drop-out, 100 ms: still one press.
        let mut s = tone('8', ms(100.0));
        s.extend(std::iter::repeat_n(0, ms(10.0)));
        s.extend(tone('8', ms(100.0)));
        assert_eq!(detect(&s, 160), vec!['8']);
        // ... but a 20 ms gap separates two presses.
        let mut s = tone('8', ms(100.0));
        s.extend(std::iter::repeat_n(0, ms(20.0)));
        s.extend(tone('8', ms(100.0)));
        assert_eq!(detect(&s, 160), vec!['8', '8']);
        // Two different digits back to back without a gap: both.
        let mut s = tone('1', ms(80.0));
        s.extend(tone('2', ms(80.0)));
        assert_eq!(detect(&s, 160), vec!['1', '2']);
    }

    #[test]
    fn white_noise_gives_nothing() {
        for (i, rms_db) in [-40.0f32, -20.0, -10.0, 0.0].iter().enumerate() {
            let n = noise(ms(5000.0), amp(*rms_db) / 2f32.sqrt(), 12345 + i as u64);
            assert_eq!(detect(&pcm(&n), 160), vec![], "noise {rms_db} dBm0");
        }
    }

    /// Tones at −10 dBm0 each with white noise 15 dB below the total tone power (SNR 15 dB).
    #[test]
    fn detected_in_noise_at_15db_snr() {
        for (i, d) in all_digits().enumerate() {
            let (fl, fh) = freqs(d);
            let t = sines(&[(fl, -10.0), (fh, -10.0)], ms(80.0));
            // Total tone power = 2 × amp²/2; noise power 15 dB below.
            let tone_power = amp(-10.0).powi(2);
            let n = noise(t.len(), (tone_power / 10f32.powf(1.5)).sqrt(), i as u64);
            assert_eq!(detect_padded(0, &pcm(&mix(&t, &n))), vec![d], "{d}");
        }
    }

    #[test]
    fn single_tone_never_detected() {
        for &f in LOW_FREQS.iter().chain(HIGH_FREQS.iter()) {
            for off in [-0.01f32, 0.0, 0.01] {
                for db in [-20.0, -10.0, 0.0] {
                    let s = pcm(&sines(&[(f * (1.0 + off), db)], ms(300.0)));
                    assert_eq!(detect(&s, 160), vec![], "{f} Hz {off} {db} dBm0");
                }
            }
        }
    }

    /// Harmonic, speech-like signals: a glottal-pulse-like harmonic series
    /// with gliding pitch, shaped by two formants that sweep through the
    /// DTMF band; and musical chords (three notes, and two-note intervals
    /// with harmonics). None may produce a digit.
    #[test]
    fn speech_like_and_chords_give_nothing() {
        let n = ms(4000.0);
        let mut s = vec![0f32; n];
        let mut phase = 0f32;
        for (i, v) in s.iter_mut().enumerate() {
            let t = i as f32 / FS;
            let f0 = 110.0 + 60.0 * (2.0 * PI * 0.7 * t).sin() + 40.0 * (2.0 * PI * 2.3 * t).sin();
            phase += 2.0 * PI * f0 / FS;
            let f1 = 700.0 + 250.0 * (2.0 * PI * 1.3 * t).sin();
            let f2 = 1400.0 + 300.0 * (2.0 * PI * 0.9 * t).sin();
            let mut x = 0.0;
            for h in 1..30 {
                let fh = f0 * h as f32;
                if fh > 3800.0 {
                    break;
                }
                let g1 = 1.0 / (1.0 + ((fh - f1) / 90.0).powi(2));
                let g2 = 0.7 / (1.0 + ((fh - f2) / 120.0).powi(2));
                x += (g1 + g2 + 0.02) * (phase * h as f32).sin();
            }
            *v = x * 4000.0;
        }
        assert_eq!(detect(&pcm(&s), 160), vec![], "harmonic speech-like");

        // Chords of three pure notes near DTMF pitches: F5 A5 E6, A#5 D6 F#6.
        for chord in [
            [698.46f32, 880.0, 1318.5],
            [932.33, 1174.66, 1479.98],
            [783.99, 987.77, 1567.98],
        ] {
            let parts: Vec<_> = chord.iter().map(|&f| (f, -12.0)).collect();
            assert_eq!(
                detect(&pcm(&sines(&parts, ms(500.0))), 160),
                vec![],
                "{chord:?}"
            );
        }
        // Two notes with instrument-like harmonics (−6, −12 dB).
        for (a, b) in [(698.46f32, 1318.5f32), (932.33, 1479.98)] {
            let parts = [
                (a, -10.0),
                (b, -10.0),
                (2.0 * a, -16.0),
                (2.0 * b, -16.0),
                (3.0 * a, -22.0),
                (3.0 * b, -22.0),
            ];
            assert_eq!(
                detect(&pcm(&sines(&parts, ms(500.0))), 160),
                vec![],
                "{a}+{b}"
            );
        }
    }

    // Tiny G.711 µ-law codec (ITU-T G.711, 14-bit segment encoding; values
    // are 16-bit linear, as a decoder hands them to the detector).
    fn ulaw_encode(x: i16) -> u8 {
        const BIAS: i32 = 0x84;
        const CLIP: i32 = 32635;
        let mut v = i32::from(x);
        let sign = if v < 0 {
            v = -v;
            0x80
        } else {
            0
        };
        v = v.min(CLIP) + BIAS;
        let mut exp = 7;
        let mut mask = 0x4000;
        while exp > 0 && v & mask == 0 {
            exp -= 1;
            mask >>= 1;
        }
        let mant = (v >> (exp + 3)) & 0x0f;
        !(sign | (exp << 4) as u8 | mant as u8)
    }

    fn ulaw_decode(u: u8) -> i16 {
        let u = !u;
        let sign = u & 0x80;
        let exp = i32::from((u >> 4) & 0x07);
        let mant = i32::from(u & 0x0f);
        let v = (((mant << 3) + 0x84) << exp) - 0x84;
        (if sign != 0 { -v } else { v }) as i16
    }

    fn through_ulaw(s: &[i16]) -> Vec<i16> {
        s.iter().map(|&x| ulaw_decode(ulaw_encode(x))).collect()
    }

    #[test]
    fn ulaw_codec_sane() {
        for x in [-32768i16, -1000, -1, 0, 1, 1000, 8000, 32767] {
            let y = ulaw_decode(ulaw_encode(x));
            assert!(
                (i32::from(x) - i32::from(y)).abs() <= (i32::from(x).abs() / 16).max(8) + 130,
                "{x} {y}"
            );
        }
        assert_eq!(ulaw_encode(0), 0xff);
    }

    #[test]
    fn works_after_ulaw() {
        for d in all_digits() {
            assert_eq!(
                detect_padded(9, &through_ulaw(&tone(d, ms(40.0)))),
                vec![d],
                "{d}"
            );
            let edge = through_ulaw(&dtmf(d, -8.0, -15.5, 0.015, -0.015, ms(60.0)));
            assert_eq!(detect_padded(9, &edge), vec![d], "{d} twist+offset");
            let quiet = through_ulaw(&dtmf(d, -25.0, -25.0, 0.0, 0.0, ms(60.0)));
            assert_eq!(detect_padded(9, &quiet), vec![d], "{d} quiet");
        }
        let s = through_ulaw(&sequence("123#", 50.0, 50.0));
        assert_eq!(detect(&s, 160), vec!['1', '2', '3', '#']);
        assert_eq!(
            detect_padded(0, &through_ulaw(&tone('4', ms(30.0)))),
            vec![]
        );
    }

    /// The reference Goertzel decoder from crates.io (`dtmf` 0.1) as an
    /// oracle: on clean presses of 80 ms with 80 ms gaps both report the
    /// same digits. (It has no frequency-tolerance or twist limits, so it
    /// can only be an oracle for clean tones.)
    #[test]
    fn agrees_with_dtmf_crate_oracle() {
        let digits = "0123456789*#ABCD5#9";
        let s = sequence(digits, 80.0, 80.0);
        let mut oracle = Vec::new();
        {
            let mut dec = ::dtmf::decoder::Decoder::new(SAMPLE_RATE, |tone, state| {
                if state == ::dtmf::enums::State::On {
                    oracle.push(tone.as_char());
                }
            });
            let f: Vec<f32> = s.iter().map(|&x| f32::from(x) / 32768.0).collect();
            for c in f.chunks(160) {
                dec.process(c);
            }
        }
        let ours: String = detect(&s, 160).into_iter().collect();
        let oracle: String = oracle.into_iter().collect();
        assert_eq!(oracle, digits);
        assert_eq!(ours, oracle);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn never_panics_on_any_samples(s in proptest::collection::vec(any::<i16>(), 0..2000), chunk in 1usize..300) {
            let mut det = InbandDetector::default();
            for c in s.chunks(chunk) {
                for d in det.process(c) {
                    prop_assert!(KEYPAD.iter().flatten().any(|&k| k == d));
                }
            }
        }

        #[test]
        fn never_panics_with_any_params(
            vals in proptest::collection::vec(prop_oneof![any::<f32>(), Just(f32::NAN), Just(f32::INFINITY)], 6),
            mw in any::<u32>(), rw in any::<u32>(),
            s in proptest::collection::vec(any::<i16>(), 0..600),
        ) {
            let p = InbandParams {
                min_tone_dbm0: vals[0],
                max_normal_twist_db: vals[1],
                max_reverse_twist_db: vals[2],
                freq_tolerance: vals[3],
                min_signal_ratio: vals[4],
                min_group_dominance_db: vals[5],
                min_windows: mw,
                release_windows: rw,
            };
            let mut det = InbandDetector::new(p);
            let _ = det.process(&s);
            let mut t = tone('5', 800);
            t.extend(s);
            let _ = det.process(&t);
        }
    }
}
