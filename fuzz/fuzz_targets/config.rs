//! The operator's config file: `RuntimeConfig::from_toml` (TOML parsing and
//! every validation check), without touching the filesystem.
#![no_main]

use centralita::config::{Overrides, RuntimeConfig};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RuntimeConfig::from_toml(
        text,
        Path::new("fuzz/centralita.toml"),
        &Overrides::default(),
    ) {
        Ok(cfg) => {
            // Lookups the call path makes with network input.
            for dialed in ["*0", "100", "soporte", "201", ""] {
                let _ = cfg.features.feature_of(dialed);
                let _ = cfg.queue_by_number(dialed);
                let _ = cfg.transfer_target(dialed);
                let _ = cfg.agent_by_sip_user(dialed);
            }
            if let Some(trunk) = cfg.callback_trunk() {
                let _ = trunk.uri_for("+34600000000");
            }
        }
        Err(errors) => assert!(!errors.is_empty()),
    }
});
