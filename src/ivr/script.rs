//! IVR menu files: the TOML format, its loader and validator, and the
//! validated in-memory model ([`IvrScript`]) that the engine runs.
//!
//! Owns: the serde "raw" structures that mirror `ivr/*.toml` one to one
//! (`deny_unknown_fields`, defaults as named functions), the bounded
//! newtypes ([`TimeoutMs`], [`Retries`], [`Priority`], [`Key`],
//! [`DigitCount`], [`LanguageCode`], [`PromptName`]) that are checked once at
//! load, and [`IvrScript::load_dir`], which loads every file of a directory
//! into one script and reports *all* problems at once, each naming the file,
//! the key path (`menu.principal.options.4.action`), what was expected and,
//! when toml gives a span, the line.
//!
//! Loading runs in four passes per file so that one mistake does not hide the
//! others: (1) TOML syntax, (2) the file/menu structure (serde, one error per
//! file at most, since serde stops at the first), (3) every action separately,
//! (4) ranges, names and digits; then, across all files, duplicate menus and
//! references to menus/languages. The format is documented in `ivr/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

// ---------------------------------------------------------------------------
// Defaults (named so the README and the code agree)
// ---------------------------------------------------------------------------

/// First-digit (no-input) timeout of menus and collects: 5 s.
pub fn default_timeout_ms() -> u32 {
    5_000
}
/// Inter-digit timeout of collects: 3 s.
pub fn default_inter_digit_timeout_ms() -> u32 {
    3_000
}
/// Retries (invalid and no-input counted together) before the fallback.
pub fn default_max_retries() -> u8 {
    3
}
/// Digits interrupt prompts unless a menu/collect says otherwise.
pub fn default_barge_in() -> bool {
    true
}
/// Queue priority when an action does not give one (0 lowest, 9 top).
pub fn default_priority() -> u8 {
    5
}
/// Minimum digits of a variable-length collect.
pub fn default_min_length() -> u8 {
    1
}
/// Terminator key of a variable-length collect.
pub fn default_terminator() -> char {
    '#'
}
/// Reason reported by a `hangup` action that gives none.
pub fn default_hangup_reason() -> String {
    "ivr_hangup".to_string()
}
/// Reason reported after a `callback` action.
pub const CALLBACK_HANGUP_REASON: &str = "callback_requested";

// ---------------------------------------------------------------------------
// Bounded newtypes
// ---------------------------------------------------------------------------

/// A timeout in milliseconds, 500 ms ..= 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutMs(u32);
impl TimeoutMs {
    pub const MIN: u32 = 500;
    pub const MAX: u32 = 60_000;
    pub fn new(ms: i64) -> Result<Self, String> {
        if (Self::MIN as i64..=Self::MAX as i64).contains(&ms) {
            Ok(Self(ms as u32))
        } else {
            Err(format!(
                "expected a timeout in milliseconds between {} and {}, got {ms}",
                Self::MIN,
                Self::MAX
            ))
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0))
    }
}

