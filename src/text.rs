//! What a person types into a search box, as an SQLite FTS5 query: each
//! word quoted (no FTS operator gets through), the last one as a prefix
//! (the word being typed). Written by hand: a few lines no crate offers.

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
