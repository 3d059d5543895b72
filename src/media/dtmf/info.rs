//! DTMF carried in SIP INFO request bodies.
//!
//! Two body types are understood (Content-Type compared case-insensitively,
//! parameters after `;` ignored):
//!
//! * `application/dtmf-relay`: `key=value` lines, e.g.
//!   `Signal=5\r\nDuration=160\r\n`. Keys are case-insensitive, whitespace
//!   around keys and values and bare `\n` line ends are tolerated, and the
//!   first `Signal` line wins. `Signal` is a digit `0`-`9`, `*`, `#`,
//!   `A`-`D` (either case) or an RFC 4733 event number `0`-`15` (so `10` is
//!   `*` and `11` is `#`). Other keys (`Duration`) are ignored.
//! * `application/dtmf`: the body is the single digit or its event number
//!   (surrounding whitespace ignored). A body in `Signal=` form is accepted
//!   too, as some user agents send one under this type.
//!
//! One INFO request is one key press: there is no de-duplication state
//! here (SIP transactions already absorb retransmissions).

use super::{event_to_digit, DtmfError};

/// Parses the body of a SIP INFO request into the one digit it carries.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Result<char, DtmfError> {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("application/dtmf-relay") {
        let text = std::str::from_utf8(body).map_err(|_| DtmfError::BadBody("not UTF-8"))?;
        parse_relay(text)
    } else if mime.eq_ignore_ascii_case("application/dtmf") {
        let text = std::str::from_utf8(body).map_err(|_| DtmfError::BadBody("not UTF-8"))?;
        if text.contains('=') {
            parse_relay(text)
        } else {
            parse_signal(text.trim())
        }
    } else {
        Err(DtmfError::UnsupportedContentType(truncate(content_type)))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn parse_relay(text: &str) -> Result<char, DtmfError> {
    for line in text.split('\n') {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("signal") {
            return parse_signal(value.trim());
        }
    }
    Err(DtmfError::BadBody("no Signal line"))
}

/// A single digit character, or an event number 0-15.
fn parse_signal(v: &str) -> Result<char, DtmfError> {
    if v.is_empty() {
        return Err(DtmfError::BadBody("empty signal"));
    }
    if v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: u8 = v
            .parse()
            .map_err(|_| DtmfError::BadBody("bad event number"))?;
        return event_to_digit(n).ok_or(DtmfError::BadBody("event number out of range"));
    }
    let mut chars = v.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => {
            let c = c.to_ascii_uppercase();
            if super::is_digit(c) {
                Ok(c)
            } else {
                Err(DtmfError::BadBody("not a DTMF digit"))
            }
        }
        _ => Err(DtmfError::BadBody("signal is not one digit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RELAY: &str = "application/dtmf-relay";

    #[test]
    fn dtmf_relay() {
        assert_eq!(
            parse_info_body(RELAY, b"Signal=5\r\nDuration=160\r\n"),
            Ok('5')
        );
        assert_eq!(
            parse_info_body(RELAY, b"Signal=*\r\nDuration=160\r\n"),
            Ok('*')
        );
        assert_eq!(parse_info_body(RELAY, b"Signal=#\r\n"), Ok('#'));
        assert_eq!(parse_info_body(RELAY, b"Signal=10\r\n"), Ok('*'));
        assert_eq!(parse_info_body(RELAY, b"Signal=11\r\n"), Ok('#'));
        assert_eq!(parse_info_body(RELAY, b"Signal=0\r\n"), Ok('0'));
        assert_eq!(parse_info_body(RELAY, b"Signal=d"), Ok('D'));
        assert_eq!(
            parse_info_body(RELAY, b"  signal = 7 \n duration= 250\n"),
            Ok('7')
        );
        assert_eq!(
            parse_info_body(RELAY, b"Duration=160\r\nSIGNAL=A\r\n"),
            Ok('A')
        );
        assert_eq!(
            parse_info_body("Application/DTMF-Relay; charset=utf-8", b"Signal=3\r\n"),
            Ok('3')
        );
    }

    #[test]
    fn dtmf_plain() {
        assert_eq!(parse_info_body("application/dtmf", b"5"), Ok('5'));
        assert_eq!(parse_info_body("APPLICATION/DTMF", b" # \r\n"), Ok('#'));
        assert_eq!(parse_info_body("application/dtmf", b"11"), Ok('#'));
        assert_eq!(parse_info_body("application/dtmf", b"15"), Ok('D'));
        assert_eq!(
            parse_info_body("application/dtmf", b"Signal=2\r\n"),
            Ok('2')
        );
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_info_body("text/plain", b"Signal=5"),
            Err(DtmfError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            parse_info_body("", b"5"),
            Err(DtmfError::UnsupportedContentType(_))
        ));
        for body in [
            &b""[..],
            b"Duration=160\r\n",
            b"Signal=\r\n",
            b"Signal=16\r\n",
            b"Signal=55\r\n",
            b"Signal=123\r\n",
            b"Signal=E\r\n",
            b"Signal=12a\r\n",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse_info_body(RELAY, body), Err(DtmfError::BadBody(_))),
                "{body:?}"
            );
        }
        for body in [&b""[..], b"x", b"12 3", b"99", b"\xc3"] {
            assert!(matches!(
                parse_info_body("application/dtmf", body),
                Err(DtmfError::BadBody(_))
            ));
        }
    }

    proptest! {
        #[test]
        fn never_panics(ct in ".{0,40}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(c) = parse_info_body(&ct, &body) {
                prop_assert!(super::super::is_digit(c));
            }
        }

        #[test]
        fn relay_never_panics(body in "(?i)(signal|duration| )*=?[ 0-9a-z*#=\r\n]{0,20}") {
            let _ = parse_info_body(RELAY, body.as_bytes());
        }
    }
}
