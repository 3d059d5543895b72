//! Text helpers, written by hand (a few lines no crate offers):
//! [`fts_query`], what a person types into a search box as an SQLite FTS5
//! query (each word quoted, so no FTS operator gets through; the last one
//! as a prefix, the word being typed); and [`Untrusted`], a string from
//! the network as a log line may quote it.

/// How the words combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    /// Every word must be there (finding a ticket).
    All,
    /// Any word will do, the best matches first (suggesting articles).
    Any,
}

/// The query, or `None` when no word is left (at most 16 are taken).
pub fn fts_query(typed: &str, how: Words) -> Option<String> {
    let words: Vec<String> = typed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{w}\""))
        .collect();
    let (last, rest) = words.split_last()?;
    let glue = match how {
        Words::All => " ",
        Words::Any => " OR ",
    };
    let mut q = rest.join(glue);
    if !q.is_empty() {
        q.push_str(glue);
    }
    q.push_str(last);
    q.push('*');
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_the_last_one_a_prefix_and_operators_stay_words() {
        assert_eq!(
            fts_query("impresora  atasco", Words::All).as_deref(),
            Some("\"impresora\" \"atasco\"*")
        );
        assert_eq!(
            fts_query("wifi, router", Words::Any).as_deref(),
            Some("\"wifi\" OR \"router\"*")
        );
        assert_eq!(
            fts_query("NEAR(a OR b)", Words::All).as_deref(),
            Some("\"NEAR\" \"a\" \"OR\" \"b\"*")
        );
        assert_eq!(fts_query(" \" * ( ", Words::All), None);
    }
}

/// The most of an attacker-chosen string a log line quotes.
pub const LOG_QUOTE_BYTES: usize = 128;

/// A string that came from the network (a Call-ID, a URI, a User-Agent),
/// as a log line may show it: at most [`LOG_QUOTE_BYTES`] bytes of it,
/// cut on a character boundary and marked with how much was left out,
/// control characters, quotes and backslashes escaped, so that no peer
/// can fill the log or forge a line of it.
///
/// `tracing::info!(call_id = %Untrusted(&call.call_id), …)`.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl std::fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        let mut end = s.len().min(LOG_QUOTE_BYTES);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let (shown, left) = s.split_at(end);
        for c in shown.chars() {
            if c.is_control() || c == '"' || c == '\\' {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_str(c.encode_utf8(&mut [0; 4]))?;
            }
        }
        if !left.is_empty() {
            write!(f, "…(+{} bytes)", left.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod untrusted_tests {
    use super::*;

    #[test]
    fn a_long_string_is_cut_and_says_how_much_was_left_out() {
        let long = "a".repeat(5000);
        let shown = Untrusted(&long).to_string();
        assert_eq!(shown, format!("{}…(+4872 bytes)", "a".repeat(128)));
        assert_eq!(Untrusted("abc@host").to_string(), "abc@host");
    }

    #[test]
    fn control_characters_quotes_and_backslashes_are_escaped() {
        let forged = "x\r\n2026-12-05 INFO forged line \"q\" \\ \u{1b}[31m";
        let shown = Untrusted(forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\r') && !shown.contains('\u{1b}'));
        assert_eq!(
            shown,
            "x\\r\\n2026-12-05 INFO forged line \\\"q\\\" \\\\ \\u{1b}[31m"
        );
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let s = format!("{}ñandú", "a".repeat(127));
        let shown = Untrusted(&s).to_string();
        assert!(shown.starts_with(&"a".repeat(127)));
        assert!(shown.ends_with("…(+7 bytes)"), "{shown}");
    }
}