/// Number of retries, 0 ..= 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retries(u8);
impl Retries {
    pub const MAX: u8 = 10;
    pub fn new(n: i64) -> Result<Self, String> {
        if (0..=Self::MAX as i64).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err(format!(
                "expected retries between 0 and {}, got {n}",
                Self::MAX
            ))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Queue priority, 0 ..= 9 (9 = top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Priority(u8);
impl Priority {
    pub const MAX: u8 = 9;
    pub fn new(n: i64) -> Result<Self, String> {
        if (0..=Self::MAX as i64).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err(format!(
                "expected a priority between 0 and {} (9 = top), got {n}",
                Self::MAX
            ))
        }
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

/// Number of digits of a collect, 1 ..= 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DigitCount(u8);
impl DigitCount {
    pub const MAX: u8 = 32;
    pub fn new(n: i64) -> Result<Self, String> {
        if (1..=Self::MAX as i64).contains(&n) {
            Ok(Self(n as u8))
        } else {
            Err(format!(
                "expected a digit count between 1 and {}, got {n}",
                Self::MAX
            ))
        }
    }
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

/// One telephone key: `0`-`9`, `*` or `#`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(char);
impl Key {
    pub fn from_char(c: char) -> Option<Self> {
        (c.is_ascii_digit() || c == '*' || c == '#').then_some(Self(c))
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Self::from_char(c)
                .ok_or_else(|| format!("expected a single key 0-9, * or #, got {s:?}")),
            _ => Err(format!("expected a single key 0-9, * or #, got {s:?}")),
        }
    }
    pub fn get(self) -> char {
        self.0
    }
}

fn check_name(s: &str, what: &str, allow_slash: bool) -> Result<(), String> {
    let seg_ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    };
    let ok = if allow_slash {
        s.split('/').all(seg_ok)
    } else {
        seg_ok(s)
    };
    if ok && s.len() <= 64 {
        Ok(())
    } else {
        Err(format!(
            "expected a {what} of 1-64 characters A-Z a-z 0-9 _ - .{}, got {s:?}",
            if allow_slash {
                " (segments separated by /)"
            } else {
                ""
            }
        ))
    }
}

/// A language code, also the directory under `sounds/` (`es`, `en`, `pt-BR`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LanguageCode(String);
impl LanguageCode {
    pub fn new(s: &str) -> Result<Self, String> {
        check_name(s, "language code", false).map(|()| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A prompt name: `sounds/<lang>/<name>.wav` (`main_menu`, `numbers/7`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PromptName(String);
impl PromptName {
    pub fn new(s: &str) -> Result<Self, String> {
        check_name(s, "prompt name", true).map(|()| Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ---------------------------------------------------------------------------
// Validated model
// ---------------------------------------------------------------------------

/// A validated action (what a key, a fallback or a collect's `next` does).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Go to a menu (by name, any file).
    Menu { menu: String },
    /// Set the call's language, then go to a menu.
    Language {
        language: LanguageCode,
        menu: String,
    },
    /// Play prompts (not interruptible), then run `next`.
    Play {
        prompts: Vec<PromptName>,
        next: Box<Action>,
    },
    /// Play an optional prompt, then hang up.
    Hangup {
        prompt: Option<PromptName>,
        reason: String,
    },
    /// Collect digits into a named field.
    Collect(Box<Collect>),
    /// Hand the call to the ACD.
    Queue {
        queue: String,
        priority: Priority,
        prompt: Option<PromptName>,
    },
    /// Register a callback, play confirmation (+ goodbye), hang up.
    Callback {
        queue: String,
        number_field: Option<String>,
        prompt: Option<PromptName>,
        goodbye: Option<PromptName>,
    },
}

/// How many digits a collect takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectLength {
    /// Exactly this many; submitted as soon as the last one arrives.
    Fixed(DigitCount),
    /// `min..=max`, ended by the terminator, or submitted at `max`.
    Variable { min: DigitCount, max: DigitCount },
}

/// A validated `collect` action.
#[derive(Debug, Clone, PartialEq)]
pub struct Collect {
    pub field: String,
    pub prompts: Vec<PromptName>,
    pub length: CollectLength,
    /// Ends the entry early (always set for variable length).
    pub terminator: Option<Key>,
    pub min_value: Option<u64>,
    pub max_value: Option<u64>,
    pub timeout: TimeoutMs,
    pub inter_digit_timeout: TimeoutMs,
    pub max_retries: Retries,
    pub invalid_prompt: Option<PromptName>,
    pub no_input_prompt: Option<PromptName>,
    pub barge_in: bool,
    pub next: Action,
    /// After retries; `None` = the enclosing menu's fallback.
    pub fallback: Option<Action>,
}

/// A validated menu.
#[derive(Debug, Clone, PartialEq)]
pub struct Menu {
    pub name: String,
    pub file: PathBuf,
    pub prompts: Vec<PromptName>,
    pub options: BTreeMap<Key, Action>,
    pub timeout: TimeoutMs,
    pub max_retries: Retries,
    pub invalid_prompt: Option<PromptName>,
    pub no_input_prompt: Option<PromptName>,
    pub barge_in: bool,
    pub fallback: Action,
}

/// Every menu of every file of an `ivr/` directory, validated.
#[derive(Debug, Clone, Default)]
pub struct IvrScript {
    menus: BTreeMap<String, Menu>,
    languages: BTreeSet<String>,
    entry: Option<String>,
}

/// One problem found while loading menu files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}: {}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), if key.is_empty() { "(file)" } else { key.as_str() }, message)]
pub struct IvrLoadError {
    pub file: PathBuf,
    /// Dotted key path, e.g. `menu.principal.options.4.action`; empty for
    /// whole-file problems.
    pub key: String,
    /// 1-based line, when toml gave a span.
    pub line: Option<usize>,
    /// What was expected / what is wrong.
    pub message: String,
}

impl IvrScript {
    /// Load every `*.toml` of `dir` (sorted by name) into one script.
    pub fn load_dir(dir: &Path) -> Result<IvrScript, Vec<IvrLoadError>> {
        let whole = |message: String| IvrLoadError {
            file: dir.to_path_buf(),
            key: String::new(),
            line: None,
            message,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return Err(vec![whole(format!("cannot read directory: {e}"))]),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(vec![whole("expected at least one *.toml menu file".into())]);
        }
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for p in paths {
            match std::fs::read_to_string(&p) {
                Ok(text) => sources.push((p, text)),
                Err(e) => errors.push(IvrLoadError {
                    file: p,
                    key: String::new(),
                    line: None,
                    message: format!("cannot read file: {e}"),
                }),
            }
        }
        match Self::load_sources(sources.iter().map(|(p, t)| (p.as_path(), t.as_str()))) {
            Ok(s) if errors.is_empty() => Ok(s),
            Ok(_) => Err(errors),
            Err(mut more) => {
                errors.append(&mut more);
                Err(errors)
            }
        }
    }

    /// Load already-read files (`(path used in messages, text)`).
    pub fn load_sources<'a>(
        files: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<IvrScript, Vec<IvrLoadError>> {
        let mut l = Loader::default();
        for (path, text) in files {
            l.file(path, text);
        }
        l.finish()
    }

    /// Every prompt name referenced anywhere (menus, options, fallbacks,
    /// collects, nested actions).
    pub fn prompt_names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.menus.values() {
            let singles = [&m.invalid_prompt, &m.no_input_prompt];
            out.extend(
                m.prompts
                    .iter()
                    .chain(singles.into_iter().flatten())
                    .map(|p| p.0.clone()),
            );
            for a in m.options.values().chain(std::iter::once(&m.fallback)) {
                action_prompts(a, &mut out);
            }
        }
        out
    }

    /// Every queue named by a `queue` or `callback` action (so the config
    /// can check each is a configured queue).
    pub fn queue_names(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.menus.values() {
            for a in m.options.values().chain(std::iter::once(&m.fallback)) {
                action_queues(a, &mut out);
            }
        }
        out
    }

    /// Menus with a callback to a number the caller types (`number_field`):
    /// they need a trunk to call out through.
    pub fn typed_callback_menus(&self) -> BTreeSet<String> {
        fn typed(a: &Action) -> bool {
            match a {
                Action::Callback { number_field, .. } => number_field.is_some(),
                Action::Play { next, .. } => typed(next),
                Action::Collect(c) => typed(&c.next) || c.fallback.as_ref().is_some_and(typed),
                Action::Queue { .. }
                | Action::Menu { .. }
                | Action::Language { .. }
                | Action::Hangup { .. } => false,
            }
        }
        self.menus
            .iter()
            .filter(|(_, m)| {
                m.options
                    .values()
                    .chain(std::iter::once(&m.fallback))
                    .any(typed)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn menu_names(&self) -> BTreeSet<String> {
        self.menus.keys().cloned().collect()
    }

    pub fn has_menu(&self, name: &str) -> bool {
        self.menus.contains_key(name)
    }

    pub fn menu(&self, name: &str) -> Option<&Menu> {
        self.menus.get(name)
    }

    /// Languages declared (`languages = [..]`) or set by `language` actions.
    pub fn languages(&self) -> BTreeSet<String> {
        self.languages.clone()
    }

    /// The entry menu named by a file's top-level `entry`, if any.
    pub fn entry(&self) -> Option<&str> {
        self.entry.as_deref()
    }
}

fn action_queues(a: &Action, out: &mut BTreeSet<String>) {
    match a {
        Action::Queue { queue, .. } | Action::Callback { queue, .. } => {
            out.insert(queue.to_string());
        }
        Action::Play { next, .. } => action_queues(next, out),
        Action::Collect(c) => {
            action_queues(&c.next, out);
            if let Some(f) = &c.fallback {
                action_queues(f, out);
            }
        }
        Action::Menu { .. } | Action::Language { .. } | Action::Hangup { .. } => {}
    }
}

fn action_prompts(a: &Action, out: &mut BTreeSet<String>) {
    let mut add = |p: &Option<PromptName>| {
        if let Some(p) = p {
            out.insert(p.0.clone());
        }
    };
    match a {
        Action::Menu { .. } | Action::Language { .. } => {}
        Action::Play { prompts, next } => {
            out.extend(prompts.iter().map(|p| p.0.clone()));
            action_prompts(next, out);
        }
        Action::Hangup { prompt, .. } => add(prompt),
        Action::Queue { prompt, .. } => add(prompt),
        Action::Callback {
            prompt, goodbye, ..
        } => {
            add(prompt);
            add(goodbye);
        }
        Action::Collect(c) => {
            add(&c.invalid_prompt);
            add(&c.no_input_prompt);
            out.extend(c.prompts.iter().map(|p| p.0.clone()));
            action_prompts(&c.next, out);
            if let Some(f) = &c.fallback {
                action_prompts(f, out);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Raw (serde) structures: the file format
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    #[serde(default)]
    entry: Option<Spanned<String>>,
    #[serde(default)]
    languages: Vec<Spanned<String>>,
    #[serde(default)]
    menu: BTreeMap<String, Spanned<MenuRaw>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MenuRaw {
    prompts: Vec<Spanned<String>>,
    #[serde(default)]
    options: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    timeout_ms: Option<Spanned<i64>>,
    #[serde(default)]
    max_retries: Option<Spanned<i64>>,
    #[serde(default)]
    invalid_prompt: Option<Spanned<String>>,
    #[serde(default)]
    no_input_prompt: Option<Spanned<String>>,
    #[serde(default = "default_barge_in")]
    barge_in: bool,
    fallback: Spanned<toml::Value>,
}

/// Actions are deserialized from `toml::Value` one by one (so each error gets
/// its own key path); nested actions stay `toml::Value` and recurse.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum ActionRaw {
    Menu {
        menu: String,
    },
    Language {
        language: String,
        menu: String,
    },
    Play {
        prompts: Vec<String>,
        next: toml::Value,
    },
    Hangup {
        #[serde(default)]
        prompt: Option<String>,
        #[serde(default = "default_hangup_reason")]
        reason: String,
    },
    Collect(Box<CollectRaw>),
    Queue {
        queue: String,
        #[serde(default)]
        priority: Option<i64>,
        #[serde(default)]
        prompt: Option<String>,
    },
    Callback {
        queue: String,
        #[serde(default)]
        number_field: Option<String>,
        #[serde(default)]
        prompt: Option<String>,
        #[serde(default)]
        goodbye: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectRaw {
    field: String,
    #[serde(default)]
    prompts: Vec<String>,
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    min_length: Option<i64>,
    #[serde(default)]
    max_length: Option<i64>,
    #[serde(default)]
    terminator: Option<String>,
    #[serde(default)]
    min_value: Option<u64>,
    #[serde(default)]
    max_value: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<i64>,
    #[serde(default)]
    inter_digit_timeout_ms: Option<i64>,
    #[serde(default)]
    max_retries: Option<i64>,
    #[serde(default)]
    invalid_prompt: Option<String>,
    #[serde(default)]
    no_input_prompt: Option<String>,
    #[serde(default = "default_barge_in")]
    barge_in: bool,
    next: toml::Value,
    #[serde(default)]
    fallback: Option<toml::Value>,
}

// ---------------------------------------------------------------------------
// Loader
// ---------------------------------------------------------------------------

/// Where a checked value came from, for error messages.
#[derive(Clone)]
struct Site {
    file: PathBuf,
    line: Option<usize>,
}

#[derive(Default)]
struct Loader {
    errors: Vec<IvrLoadError>,
    menus: BTreeMap<String, Menu>,
    menu_sites: BTreeMap<String, Site>,
    declared_languages: BTreeSet<String>,
    /// (site, key path, menu referenced)
    menu_refs: Vec<(Site, String, String)>,
    /// (site, key path, language used)
    language_uses: Vec<(Site, String, String)>,
    entry: Option<(Site, String)>,
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Best-effort key path of the value at `offset`, for serde errors (toml 0.8
/// does not expose the path it tracks): the last `[table]` header before the
/// offset plus the key of the offset's line.
fn key_path_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let mut header = String::new();
    for l in text.get(..line_start).unwrap_or("").lines() {
        let t = l.trim();
        if t.starts_with('[') {
            header = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let line = text
        .get(line_start..)
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("");
    let t = line.trim();
    let own = if t.starts_with('[') {
        header = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        String::new()
    } else {
        match t.split_once('=') {
            Some((k, _)) => k.trim().to_string(),
            _ => String::new(),
        }
    };
    let clean = |s: &str| {
        s.split('.')
            .map(|p| p.trim().trim_matches('"').to_string())
            .collect::<Vec<_>>()
            .join(".")
    };
    match (header.is_empty(), own.is_empty()) {
        (true, _) => clean(&own),
        (false, true) => clean(&header),
        (false, false) => format!("{}.{}", clean(&header), clean(&own)),
    }
}

impl Loader {
    fn err(&mut self, site: &Site, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(IvrLoadError {
            file: site.file.clone(),
            key: key.into(),
            line: site.line,
            message: message.into(),
        });
    }

    fn file(&mut self, path: &Path, text: &str) {
        let site_at = |span: Range<usize>| Site {
            file: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
        };
        // Pass 1+2: syntax and structure.
        let raw: FileRaw = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let (line, key) = match e.span() {
                    Some(s) => (Some(line_of(text, s.start)), key_path_at(text, s.start)),
                    None => (None, String::new()),
                };
                self.errors.push(IvrLoadError {
                    file: path.to_path_buf(),
                    key,
                    line,
                    message: e.message().trim().replace('\n', "; "),
                });
                return;
            }
        };
        if let Some(entry) = raw.entry {
            let site = site_at(entry.span());
            if let Some((prev, _)) = &self.entry {
                let msg = format!(
                    "expected a single `entry`, already given in {}",
                    prev.file.display()
                );
                self.err(&site, "entry", msg);
            } else {
                self.menu_refs
                    .push((site.clone(), "entry".into(), entry.get_ref().clone()));
                self.entry = Some((site, entry.into_inner()));
            }
        }
        for (i, lang) in raw.languages.iter().enumerate() {
            match LanguageCode::new(lang.get_ref()) {
                Ok(l) => {
                    self.declared_languages.insert(l.0);
                }
                Err(m) => self.err(&site_at(lang.span()), format!("languages.{i}"), m),
            }
        }
        // Pass 3+4: each menu, each action.
        for (name, menu) in raw.menu {
            let span = menu.span();
            let site = site_at(span.clone());
            let key = format!("menu.{name}");
            if let Err(m) = check_name(&name, "menu name", false) {
                self.err(&site, key.clone(), m);
            }
            let Some(m) = self.menu(&key, &name, menu.into_inner(), path, text) else {
                continue;
            };
            if let Some(prev) = self.menu_sites.get(&name) {
                let msg = format!(
                    "duplicate menu name `{name}`: already defined in {}{}",
                    prev.file.display(),
                    prev.line.map(|l| format!(":{l}")).unwrap_or_default()
                );
                self.err(&site, key, msg);
                continue;
            }
            self.menu_sites.insert(name.clone(), site);
            self.menus.insert(name, m);
        }
    }

    fn prompt(&mut self, site: &Site, key: &str, s: &str) -> Option<PromptName> {
        PromptName::new(s).map_err(|m| self.err(site, key, m)).ok()
    }

    fn prompts_spanned(
        &mut self,
        text: &str,
        file: &Path,
        key: &str,
        v: &[Spanned<String>],
    ) -> Vec<PromptName> {
        let mut out = Vec::new();
        for (i, p) in v.iter().enumerate() {
            let site = Site {
                file: file.to_path_buf(),
                line: Some(line_of(text, p.span().start)),
            };
            out.extend(self.prompt(&site, &format!("{key}.{i}"), p.get_ref()));
        }
        out
    }

    fn menu(
        &mut self,
        key: &str,
        name: &str,
        raw: MenuRaw,
        file: &Path,
        text: &str,
    ) -> Option<Menu> {
        let at = |s: Range<usize>| Site {
            file: file.to_path_buf(),
            line: Some(line_of(text, s.start)),
        };
        let n0 = self.errors.len();
        let prompts = self.prompts_spanned(text, file, &format!("{key}.prompts"), &raw.prompts);
        let timeout = match &raw.timeout_ms {
            None => TimeoutMs(default_timeout_ms()),
            Some(t) => TimeoutMs::new(*t.get_ref())
                .map_err(|m| self.err(&at(t.span()), format!("{key}.timeout_ms"), m))
                .unwrap_or(TimeoutMs(default_timeout_ms())),
        };
        let max_retries = match &raw.max_retries {
            None => Retries(default_max_retries()),
            Some(t) => Retries::new(*t.get_ref())
                .map_err(|m| self.err(&at(t.span()), format!("{key}.max_retries"), m))
                .unwrap_or(Retries(default_max_retries())),
        };
        let single = |l: &mut Self, field: &str, v: &Option<Spanned<String>>| {
            v.as_ref()
                .and_then(|p| l.prompt(&at(p.span()), &format!("{key}.{field}"), p.get_ref()))
        };
        let invalid_prompt = single(self, "invalid_prompt", &raw.invalid_prompt);
        let no_input_prompt = single(self, "no_input_prompt", &raw.no_input_prompt);
        let mut options = BTreeMap::new();
        for (k, v) in raw.options {
            let okey = format!("{key}.options.{k}");
            let site = at(v.span());
            let digit = Key::parse(&k)
                .map_err(|m| self.err(&site, okey.clone(), m))
                .ok();
            let action = self.action(&site, &okey, v.into_inner());
            if let (Some(d), Some(a)) = (digit, action) {
                options.insert(d, a);
            }
        }
        let fb_site = at(raw.fallback.span());
        let fallback = self.action(
            &fb_site,
            &format!("{key}.fallback"),
            raw.fallback.into_inner(),
        );
        if self.errors.len() != n0 {
            return None;
        }
        Some(Menu {
            name: name.to_string(),
            file: file.to_path_buf(),
            prompts,
            options,
            timeout,
            max_retries,
            invalid_prompt,
            no_input_prompt,
            barge_in: raw.barge_in,
            fallback: fallback?,
        })
    }

    fn action(&mut self, site: &Site, key: &str, v: toml::Value) -> Option<Action> {
        let raw: ActionRaw = match ActionRaw::deserialize(v) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.message().trim().replace('\n', "; ");
                // serde reports a missing/unknown tag as such; name the key.
                let k = if msg.contains("`action`") || msg.contains("unknown variant") {
                    format!("{key}.action")
                } else {
                    key.to_string()
                };
                let msg = if msg.contains("unknown variant") {
                    format!("{msg} (the `action` key)")
                } else {
                    msg
                };
                self.err(site, k, msg);
                return None;
            }
        };
        let n0 = self.errors.len();
        let opt_prompt = |l: &mut Self, field: &str, p: Option<String>| -> Option<PromptName> {
            p.and_then(|p| l.prompt(site, &format!("{key}.{field}"), &p))
        };
        let queue_name = |l: &mut Self, field: &str, q: &str| {
            if let Err(m) = check_name(q, "queue name", false) {
                l.err(site, format!("{key}.{field}"), m);
            }
        };
        let a = match raw {
            ActionRaw::Menu { menu } => {
                self.menu_refs
                    .push((site.clone(), format!("{key}.menu"), menu.clone()));
                Action::Menu { menu }
            }
            ActionRaw::Language { language, menu } => {
                self.menu_refs
                    .push((site.clone(), format!("{key}.menu"), menu.clone()));
                let lang = LanguageCode::new(&language)
                    .map_err(|m| self.err(site, format!("{key}.language"), m))
                    .ok();
                self.language_uses
                    .push((site.clone(), format!("{key}.language"), language));
                Action::Language {
                    language: lang?,
                    menu,
                }
            }
            ActionRaw::Play { prompts, next } => {
                let ps: Vec<PromptName> = prompts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| self.prompt(site, &format!("{key}.prompts.{i}"), p))
                    .collect();
                let next = self.action(site, &format!("{key}.next"), next);
                Action::Play {
                    prompts: ps,
                    next: Box::new(next?),
                }
            }
            ActionRaw::Hangup { prompt, reason } => {
                if reason.trim().is_empty() {
                    self.err(site, format!("{key}.reason"), "expected a non-empty reason");
                }
                Action::Hangup {
                    prompt: opt_prompt(self, "prompt", prompt),
                    reason,
                }
            }
            ActionRaw::Queue {
                queue,
                priority,
                prompt,
            } => {
                queue_name(self, "queue", &queue);
                let priority = match priority {
                    None => Priority(default_priority()),
                    Some(p) => Priority::new(p)
                        .map_err(|m| self.err(site, format!("{key}.priority"), m))
                        .unwrap_or(Priority(default_priority())),
                };
                Action::Queue {
                    queue,
                    priority,
                    prompt: opt_prompt(self, "prompt", prompt),
                }
            }
            ActionRaw::Callback {
                queue,
                number_field,
                prompt,
                goodbye,
            } => {
                queue_name(self, "queue", &queue);
                if let Some(f) = &number_field {
                    if let Err(m) = check_name(f, "field name", false) {
                        self.err(site, format!("{key}.number_field"), m);
                    }
                }
                Action::Callback {
                    queue,
                    number_field,
                    prompt: opt_prompt(self, "prompt", prompt),
                    goodbye: opt_prompt(self, "goodbye", goodbye),
                }
            }
            ActionRaw::Collect(c) => Action::Collect(Box::new(self.collect(site, key, *c)?)),
        };
        (self.errors.len() == n0).then_some(a)
    }

    fn collect(&mut self, site: &Site, key: &str, c: CollectRaw) -> Option<Collect> {
        let n0 = self.errors.len();
        let k = |f: &str| format!("{key}.{f}");
        if let Err(m) = check_name(&c.field, "field name", false) {
            self.err(site, k("field"), m);
        }
        let count = |l: &mut Self, f: &str, v: Option<i64>| -> Option<DigitCount> {
            v.and_then(|n| DigitCount::new(n).map_err(|m| l.err(site, k(f), m)).ok())
        };
        let fixed = count(self, "length", c.length);
        let min = count(self, "min_length", c.min_length);
        let max = count(self, "max_length", c.max_length);
        let terminator = c.terminator.as_deref().and_then(|t| match Key::parse(t) {
            Ok(key) if key.0.is_ascii_digit() => {
                self.err(
                    site,
                    k("terminator"),
                    "expected `#` or `*` as terminator, not a digit",
                );
                None
            }
            Ok(key) => Some(key),
            Err(m) => {
                self.err(site, k("terminator"), m);
                None
            }
        });
        let length = match (c.length, fixed, c.max_length, max) {
            (Some(_), Some(f), None, _) => {
                if c.min_length.is_some() {
                    self.err(
                        site,
                        k("min_length"),
                        "expected either `length` or `min_length`/`max_length`, not both",
                    );
                }
                Some(CollectLength::Fixed(f))
            }
            (None, _, Some(_), Some(mx)) => {
                let mn = min.unwrap_or(DigitCount(default_min_length()));
                if mn > mx {
                    self.err(
                        site,
                        k("min_length"),
                        format!("expected min_length <= max_length ({})", mx.0),
                    );
                }
                Some(CollectLength::Variable { min: mn, max: mx })
            }
            (Some(_), _, Some(_), _) => {
                self.err(
                    site,
                    k("length"),
                    "expected either `length` (fixed) or `max_length`, not both",
                );
                None
            }
            (None, _, None, _) => {
                self.err(
                    site,
                    k("max_length"),
                    "expected `length` (fixed) or `max_length` ('#'-terminated)",
                );
                None
            }
            _ => None, // bad number, already reported
        };
        let terminator = match length {
            Some(CollectLength::Variable { .. }) => {
                Some(terminator.unwrap_or(Key(default_terminator())))
            }
            _ => terminator,
        };
        if let (Some(a), Some(b)) = (c.min_value, c.max_value) {
            if a > b {
                self.err(
                    site,
                    k("min_value"),
                    format!("expected min_value <= max_value ({b})"),
                );
            }
        }
        let timeout = |l: &mut Self, f: &str, v: Option<i64>, d: u32| match v {
            None => TimeoutMs(d),
            Some(t) => TimeoutMs::new(t)
                .map_err(|m| l.err(site, k(f), m))
                .unwrap_or(TimeoutMs(d)),
        };
        let first = timeout(self, "timeout_ms", c.timeout_ms, default_timeout_ms());
        let inter = timeout(
            self,
            "inter_digit_timeout_ms",
            c.inter_digit_timeout_ms,
            default_inter_digit_timeout_ms(),
        );
        let max_retries = match c.max_retries {
            None => Retries(default_max_retries()),
            Some(r) => Retries::new(r)
                .map_err(|m| self.err(site, k("max_retries"), m))
                .unwrap_or(Retries(0)),
        };
        let prompts: Vec<PromptName> = c
            .prompts
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.prompt(site, &format!("{key}.prompts.{i}"), p))
            .collect();
        let invalid_prompt = c
            .invalid_prompt
            .and_then(|p| self.prompt(site, &k("invalid_prompt"), &p));
        let no_input_prompt = c
            .no_input_prompt
            .and_then(|p| self.prompt(site, &k("no_input_prompt"), &p));
        let next = self.action(site, &k("next"), c.next);
        let fallback = c.fallback.map(|f| self.action(site, &k("fallback"), f));
        if self.errors.len() != n0 {
            return None;
        }
        Some(Collect {
            field: c.field,
            prompts,
            length: length?,
            terminator,
            min_value: c.min_value,
            max_value: c.max_value,
            timeout: first,
            inter_digit_timeout: inter,
            max_retries,
            invalid_prompt,
            no_input_prompt,
            barge_in: c.barge_in,
            next: next?,
            fallback: match fallback {
                None => None,
                Some(f) => Some(f?),
            },
        })
    }

    fn finish(mut self) -> Result<IvrScript, Vec<IvrLoadError>> {
        for (site, key, menu) in std::mem::take(&mut self.menu_refs) {
            if !self.menu_sites.contains_key(&menu) {
                let known: Vec<&str> = self.menu_sites.keys().map(String::as_str).collect();
                let msg = format!(
                    "expected the name of a menu defined in some file, got `{menu}` (known: {})",
                    known.join(", ")
                );
                self.err(&site, key, msg);
            }
        }
        let mut languages = self.declared_languages.clone();
        for (site, key, lang) in std::mem::take(&mut self.language_uses) {
            if !self.declared_languages.is_empty() && !self.declared_languages.contains(&lang) {
                let declared: Vec<&str> =
                    self.declared_languages.iter().map(String::as_str).collect();
                let msg = format!(
                    "expected one of the declared languages ({}), got `{lang}`",
                    declared.join(", ")
                );
                self.err(&site, key, msg);
            }
            languages.insert(lang);
        }
        if self.menus.is_empty() && self.errors.is_empty() {
            self.errors.push(IvrLoadError {
                file: PathBuf::new(),
                key: "menu".into(),
                line: None,
                message: "expected at least one [menu.<name>] table".into(),
            });
        }
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        Ok(IvrScript {
            menus: self.menus,
            languages,
            entry: self.entry.map(|(_, e)| e),
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(files: &[(&str, &str)]) -> Result<IvrScript, Vec<IvrLoadError>> {
        IvrScript::load_sources(files.iter().map(|(p, t)| (Path::new(*p), *t)))
    }

    fn errors(files: &[(&str, &str)]) -> Vec<IvrLoadError> {
        match load(files) {
            Ok(_) => Vec::new(),
            Err(e) => e,
        }
    }

    const OK_MENU: &str =
        "[menu.m]\nprompts = [\"main_menu\"]\nfallback = { action = \"hangup\" }\n";

    /// The prompt names that exist under sounds/<lang>/.
    fn available_prompts() -> BTreeSet<String> {
        let mut s: BTreeSet<String> = "welcome choose_language main_menu ticket_prompt ticket_thanks \
            ticket_invalid invalid_option no_input too_many_errors transfer_software transfer_hardware \
            transfer_network transfer_general transfer_urgent queue_wait callback_confirm callback_offer \
            position_is estimated_wait minute minutes less_than_a_minute no_agents goodbye transferring \
            agent_ready agent_paused agent_logged_out"
            .split_whitespace()
            .map(String::from)
            .collect();
        s.extend((0..100).map(|n| format!("numbers/{n}")));
        s
    }

    #[test]
    fn shipped_ivr_dir_loads_with_zero_errors() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ivr"));
        let script = match IvrScript::load_dir(dir) {
            Ok(s) => s,
            Err(e) => panic!("shipped ivr/ has errors: {e:#?}"),
        };
        assert_eq!(
            script.menu_names(),
            ["idioma", "principal"].map(String::from).into()
        );
        assert!(script.has_menu("idioma") && !script.has_menu("nope"));
        assert_eq!(script.entry(), Some("idioma"));
        assert_eq!(script.languages(), ["en", "es"].map(String::from).into());
        let unknown: Vec<_> = script
            .prompt_names()
            .difference(&available_prompts())
            .cloned()
            .collect();
        assert!(unknown.is_empty(), "prompts without a sound: {unknown:?}");
        let principal = script.menu("principal").expect("principal");
        assert_eq!(principal.timeout.get(), 5000);
        assert_eq!(principal.max_retries.get(), 3);
        assert_eq!(principal.options.len(), 7);
    }

    #[test]
    fn unknown_menu_reference_reported_with_file_and_key() {
        let text =
            format!("{OK_MENU}[menu.m.options]\n1 = {{ action = \"menu\", menu = \"nope\" }}\n");
        let errs = errors(&[("ivr/a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].file, Path::new("ivr/a.toml"));
        assert_eq!(errs[0].key, "menu.m.options.1.menu");
        assert_eq!(errs[0].line, Some(5));
        assert!(errs[0].message.contains("nope"), "{}", errs[0]);
        assert!(
            errs[0]
                .to_string()
                .starts_with("ivr/a.toml:5: menu.m.options.1.menu: "),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn menu_references_resolve_across_files() {
        let a = "[menu.a]\nprompts = []\nfallback = { action = \"menu\", menu = \"b\" }\n";
        let b = "[menu.b]\nprompts = []\nfallback = { action = \"menu\", menu = \"a\" }\n";
        assert!(load(&[("a.toml", a), ("b.toml", b)]).is_ok());
    }

    #[test]
    fn several_errors_reported_at_once() {
        let bad = "[menu.m]\nprompts = [\"main menu\"]\ntimeout_ms = 70000\nfallback = { action = \"hangup\" }\n\
                   [menu.m.options]\n12 = { action = \"queue\", queue = \"q\" }\n\
                   3 = { action = \"queue\", queue = \"q\", priority = 10 }\n";
        let broken = "[menu.x\n";
        let errs = errors(&[
            ("bad.toml", bad),
            ("broken.toml", broken),
            ("dup.toml", OK_MENU),
            ("dup2.toml", OK_MENU),
        ]);
        let keys: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.file.to_str().unwrap_or(""), e.key.as_str()))
            .collect();
        for want in [
            ("bad.toml", "menu.m.prompts.0"),
            ("bad.toml", "menu.m.timeout_ms"),
            ("bad.toml", "menu.m.options.12"),
            ("bad.toml", "menu.m.options.3.priority"),
            ("dup2.toml", "menu.m"),
        ] {
            assert!(keys.contains(&want), "missing {want:?} in {errs:#?}");
        }
        assert!(
            errs.iter()
                .any(|e| e.file == Path::new("broken.toml") && e.line == Some(1)),
            "{errs:#?}"
        );
    }

    #[test]
    fn unknown_key_rejected() {
        let text = format!("{OK_MENU}colour = \"red\"\n");
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.colour");
        assert_eq!(errs[0].line, Some(4));
        assert!(
            errs[0].message.contains("unknown field `colour`"),
            "{}",
            errs[0]
        );
        // Inside an action too.
        let text = format!(
            "{OK_MENU}[menu.m.options]\n1 = {{ action = \"queue\", queue = \"q\", prio = 9 }}\n"
        );
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.options.1");
        assert!(
            errs[0].message.contains("unknown field `prio`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn unknown_action_rejected() {
        let text =
            format!("{OK_MENU}[menu.m.options]\n4 = {{ action = \"queu\", queue = \"q\" }}\n");
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.options.4.action");
        assert!(
            errs[0].message.contains("queue"),
            "expected variants listed: {}",
            errs[0]
        );
    }

    #[test]
    fn out_of_range_timeout_rejected() {
        let text = "[menu.m]\nprompts = []\ntimeout_ms = 100\nfallback = { action = \"hangup\" }\n";
        let errs = errors(&[("a.toml", text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            (errs[0].key.as_str(), errs[0].line),
            ("menu.m.timeout_ms", Some(3))
        );
        assert!(
            errs[0].message.contains("500") && errs[0].message.contains("60000"),
            "{}",
            errs[0]
        );
        let text = format!(
            "{OK_MENU}[menu.m.options.1]\naction = \"collect\"\nfield = \"f\"\nmax_length = 4\n\
             inter_digit_timeout_ms = 61000\nnext = {{ action = \"hangup\" }}\n"
        );
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.options.1.inter_digit_timeout_ms");
    }

    #[test]
    fn collect_needs_a_length() {
        let text = format!(
            "{OK_MENU}[menu.m.options.1]\naction = \"collect\"\nfield = \"f\"\nnext = {{ action = \"hangup\" }}\n"
        );
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.options.1.max_length");
    }

    #[test]
    fn undeclared_language_rejected() {
        let text = format!(
            "languages = [\"es\"]\n{OK_MENU}[menu.m.options]\n1 = {{ action = \"language\", language = \"fr\", menu = \"m\" }}\n"
        );
        let errs = errors(&[("a.toml", &text)]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "menu.m.options.1.language");
    }

    #[test]
    fn readme_example_loads() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ivr/README.md"));
        let example = readme
            .split("```toml\n")
            .nth(1)
            .and_then(|r| r.split("```").next())
            .unwrap_or("");
        let idioma = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/ivr/idioma.toml"));
        let script = match load(&[("example.toml", example), ("idioma.toml", idioma)]) {
            Ok(s) => s,
            Err(e) => panic!("README example: {e:#?}"),
        };
        let m = script.menu("principal").expect("principal");
        assert!(m.options.contains_key(&Key('#')));
    }
}
