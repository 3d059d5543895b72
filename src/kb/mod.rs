//! The knowledge base level 1 works from: Markdown articles under `kb/`
//! (`kb/<language>/<id>.md`, TOML front matter between `+++` lines: id,
//! title, category, language, keywords — `kb/README.md` has the format),
//! read at start and indexed in an in-memory SQLite FTS5 table (titles
//! weigh most, then keywords, then the text; accents and case do not
//! matter). `check-config` reports every malformed article with its file.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The most results a search gives.
pub const MAX_RESULTS: usize = 50;

/// The largest article read (bytes).
const MAX_ARTICLE: u64 = 256 * 1024;

/// What is wrong with an article.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct KbError {
    pub file: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    id: String,
    title: String,
    category: String,
    language: String,
    keywords: Vec<String>,
}

/// One article in one language.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Article {
    pub id: String,
    pub language: String,
    pub title: String,
    pub category: String,
    pub keywords: Vec<String>,
    /// Markdown.
    pub body: String,
}

/// An article found, without its text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Found {
    pub id: String,
    pub language: String,
    pub title: String,
    pub category: String,
    pub keywords: Vec<String>,
    /// Where the words were found, `[` `]` around them.
    pub snippet: String,
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Words (each required, the last one as a prefix); none: the
    /// category's articles by title.
    pub words: Option<String>,
    pub category: Option<String>,
    pub language: Option<String>,
    pub limit: usize,
}

/// The articles, and their index.
pub struct Kb {
    /// (language, id) → article.
    articles: BTreeMap<(String, String), Article>,
    index: Mutex<Connection>,
}

impl Kb {
    /// No articles (a deployment without `kb/`).
    pub fn empty() -> Kb {
        Kb::build(Vec::new()).unwrap_or_else(|_| Kb {
            articles: BTreeMap::new(),
            index: Mutex::new(Connection::open_in_memory().expect("in-memory SQLite")),
        })
    }

