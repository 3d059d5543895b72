//! Every shipped prompt and the hold music, fed through the in-band DTMF
//! detector (as linear audio and after a G.711 round trip, as a caller's
//! phone would echo it), must produce zero digits: speech and music must
//! never press a key.

use centralita::media::dtmf::inband::InbandDetector;
use centralita::media::g711::Codec;
use std::path::{Path, PathBuf};

fn wavs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            wavs(&path, out);
        } else if path.extension().is_some_and(|e| e == "wav") {
            out.push(path);
        }
    }
}

#[test]
fn no_shipped_sound_contains_a_dtmf_digit() {
    let mut files = Vec::new();
    wavs(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/sounds")),
        &mut files,
    );
    assert!(
        files.len() > 200,
        "prompts, numbers and music are all shipped ({} files)",
        files.len()
    );
    assert!(files.iter().any(|f| f.ends_with("music/hold.wav")));
    let mut found = Vec::new();
    for f in &files {
        let samples = centralita::media::prompts::load_wav(f).unwrap_or_else(|e| panic!("{e}"));
        for codec in [None, Some(Codec::Pcmu), Some(Codec::Pcma)] {
            let audio: Vec<i16> = match codec {
                None => samples.clone(),
                Some(c) => samples.iter().map(|&s| c.decode(c.encode(s))).collect(),
            };
            let mut det = InbandDetector::default();
            for chunk in audio.chunks(160) {
                det.process_with(chunk, |d| {
                    found.push(format!("{} ({codec:?}): {d}", f.display()))
                });
            }
        }
    }
    assert!(
        found.is_empty(),
        "digits detected in shipped sounds:\n{}",
        found.join("\n")
    );
}
