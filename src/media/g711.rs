//! G.711 µ-law (PCMU) and A-law (PCMA) companding, and the [`Codec`] enum
//! that names the two codecs everywhere else (SDP negotiation, the media
//! clock, the receiver).
//!
//! Sans-IO: pure functions on samples and bytes; nothing here touches a
//! socket, a file or the clock.
//!
//! Hand-written because G.711 is a few dozen lines of well-specified
//! arithmetic (ITU-T G.711, following the G.191 reference `g711.c`), not
//! worth a runtime dependency. The tests compare every code and every `i16`
//! against an independent implementation (`audio-codec-algorithms`, whose
//! own tests use the G.191 reference vectors). Decoding uses 256-entry
//! tables computed at compile time from the expansion formulas.

/// One of the two G.711 codecs, with its static RTP payload type
/// (RFC 3551: PCMU = 0, PCMA = 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// Both codecs, in our default order of preference.
    pub const ALL: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

    /// The static RTP payload type (0 or 8).
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec for a static payload type, if it is one of ours.
    pub fn from_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`a=rtpmap:<pt> <name>/8000`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code of a zero sample: `0xFF` for µ-law, `0xD5` for A-law.
    pub fn silence_byte(self) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(0),
            Codec::Pcma => alaw_encode(0),
        }
    }

    /// Encode `min(pcm.len(), out.len())` samples; the rest of `out` is left
    /// untouched. Returns how many bytes were written.
    pub fn encode_frame(self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            Codec::Pcmu => ulaw_encode_slice(pcm, out),
            Codec::Pcma => alaw_encode_slice(pcm, out),
        }
    }

    /// Decode `min(codes.len(), out.len())` codes; the rest of `out` is left
    /// untouched. Returns how many samples were written.
    pub fn decode_frame(self, codes: &[u8], out: &mut [i16]) -> usize {
        match self {
            Codec::Pcmu => ulaw_decode_slice(codes, out),
            Codec::Pcma => alaw_decode_slice(codes, out),
        }
    }

    /// Encode one sample.
    pub fn encode(self, s: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(s),
            Codec::Pcma => alaw_encode(s),
        }
    }

    /// Decode one code.
    pub fn decode(self, c: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(c),
            Codec::Pcma => alaw_decode(c),
        }
    }
}

/// µ-law encode one 16-bit linear sample (G.191 `ulaw_compress`: the 14-bit
/// magnitude in one's complement for negatives, biased by 33, 8 segments).
pub fn ulaw_encode(s: i16) -> u8 {
    // One's complement for negatives (as G.191): ~s >= 0 when s < 0.
    let mag: i32 = if s < 0 {
        i32::from(!s) >> 2
    } else {
        i32::from(s) >> 2
    };
    let absno = (mag + 33).min(0x1FFF);
    let mut i = absno >> 6;
    let mut segno: i32 = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 8 - segno;
    let low = 0x0F - ((absno >> segno) & 0x0F);
    let mut code = ((high << 4) | low) as u8;
    if s >= 0 {
        code |= 0x80;
    }
    code
}

/// A-law encode one 16-bit linear sample (G.191 `alaw_compress`: 12-bit
/// magnitude, one's complement for negatives, even bits inverted).
pub fn alaw_encode(s: i16) -> u8 {
    let mut ix: i32 = if s < 0 {
        i32::from(!s) >> 4
    } else {
        i32::from(s) >> 4
    };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if s >= 0 {
        ix |= 0x80;
    }
    (ix as u8) ^ 0x55
}

const fn ulaw_expand(code: u8) -> i16 {
    let negative = code < 0x80;
    let m = !code;
    let exponent = ((m >> 4) & 0x07) as i32;
    let mantissa = (m & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let v = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    (if negative { -v } else { v }) as i16
}

const fn alaw_expand(code: u8) -> i16 {
    let ix = ((code ^ 0x55) & 0x7F) as i32;
    let iexp = ix >> 4;
    let mut mant = ix & 0x0F;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 8;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if code > 127 { mant } else { -mant }) as i16
}

const ULAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_expand(i as u8);
        i += 1;
    }
    t
};

const ALAW_TABLE: [i16; 256] = {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_expand(i as u8);
        i += 1;
    }
    t
};

/// µ-law decode one code to a 16-bit linear sample.
pub fn ulaw_decode(c: u8) -> i16 {
    ULAW_TABLE[usize::from(c)]
}

/// A-law decode one code to a 16-bit linear sample.
pub fn alaw_decode(c: u8) -> i16 {
    ALAW_TABLE[usize::from(c)]
}

/// Encode `min(pcm.len(), out.len())` samples as µ-law; returns the count.
pub fn ulaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = ulaw_encode(s);
    }
    n
}

/// Encode `min(pcm.len(), out.len())` samples as A-law; returns the count.
pub fn alaw_encode_slice(pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = alaw_encode(s);
    }
    n
}

/// Decode `min(codes.len(), out.len())` µ-law codes; returns the count.
pub fn ulaw_decode_slice(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = ulaw_decode(c);
    }
    n
}

/// Decode `min(codes.len(), out.len())` A-law codes; returns the count.
pub fn alaw_decode_slice(codes: &[u8], out: &mut [i16]) -> usize {
    let n = codes.len().min(out.len());
    for (o, &c) in out.iter_mut().zip(codes) {
        *o = alaw_decode(c);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use audio_codec_algorithms as oracle;

    #[test]
    fn ulaw_decode_all_256_codes_match_oracle() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), oracle::decode_ulaw(c), "code {c:#04x}");
        }
    }

    #[test]
    fn alaw_decode_all_256_codes_match_oracle() {
        for c in 0..=255u8 {
            assert_eq!(alaw_decode(c), oracle::decode_alaw(c), "code {c:#04x}");
        }
    }

    #[test]
    fn ulaw_encode_all_65536_samples_match_oracle() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(s), oracle::encode_ulaw(s), "sample {s}");
        }
    }

    #[test]
    fn alaw_encode_all_65536_samples_match_oracle() {
        for s in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(s), oracle::encode_alaw(s), "sample {s}");
        }
    }

    #[test]
    fn decode_then_encode_is_identity_except_negative_zero() {
        for c in 0..=255u8 {
            // µ-law 0x7F (-0) decodes to 0, which encodes as 0xFF (+0).
            if c != 0x7F {
                assert_eq!(ulaw_encode(ulaw_decode(c)), c, "ulaw {c:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(c)), c, "alaw {c:#04x}");
        }
    }

    #[test]
    fn codec_helpers() {
        assert_eq!(Codec::Pcmu.payload_type(), 0);
        assert_eq!(Codec::Pcma.payload_type(), 8);
        assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_payload_type(3), None);
        assert_eq!(Codec::Pcmu.silence_byte(), 0xFF);
        assert_eq!(Codec::Pcma.silence_byte(), 0xD5);
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 397) % 20000 - 10000) as i16)
            .collect();
        for codec in Codec::ALL {
            let mut enc = [0u8; 160];
            assert_eq!(codec.encode_frame(&pcm, &mut enc), 160);
            let mut dec = [0i16; 160];
            assert_eq!(codec.decode_frame(&enc, &mut dec), 160);
            for (a, b) in pcm.iter().zip(dec.iter()) {
                // G.711 error is at most half a step: < 1/32 of the magnitude + 16.
                assert!((i32::from(*a) - i32::from(*b)).abs() <= i32::from(*a).abs() / 16 + 16);
            }
            // Mismatched lengths never panic; the shorter wins.
            assert_eq!(codec.encode_frame(&pcm[..10], &mut enc), 10);
            assert_eq!(codec.decode_frame(&enc, &mut dec[..3]), 3);
        }
    }
}