    /// Read every `<dir>/<language>/*.md`; a missing directory is an
    /// empty knowledge base. Every problem found, each naming its file.
    pub fn load(dir: &Path) -> Result<Kb, Vec<KbError>> {
        if !dir.is_dir() {
            return Ok(Kb::empty());
        }
        let mut errors = Vec::new();
        let mut articles = Vec::new();
        let mut files: Vec<PathBuf> = Vec::new();
        let langs = std::fs::read_dir(dir).map_err(|e| {
            vec![KbError {
                file: dir.display().to_string(),
                message: e.to_string(),
            }]
        })?;
        for lang in langs.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
            if let Ok(entries) = std::fs::read_dir(&lang) {
                files.extend(
                    entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|x| x == "md")),
                );
            }
        }
        files.sort();
        for f in files {
            match read_article(&f) {
                Ok(a) => articles.push(a),
                Err(message) => errors.push(KbError {
                    file: f.display().to_string(),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Kb::build(articles).map_err(|message| {
            vec![KbError {
                file: dir.display().to_string(),
                message,
            }]
        })
    }

    fn build(list: Vec<Article>) -> Result<Kb, String> {
        let conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.execute_batch(
            "CREATE VIRTUAL TABLE kb USING fts5(
                id UNINDEXED, language UNINDEXED, category UNINDEXED,
                title, keywords, body,
                tokenize = 'unicode61 remove_diacritics 2'
            );",
        )
        .map_err(|e| e.to_string())?;
        let mut articles = BTreeMap::new();
        for a in list {
            conn.execute(
                "INSERT INTO kb (id, language, category, title, keywords, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.id,
                    a.language,
                    a.category,
                    a.title,
                    a.keywords.join(" "),
                    a.body
                ],
            )
            .map_err(|e| e.to_string())?;
            let key = (a.language.clone(), a.id.clone());
            if articles.insert(key, a).is_some() {
                return Err("an article id is used twice in one language".into());
            }
        }
        Ok(Kb {
            articles,
            index: Mutex::new(conn),
        })
    }

    pub fn len(&self) -> usize {
        self.articles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }

    /// How many articles there are, each counted once whatever its
    /// languages.
    pub fn articles(&self) -> usize {
        let mut ids: Vec<&str> = self.articles.keys().map(|(_, id)| id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// An article by id, in `language` if it has one, else in any.
    pub fn get_in(&self, id: &str, language: &str) -> Option<&Article> {
        self.articles
            .get(&(language.to_string(), id.to_string()))
            .or_else(|| self.articles.values().find(|a| a.id == id))
    }

    /// An article by id, in any language.
    pub fn get(&self, id: &str) -> Option<&Article> {
        self.articles.values().find(|a| a.id == id)
    }

    /// The categories there are articles in.
    pub fn categories(&self) -> Vec<String> {
        let mut c: Vec<String> = self.articles.values().map(|a| a.category.clone()).collect();
        c.sort();
        c.dedup();
        c
    }

    /// Articles matching `s`, best first.
    pub fn search(&self, s: &Search) -> Vec<Found> {
        let limit = s.limit.clamp(1, MAX_RESULTS) as i64;
        let Ok(conn) = self.index.lock() else {
            return Vec::new();
        };
        let words = s
            .words
            .as_deref()
            .and_then(|t| crate::text::fts_query(t, crate::text::Words::Any));
        let mut sql = String::from("SELECT id, language, category, title, keywords, ");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        match &words {
            Some(q) => {
                sql.push_str("snippet(kb, 5, '[', ']', '…', 16) FROM kb WHERE kb MATCH ?");
                args.push(Box::new(q.clone()));
            }
            None => sql.push_str("substr(body, 1, 160) FROM kb WHERE 1 = 1"),
        }
        if let Some(c) = &s.category {
            sql.push_str(" AND category = ?");
            args.push(Box::new(c.clone()));
        }
        if let Some(l) = &s.language {
            sql.push_str(" AND language = ?");
            args.push(Box::new(l.clone()));
        }
        sql.push_str(match words {
            Some(_) => " ORDER BY bm25(kb, 0, 0, 0, 10.0, 5.0, 1.0) LIMIT ?",
            None => " ORDER BY title LIMIT ?",
        });
        args.push(Box::new(limit));
        let Ok(mut q) = conn.prepare(&sql) else {
            return Vec::new();
        };
        let rows = q.query_map(rusqlite::params_from_iter(args.iter()), |r| {
            Ok(Found {
                id: r.get(0)?,
                language: r.get(1)?,
                category: r.get(2)?,
                title: r.get(3)?,
                keywords: Vec::new(),
                snippet: r.get(5)?,
            })
        });
        let mut found: Vec<Found> = match rows {
            Ok(rows) => rows.flatten().collect(),
            Err(_) => Vec::new(),
        };
        // The keywords as written (the index holds them as words).
        for f in &mut found {
            if let Some(a) = self.articles.get(&(f.language.clone(), f.id.clone())) {
                f.keywords = a.keywords.clone();
            }
        }
        found
    }
}

/// One file: its front matter checked, its body kept.
fn read_article(path: &Path) -> Result<Article, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_ARTICLE {
        return Err(format!("larger than {MAX_ARTICLE} bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let text = text.replace("\r\n", "\n");
    let rest = text
        .strip_prefix("+++\n")
        .ok_or("expected TOML front matter: the first line is +++")?;
    let (front, body) = rest
        .split_once("\n+++\n")
        .ok_or("the front matter does not end (a line +++)")?;
    let fm: FrontMatter = toml::from_str(front).map_err(|e| format!("front matter: {e}"))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let folder = path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let slug = |s: &str| {
        !s.is_empty()
            && s.len() <= 80
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !slug(&fm.id) {
        return Err(format!("id {:?}: expected a-z 0-9 and -", fm.id));
    }
    if fm.id != stem {
        return Err(format!("id {:?} is not the file's name ({stem}.md)", fm.id));
    }
    if fm.language != folder {
        return Err(format!(
            "language {:?} is not its folder's ({folder})",
            fm.language
        ));
    }
    if !slug(&fm.category) {
        return Err(format!(
            "category {:?}: expected a-z 0-9 and -",
            fm.category
        ));
    }
    if fm.title.trim().is_empty() {
        return Err("title: empty".into());
    }
    if fm.keywords.is_empty() {
        return Err("keywords: expected at least one".into());
    }
    if body.trim().is_empty() {
        return Err("the article has no text".into());
    }
    Ok(Article {
        id: fm.id,
        language: fm.language,
        title: fm.title.trim().to_string(),
        category: fm.category,
        keywords: fm.keywords,
        body: body.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "centralita-kb-{name}-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("es")).expect("dir");
        std::fs::create_dir_all(d.join("en")).expect("dir");
        d
    }

    fn write(d: &Path, lang: &str, id: &str, title: &str, cat: &str, kw: &str, body: &str) {
        let text = format!(
            "+++\nid = \"{id}\"\ntitle = \"{title}\"\ncategory = \"{cat}\"\nlanguage = \"{lang}\"\nkeywords = [{kw}]\n+++\n\n{body}\n"
        );
        std::fs::write(d.join(lang).join(format!("{id}.md")), text).expect("write");
    }

    #[test]
    fn articles_are_found_by_words_category_and_language_titles_first() {
        let d = dir("search");
        write(
            &d,
            "es",
            "impresora-atasco",
            "La impresora se atasca",
            "hardware",
            "\"impresora\", \"papel\"",
            "## Pasos\nAbra la bandeja y retire el papel.",
        );
        write(
            &d,
            "en",
            "impresora-atasco",
            "The printer jams",
            "hardware",
            "\"printer\", \"paper\"",
            "## Steps\nOpen the tray and pull the paper out.",
        );
        write(
            &d,
            "es",
            "wifi-sin-internet",
            "La wifi conecta pero no hay internet",
            "redes",
            "\"wifi\", \"router\"",
            "## Pasos\nReinicie el router; compruebe la impresora de red.",
        );
        let kb = Kb::load(&d).expect("loads");
        assert_eq!(kb.len(), 3);
        let ids = |s: Search| {
            kb.search(&s)
                .into_iter()
                .map(|f| (f.id, f.language))
                .collect::<Vec<_>>()
        };
        let found = ids(Search {
            words: Some("impresora".into()),
            limit: 10,
            ..Search::default()
        });
        assert_eq!(
            found[0],
            ("impresora-atasco".into(), "es".into()),
            "the title weighs most"
        );
        assert_eq!(found.len(), 2, "also the one that names it in its text");
        let found = ids(Search {
            words: Some("ROUTER".into()),
            language: Some("es".into()),
            limit: 10,
            ..Search::default()
        });
        assert_eq!(found, vec![("wifi-sin-internet".into(), "es".into())]);
        let found = ids(Search {
            category: Some("hardware".into()),
            language: Some("en".into()),
            limit: 10,
            ..Search::default()
        });
        assert_eq!(found, vec![("impresora-atasco".into(), "en".into())]);
        let found = ids(Search {
            words: Some("bandéja".into()),
            limit: 10,
            ..Search::default()
        });
        assert_eq!(found.len(), 1, "accents do not matter");
        assert!(ids(Search {
            words: Some("\" OR NEAR(*".into()),
            limit: 10,
            ..Search::default()
        })
        .is_empty());
        assert_eq!(
            kb.get_in("impresora-atasco", "en")
                .map(|a| a.title.as_str()),
            Some("The printer jams")
        );
        assert_eq!(
            kb.categories(),
            vec!["hardware".to_string(), "redes".to_string()]
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_malformed_article_is_named_with_what_is_wrong() {
        let d = dir("bad");
        write(&d, "es", "bien", "Bien", "software", "\"a\"", "Texto.");
        write(
            &d,
            "es",
            "otro-nombre",
            "Mal",
            "software",
            "\"a\"",
            "Texto.",
        );
        std::fs::rename(d.join("es/otro-nombre.md"), d.join("es/mal.md")).expect("rename");
        write(
            &d,
            "en",
            "sin-palabras",
            "No keywords",
            "software",
            "",
            "Text.",
        );
        std::fs::write(d.join("es/roto.md"), "# no front matter\n").expect("write");
        let errs = Kb::load(&d).err().expect("refused");
        let said: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{said:?}");
        assert!(
            said.iter()
                .any(|e| e.contains("mal.md") && e.contains("not the file's name")),
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|e| e.contains("sin-palabras.md") && e.contains("keywords")),
            "{said:?}"
        );
        assert!(
            said.iter()
                .any(|e| e.contains("roto.md") && e.contains("+++")),
            "{said:?}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
