//! The test client's side of digest authentication (RFC 7616, RFC 8760),
//! computed here from the hash crates, independently of the server's code.

use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// `Digest realm="x", nonce="y", ...` → lowercase param name → value.
pub fn parse_challenge(value: &str) -> HashMap<String, String> {
    let rest = value.trim().strip_prefix("Digest").unwrap_or(value).trim();
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next().is_none() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let v: String = std::iter::from_fn(|| chars.next_if(|c| *c != '"')).collect();
            chars.next();
            v
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.insert(name.trim().to_ascii_lowercase(), value);
    }
    out
}

pub fn hash(alg: &str, data: &str) -> String {
    let bytes: Vec<u8> = if alg.eq_ignore_ascii_case("SHA-256") {
        Sha256::digest(data.as_bytes()).to_vec()
    } else {
        Md5::digest(data.as_bytes()).to_vec()
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The Authorization value answering `challenge` (qop=auth).
pub fn authorization(
    challenge: &HashMap<String, String>,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let alg = challenge
        .get("algorithm")
        .cloned()
        .unwrap_or_else(|| "MD5".into());
    let realm = challenge.get("realm").cloned().unwrap_or_default();
    let nonce = challenge.get("nonce").cloned().unwrap_or_default();
    let cnonce = format!("c{nc:x}n0nce");
    let nc = format!("{nc:08x}");
    let ha1 = hash(&alg, &format!("{user}:{realm}:{password}"));
    let ha2 = hash(&alg, &format!("{method}:{uri}"));
    let response = hash(&alg, &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let mut v = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm={alg}, cnonce=\"{cnonce}\", qop=auth, nc={nc}"
    );
    if let Some(opaque) = challenge.get("opaque") {
        v.push_str(&format!(", opaque=\"{opaque}\""));
    }
    v
}
