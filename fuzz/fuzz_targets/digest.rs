//! Digest credentials from the network: `digest::parse_authorization`
//! (Authorization / Proxy-Authorization values), `Algorithm::from_token`,
//! and `Verifier::verify` / `NonceManager::validate` on what was parsed —
//! with the nonce as sent (forged) and replaced by a genuine one, so the
//! response comparison is reached.
#![no_main]

use centralita::sip::digest::{self, Algorithm, AuthOutcome, NonceManager, Secret, Verifier};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let _ = Algorithm::from_token(&value);
    let Ok(creds) = digest::parse_authorization(&value) else {
        return;
    };
    let now = Instant::now();
    let mut v = Verifier::new(
        creds.realm.clone(),
        NonceManager::new([7; 32], Duration::from_secs(300), now),
    );
    let _ = v
        .nonces_mut()
        .validate(&creds.nonce, creds.nc.unwrap_or(0), now);
    let _ = v.verify("INVITE", &creds, Some(Secret::Password("secret")), now);
    let _ = v.verify("REGISTER", &creds, None, now);

    let mut genuine = creds.clone();
    genuine.nonce = v.nonces_mut().issue(now);
    let _ = v.verify("REGISTER", &genuine, Some(Secret::Password("secret")), now);
    let _ = v.verify(
        "INVITE",
        &genuine,
        Some(Secret::Ha1 {
            md5: Some(&creds.response),
            sha256: Some(&creds.username),
        }),
        now,
    );
    // A response computed the way a client would must be accepted once.
    if let (Some(qop), Some(cnonce), Some(nc_raw)) = (
        genuine.qop.as_deref(),
        genuine.cnonce.as_deref(),
        genuine.nc_raw.as_deref(),
    ) {
        let mut right = genuine.clone();
        right.response = digest::response(
            genuine.algorithm,
            &genuine.username,
            &genuine.realm,
            "secret",
            "INVITE",
            &genuine.uri,
            &genuine.nonce,
            Some(nc_raw),
            Some(cnonce),
            Some(qop),
        );
        let outcome = v.verify("INVITE", &right, Some(Secret::Password("secret")), now);
        if qop.eq_ignore_ascii_case("auth") {
            assert_ne!(outcome, AuthOutcome::Forbidden, "right response refused");
        }
    }
    let _ = digest::challenge_headers(&creds.realm, &genuine.nonce, true);
});
