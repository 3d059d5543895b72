//! The logbook's chain: each entry carries an HMAC-SHA-256 over its own
//! content and the previous entry's MAC on the same ticket; the ticket row
//! keeps the count and the last MAC under a MAC of its own. The key lives
//! outside the database (`<data-dir>/logbook.key` by default, 32 random
//! bytes, created with mode 0600 on first start), so whoever can write the
//! database but not read the key cannot edit, delete, insert, reorder or
//! cut short a ticket's history without `centralita logbook verify`
//! naming it. (Rolling a whole ticket back to an earlier state it really
//! had, row and entries together, needs a copy of that state and is not
//! caught.)
//!
//! Hand-written framing of the MAC's input: every field length-prefixed,
//! so no two different entries read the same.

use super::{Millis, StoreError, TicketNumber};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// A MAC of the chain.
pub type Tag = [u8; 32];

/// The chain's secret.
pub struct ChainKey([u8; 32]);

/// What an entry's MAC covers (besides the previous MAC).
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub ticket: TicketNumber,
    pub seq: u64,
    pub at: Millis,
    pub author: &'a str,
    pub call: Option<i64>,
    pub section: &'a str,
    pub text: &'a str,
}

impl ChainKey {
    /// Read the key at `path`, or create it (32 random bytes, mode 0600)
    /// if there is no file yet.
    pub fn load_or_create(path: &Path) -> Result<ChainKey, StoreError> {
        let err = |reason: String| StoreError::Key {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| err(format!("{} bytes, expected 32", bytes.len())))?;
                Ok(ChainKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut key[..]);
                write_private(path, &key).map_err(|e| err(e.to_string()))?;
                Ok(ChainKey(key))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// A key from bytes (tests, benchmarks).
    pub fn from_bytes(key: [u8; 32]) -> ChainKey {
        ChainKey(key)
    }

    fn mac(&self) -> HmacSha256 {
        // An HMAC takes a key of any length: 32 bytes never fail.
        match HmacSha256::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts any key length"),
        }
    }

    /// The MAC that comes "before" a ticket's first entry.
    pub fn genesis(&self, ticket: TicketNumber) -> Tag {
        let mut m = self.mac();
        field(&mut m, b"centralita-logbook-genesis-v1");
        field(&mut m, &ticket.0.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// An entry's MAC: its fields and the previous MAC.
    pub fn entry(&self, prev: &Tag, e: &EntryFields<'_>) -> Tag {
        let mut m = self.mac();
        field(&mut m, b"centralita-logbook-entry-v1");
        field(&mut m, prev);
        field(&mut m, &e.ticket.0.to_be_bytes());
        field(&mut m, &e.seq.to_be_bytes());
        field(&mut m, &e.at.0.to_be_bytes());
        field(&mut m, e.author.as_bytes());
        match e.call {
            Some(c) => field(&mut m, &c.to_be_bytes()),
            None => field(&mut m, b""),
        }
        field(&mut m, e.section.as_bytes());
        field(&mut m, e.text.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The ticket row's MAC over its count and last MAC (a row rewritten to
    /// match a cut-short chain does not carry a valid one).
    pub fn row(&self, ticket: TicketNumber, entries: u64, last: &Tag) -> Tag {
        let mut m = self.mac();
        field(&mut m, b"centralita-logbook-row-v1");
        field(&mut m, &ticket.0.to_be_bytes());
        field(&mut m, &entries.to_be_bytes());
        field(&mut m, last);
        m.finalize().into_bytes().into()
    }
}

fn field(m: &mut HmacSha256, bytes: &[u8]) {
    m.update(&(bytes.len() as u64).to_be_bytes());
    m.update(bytes);
}

/// Write `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> EntryFields<'_> {
        EntryFields {
            ticket: TicketNumber(100_001),
            seq: 1,
            at: Millis(1_700_000_000_000),
            author: "system",
            call: Some(1),
            section: "event",
            text,
        }
    }

    #[test]
    fn every_field_and_the_previous_mac_change_the_entrys_mac() {
        let k = ChainKey::from_bytes([7; 32]);
        let g = k.genesis(TicketNumber(100_001));
        let base = k.entry(&g, &fields("call arrived"));
        assert_eq!(base, k.entry(&g, &fields("call arrived")));
        assert_ne!(base, k.entry(&g, &fields("call arrived.")));
        assert_ne!(base, k.entry(&[0; 32], &fields("call arrived")));
        let mut f = fields("call arrived");
        f.seq = 2;
        assert_ne!(base, k.entry(&g, &f));
        let mut f = fields("call arrived");
        f.call = None;
        assert_ne!(base, k.entry(&g, &f));
        // Length prefixes: moving bytes between fields changes the MAC.
        let mut a = fields("xy");
        a.author = "system";
        let mut b = fields("ystem");
        b.author = "sx";
        assert_ne!(k.entry(&g, &a), k.entry(&g, &b));
        assert_ne!(
            base,
            ChainKey::from_bytes([8; 32]).entry(&g, &fields("call arrived"))
        );
    }

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("centralita-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("logbook.key");
        let a = ChainKey::load_or_create(&path).expect("created");
        let b = ChainKey::load_or_create(&path).expect("read");
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").expect("write");
        assert!(matches!(
            ChainKey::load_or_create(&path),
            Err(StoreError::Key { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
