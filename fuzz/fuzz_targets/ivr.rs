//! The operator's IVR menu files: `IvrScript::load_sources` (TOML parsing
//! and cross-file checks). Input before the first NUL byte is the menu text
//! (split into several files at lines that are exactly `%%`); bytes after it
//! drive an `IvrCall` on the loaded script as a caller's key presses
//! (`0-9*#` digits, `P` playback finished, `T` timeout).
#![no_main]

use centralita::ivr::{IvrCall, IvrEvent, IvrScript};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let nul = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    let Ok(text) = std::str::from_utf8(&data[..nul]) else {
        return;
    };
    let events = data.get(nul + 1..).unwrap_or_default();
    let parts: Vec<&str> = text.split("\n%%\n").collect();
    let paths: Vec<PathBuf> = (0..parts.len())
        .map(|i| PathBuf::from(format!("ivr/{i:02}.toml")))
        .collect();
    let script = match IvrScript::load_sources(
        paths
            .iter()
            .map(PathBuf::as_path)
            .zip(parts.iter().copied()),
    ) {
        Ok(s) => s,
        Err(errors) => {
            assert!(!errors.is_empty());
            return;
        }
    };
    let _ = script.prompt_names();
    let _ = script.queue_names();
    let _ = script.typed_callback_menus();
    let _ = script.languages();
    let Some(entry) = script.entry().map(str::to_string) else {
        return;
    };
    let language = script
        .languages()
        .into_iter()
        .next()
        .unwrap_or_else(|| "es".to_string());
    let mut now = Instant::now();
    let Ok(mut call) = IvrCall::new(Arc::new(script), &entry, &language, now) else {
        return;
    };
    call.handle_event(now, IvrEvent::Answered);
    for &b in events.iter().take(512) {
        let mut drained = 0;
        while call.poll_action().is_some() {
            drained += 1;
            assert!(drained < 100_000, "runaway IVR actions");
        }
        if call.is_finished() {
            break;
        }
        now += Duration::from_millis(100);
        match b {
            b'0'..=b'9' | b'*' | b'#' => call.handle_event(now, IvrEvent::Digit(char::from(b))),
            b'P' => call.handle_event(now, IvrEvent::PlaybackFinished),
            b'T' => {
                if let Some(t) = call.poll_timeout() {
                    now = now.max(t);
                    call.handle_timeout(now);
                }
            }
            other => call.handle_event(now, IvrEvent::Digit(char::from(other))),
        }
        let _ = call.current_menu();
        let _ = call.collecting();
    }
});
