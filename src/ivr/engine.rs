//! The IVR engine: one [`IvrCall`] per call, a sans-IO state machine.
//!
//! Owns: the per-call state (current menu or collect, retries, digits typed,
//! the one pending deadline, language, collected fields) and the rules that
//! turn [`IvrEvent`]s and timeouts into [`IvrAction`]s. It does no IO and
//! never reads the clock: every entry point takes `now`, the driver asks
//! [`IvrCall::poll_timeout`] when to call [`IvrCall::handle_timeout`] and
//! drains [`IvrCall::poll_action`] after each call.
//!
//! Rules (see also `ivr/README.md`):
//! * A menu or collect plays its prompts; its first-digit (no-input) timer
//!   starts when the driver reports `PlaybackFinished`. A collect's
//!   inter-digit timer restarts after each digit.
//! * Barge-in (default on): a digit during a prompt emits `StopPlayback` and
//!   is processed at once; with barge-in off such digits are ignored.
//! * Invalid key or no input: play the invalid / no-input prompt followed by
//!   the menu prompts again. Invalid and no-input count together; the
//!   failure after `max_retries` retries runs the fallback (so
//!   `max_retries = 3` allows 4 attempts, `0` allows one).
//! * Collect, inter-digit timeout: **submits** the digits typed so far, which
//!   then pass the same checks as a terminated entry (too short / out of
//!   range → invalid → retry). A first-digit timeout with nothing typed is
//!   no-input. Reaching `length` (fixed) or `max_length` submits at once; the
//!   terminator submits early; any other non-digit key is invalid.
//! * `play`, `hangup`, `callback` prompts are not interruptible; `Hangup` is
//!   emitted only after `PlaybackFinished` of the goodbye prompt.
//! * The driver must not report `PlaybackFinished` for a playback that was
//!   stopped (`StopPlayback`) or replaced by a newer `Play`.
//! * After `Queue` or `Hangup` the call is finished and ignores everything.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::script::{
    Action, Collect, CollectLength, IvrScript, Key, LanguageCode, PromptName,
    CALLBACK_HANGUP_REASON,
};

/// Errors creating an [`IvrCall`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IvrError {
    #[error("unknown IVR menu `{0}`")]
    UnknownMenu(String),
    #[error("invalid language code {0:?}")]
    InvalidLanguage(String),
}

/// What the driver reports to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IvrEvent {
    /// The call was answered (media is up).
    Answered,
    /// A DTMF key: '0'-'9', '*', '#' (anything else is ignored).
    Digit(char),
    /// The last `Play` finished playing all its prompts.
    PlaybackFinished,
}

/// What the engine asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrAction {
    /// Play these prompts in order (`sounds/<language>/<name>.wav`);
    /// replaces anything playing.
    Play {
        language: String,
        prompts: Vec<String>,
        barge_in: bool,
    },
    /// Stop the prompt playing (barge-in).
    StopPlayback,
    /// A menu was entered (per-menu entry counter).
    EnteredMenu {
        menu: String,
    },
    LanguageChosen {
        language: String,
    },
    FieldCollected {
        name: String,
        value: String,
    },
    /// Hand the call to the ACD. The IVR is finished.
    Queue {
        queue: String,
        priority: u8,
        prompt: Option<String>,
    },
    /// Register a callback request (a `Hangup` follows after the prompts).
    RequestCallback {
        queue: String,
        number_field: Option<String>,
    },
    /// Hang up. The IVR is finished.
    Hangup {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    Invalid,
    NoInput,
}

#[derive(Debug)]
enum State {
    WaitingAnswer,
    Menu {
        retries: u8,
        playing: bool,
    },
    Collect {
        spec: Box<Collect>,
        digits: String,
        retries: u8,
        playing: bool,
    },
    /// Non-interruptible prompts, then `next`.
    PlayThen {
        next: Box<Action>,
    },
    /// Goodbye prompt playing; hang up when it finishes.
    HangupAfterPlay {
        reason: String,
    },
    Finished,
}

/// One call's IVR session.
#[derive(Debug)]
pub struct IvrCall {
    script: Arc<IvrScript>,
    entry: String,
    language: String,
    fields: BTreeMap<String, String>,
    current_menu: Option<String>,
    state: State,
    deadline: Option<Instant>,
    actions: VecDeque<IvrAction>,
}

impl IvrCall {
    /// A session that will enter `entry_menu` when the call is answered.
    pub fn new(
        script: Arc<IvrScript>,
        entry_menu: &str,
        language: &str,
        _now: Instant,
    ) -> Result<Self, IvrError> {
        if !script.has_menu(entry_menu) {
            return Err(IvrError::UnknownMenu(entry_menu.to_string()));
        }
        LanguageCode::new(language).map_err(|_| IvrError::InvalidLanguage(language.to_string()))?;
        Ok(Self {
            script,
            entry: entry_menu.to_string(),
            language: language.to_string(),
            fields: BTreeMap::new(),
            current_menu: None,
            state: State::WaitingAnswer,
            deadline: None,
            actions: VecDeque::new(),
        })
    }

    pub fn handle_event(&mut self, now: Instant, ev: IvrEvent) {
        match ev {
            IvrEvent::Answered => {
                if matches!(self.state, State::WaitingAnswer) {
                    let entry = self.entry.clone();
                    self.enter_menu(now, &entry);
                }
            }
            IvrEvent::PlaybackFinished => self.playback_finished(now),
            IvrEvent::Digit(c) => {
                if let Some(k) = Key::from_char(c) {
                    self.digit(now, k);
                }
            }
        }
    }

    /// Fire the pending deadline if `now` has reached it (early calls are
    /// harmless no-ops).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d => self.deadline = None,
            _ => return,
        }
        let typed = match &self.state {
            State::Menu { .. } => None,
            State::Collect { digits, .. } => Some(!digits.is_empty()),
            _ => return,
        };
        match typed {
            Some(true) => self.submit(now),
            _ => self.fail(now, Failure::NoInput),
        }
    }

    pub fn poll_action(&mut self) -> Option<IvrAction> {
        self.actions.pop_front()
    }

    /// The earliest pending deadline (there is at most one at a time).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn language(&self) -> &str {
        &self.language
    }

    pub fn fields(&self) -> &BTreeMap<String, String> {
        &self.fields
    }

    pub fn current_menu(&self) -> Option<&str> {
        self.current_menu.as_deref()
    }

    /// Whether keys are being collected into a field now (they are the
    /// field's, not choices of a menu).
    pub fn collecting(&self) -> bool {
        matches!(self.state, State::Collect { .. })
    }

    /// True once `Queue` or `Hangup` has been emitted.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    // -- internals ---------------------------------------------------------

    fn play(&mut self, prompts: Vec<String>, barge_in: bool) -> bool {
        if prompts.is_empty() {
            return false;
        }
        self.actions.push_back(IvrAction::Play {
            language: self.language.clone(),
            prompts,
            barge_in,
        });
        true
    }

    fn finish(&mut self, action: IvrAction) {
        self.actions.push_back(action);
        self.state = State::Finished;
        self.deadline = None;
    }

    fn enter_menu(&mut self, now: Instant, name: &str) {
        let script = Arc::clone(&self.script);
        let Some(menu) = script.menu(name) else {
            self.finish(IvrAction::Hangup {
                reason: format!("ivr_error: unknown menu {name}"),
            });
            return;
        };
        self.current_menu = Some(name.to_string());
        self.actions.push_back(IvrAction::EnteredMenu {
            menu: name.to_string(),
        });
        self.deadline = None;
        let playing = self.play(names(&menu.prompts), menu.barge_in);
        if !playing {
            self.deadline = Some(now + menu.timeout.duration());
        }
        self.state = State::Menu {
            retries: 0,
            playing,
        };
    }

    fn run(&mut self, now: Instant, action: Action) {
        self.deadline = None;
        match action {
            Action::Menu { menu } => self.enter_menu(now, &menu),
            Action::Language { language, menu } => {
                self.language = language.as_str().to_string();
                self.actions.push_back(IvrAction::LanguageChosen {
                    language: self.language.clone(),
                });
                self.enter_menu(now, &menu);
            }
            Action::Play { prompts, next } => {
                if self.play(names(&prompts), false) {
                    self.state = State::PlayThen { next };
                } else {
                    self.run(now, *next);
                }
            }
            Action::Hangup { prompt, reason } => {
                self.hangup_after(opt(&prompt).into_iter().collect(), reason)
            }
            Action::Queue {
                queue,
                priority,
                prompt,
            } => self.finish(IvrAction::Queue {
                queue,
                priority: priority.get(),
                prompt: prompt.map(|p| p.as_str().to_string()),
            }),
            Action::Callback {
                queue,
                number_field,
                prompt,
                goodbye,
            } => {
                self.actions.push_back(IvrAction::RequestCallback {
                    queue,
                    number_field,
                });
                let prompts = opt(&prompt).into_iter().chain(opt(&goodbye)).collect();
                self.hangup_after(prompts, CALLBACK_HANGUP_REASON.to_string());
            }
            Action::Collect(spec) => {
                let playing = self.play(names(&spec.prompts), spec.barge_in);
                if !playing {
                    self.deadline = Some(now + spec.timeout.duration());
                }
                self.state = State::Collect {
                    spec,
                    digits: String::new(),
                    retries: 0,
                    playing,
                };
            }
        }
    }

    fn hangup_after(&mut self, prompts: Vec<String>, reason: String) {
        if self.play(prompts, false) {
            self.state = State::HangupAfterPlay { reason };
        } else {
            self.finish(IvrAction::Hangup { reason });
        }
    }

    fn playback_finished(&mut self, now: Instant) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Menu {
                retries,
                playing: true,
            } => {
                self.state = State::Menu {
                    retries,
                    playing: false,
                };
                let timeout = self
                    .current_menu
                    .as_deref()
                    .and_then(|m| self.script.menu(m))
                    .map(|m| m.timeout);
                self.deadline = timeout.map(|t| now + t.duration());
            }
            State::Collect {
                spec,
                digits,
                retries,
                playing: true,
            } => {
                self.deadline = Some(now + spec.timeout.duration());
                self.state = State::Collect {
                    spec,
                    digits,
                    retries,
                    playing: false,
                };
            }
            State::PlayThen { next } => self.run(now, *next),
            State::HangupAfterPlay { reason } => self.finish(IvrAction::Hangup { reason }),
            other => self.state = other, // stale or unexpected: ignore
        }
    }

    fn digit(&mut self, now: Instant, key: Key) {
        match &mut self.state {
            State::Menu { playing, .. } => {
                let Some(menu) = self
                    .current_menu
                    .as_deref()
                    .and_then(|m| self.script.menu(m))
                else {
                    return;
                };
                if *playing {
                    if !menu.barge_in {
                        return;
                    }
                    *playing = false;
                    self.actions.push_back(IvrAction::StopPlayback);
                }
                match menu.options.get(&key).cloned() {
                    Some(action) => self.run(now, action),
                    None => self.fail(now, Failure::Invalid),
                }
            }
            State::Collect {
                spec,
                digits,
                playing,
                ..
            } => {
                if *playing {
                    if !spec.barge_in {
                        return;
                    }
                    *playing = false;
                    self.actions.push_back(IvrAction::StopPlayback);
                }
                if Some(key) == spec.terminator {
                    return self.submit(now);
                }
                if !key.get().is_ascii_digit() {
                    return self.fail(now, Failure::Invalid);
                }
                digits.push(key.get());
                let full = match spec.length {
                    CollectLength::Fixed(n) => digits.len() >= n.get(),
                    CollectLength::Variable { max, .. } => digits.len() >= max.get(),
                };
                if full {
                    self.submit(now);
                } else {
                    self.deadline = Some(now + spec.inter_digit_timeout.duration());
                }
            }
            _ => {}
        }
    }

    fn submit(&mut self, now: Instant) {
        let State::Collect { spec, digits, .. } = &self.state else {
            return;
        };
        let len = digits.len();
        let len_ok = match spec.length {
            CollectLength::Fixed(n) => len == n.get(),
            CollectLength::Variable { min, max } => (min.get()..=max.get()).contains(&len),
        };
        let range_ok = match (spec.min_value, spec.max_value) {
            (None, None) => true,
            (lo, hi) => digits
                .parse::<u64>()
                .is_ok_and(|v| lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)),
        };
        if !(len_ok && range_ok) {
            return self.fail(now, Failure::Invalid);
        }
        let (name, value, next) = (spec.field.clone(), digits.clone(), spec.next.clone());
        self.fields.insert(name.clone(), value.clone());
        self.actions
            .push_back(IvrAction::FieldCollected { name, value });
        self.run(now, next);
    }

    fn fail(&mut self, now: Instant, why: Failure) {
        self.deadline = None;
        let script = Arc::clone(&self.script);
        let menu = self.current_menu.as_deref().and_then(|m| script.menu(m));
        match &mut self.state {
            State::Menu { retries, playing } => {
                let Some(menu) = menu else {
                    return self.finish_error();
                };
                if *retries >= menu.max_retries.get() {
                    return self.run(now, menu.fallback.clone());
                }
                *retries += 1;
                let extra = match why {
                    Failure::Invalid => &menu.invalid_prompt,
                    Failure::NoInput => &menu.no_input_prompt,
                };
                let prompts: Vec<String> =
                    opt(extra).into_iter().chain(names(&menu.prompts)).collect();
                *playing = !prompts.is_empty();
                if !self.play(prompts, menu.barge_in) {
                    self.deadline = Some(now + menu.timeout.duration());
                }
            }
            State::Collect {
                spec,
                digits,
                retries,
                playing,
            } => {
                digits.clear();
                if *retries >= spec.max_retries.get() {
                    let fallback = spec
                        .fallback
                        .clone()
                        .or_else(|| menu.map(|m| m.fallback.clone()));
                    return match fallback {
                        Some(f) => self.run(now, f),
                        None => self.finish_error(),
                    };
                }
                *retries += 1;
                let extra = match why {
                    Failure::Invalid => &spec.invalid_prompt,
                    Failure::NoInput => &spec.no_input_prompt,
                };
                let prompts: Vec<String> =
                    opt(extra).into_iter().chain(names(&spec.prompts)).collect();
                *playing = !prompts.is_empty();
                let (barge_in, timeout) = (spec.barge_in, spec.timeout);
                if !self.play(prompts, barge_in) {
                    self.deadline = Some(now + timeout.duration());
                }
            }
            _ => {}
        }
    }

    fn finish_error(&mut self) {
        self.finish(IvrAction::Hangup {
            reason: "ivr_error: no fallback".to_string(),
        });
    }
}

fn names(p: &[PromptName]) -> Vec<String> {
    p.iter().map(|p| p.as_str().to_string()).collect()
}

fn opt(p: &Option<PromptName>) -> Option<String> {
    p.as_ref().map(|p| p.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    /// Fake clock: a base instant plus milliseconds.
    struct Clock(Instant);
    impl Clock {
        fn new() -> Self {
            Clock(Instant::now())
        }
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }
    }

    fn shipped() -> Arc<IvrScript> {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ivr"));
        Arc::new(IvrScript::load_dir(dir).expect("shipped ivr/ loads"))
    }

    fn inline(text: &str) -> Arc<IvrScript> {
        Arc::new(
            IvrScript::load_sources([(Path::new("test.toml"), text)]).expect("test script loads"),
        )
    }

    fn drain(call: &mut IvrCall) -> Vec<IvrAction> {
        std::iter::from_fn(|| call.poll_action()).collect()
    }

    fn play(lang: &str, prompts: &[&str], barge_in: bool) -> IvrAction {
        IvrAction::Play {
            language: lang.into(),
            prompts: prompts.iter().map(|p| p.to_string()).collect(),
            barge_in,
        }
    }

    /// Answered, entry prompt finished, '1' (Spanish), main menu prompt
    /// finished at t = 1000 ms: the caller is in `principal`, timer armed.
    fn in_main_menu(c: &Clock) -> IvrCall {
        let mut call = IvrCall::new(shipped(), "idioma", "es", c.at(0)).expect("entry menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        call.handle_event(c.at(500), IvrEvent::PlaybackFinished);
        call.handle_event(c.at(600), IvrEvent::Digit('1'));
        call.handle_event(c.at(1000), IvrEvent::PlaybackFinished);
        drain(&mut call);
        call
    }

    /// In `principal`, option 4 chosen at 1100 ms, ticket prompt finished at 2000 ms.
    fn in_ticket_collect(c: &Clock) -> IvrCall {
        let mut call = in_main_menu(c);
        call.handle_event(c.at(1100), IvrEvent::Digit('4'));
        call.handle_event(c.at(2000), IvrEvent::PlaybackFinished);
        drain(&mut call);
        call
    }

    #[test]
    fn answered_plays_entry_prompt() {
        let c = Clock::new();
        let mut call = IvrCall::new(shipped(), "idioma", "es", c.at(0)).expect("entry menu exists");
        assert_eq!(call.poll_action(), None);
        call.handle_event(c.at(0), IvrEvent::Answered);
        assert_eq!(
            drain(&mut call),
            vec![
                IvrAction::EnteredMenu {
                    menu: "idioma".into()
                },
                play("es", &["welcome", "choose_language"], true),
            ]
        );
        assert_eq!(call.current_menu(), Some("idioma"));
        assert_eq!(
            call.poll_timeout(),
            None,
            "no-input timer starts after the prompt"
        );
    }

    #[test]
    fn digit_selects_language_and_enters_main_menu() {
        let c = Clock::new();
        let mut call = IvrCall::new(shipped(), "idioma", "es", c.at(0)).expect("entry menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        call.handle_event(c.at(3000), IvrEvent::PlaybackFinished);
        drain(&mut call);
        call.handle_event(c.at(4000), IvrEvent::Digit('2'));
        assert_eq!(
            drain(&mut call),
            vec![
                IvrAction::LanguageChosen {
                    language: "en".into()
                },
                IvrAction::EnteredMenu {
                    menu: "principal".into()
                },
                play("en", &["main_menu"], true),
            ]
        );
        assert_eq!(call.language(), "en");
        assert_eq!(call.current_menu(), Some("principal"));
    }

    #[test]
    fn barge_in_stops_prompt() {
        let c = Clock::new();
        let mut call = IvrCall::new(shipped(), "idioma", "es", c.at(0)).expect("entry menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        drain(&mut call);
        call.handle_event(c.at(800), IvrEvent::Digit('1'));
        let acts = drain(&mut call);
        assert_eq!(acts[0], IvrAction::StopPlayback);
        assert_eq!(
            acts[1],
            IvrAction::LanguageChosen {
                language: "es".into()
            }
        );
        assert_eq!(call.current_menu(), Some("principal"));
    }

    #[test]
    fn no_barge_in_ignores_digits_during_prompt() {
        let c = Clock::new();
        let script = inline(
            "[menu.m]\nprompts = [\"main_menu\"]\nbarge_in = false\nfallback = { action = \"hangup\" }\n\
             [menu.m.options]\n1 = { action = \"queue\", queue = \"q\" }\n",
        );
        let mut call = IvrCall::new(script, "m", "es", c.at(0)).expect("menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        drain(&mut call);
        call.handle_event(c.at(500), IvrEvent::Digit('1'));
        assert_eq!(
            drain(&mut call),
            vec![],
            "digit during a non-barge-in prompt is ignored"
        );
        call.handle_event(c.at(900), IvrEvent::PlaybackFinished);
        call.handle_event(c.at(1000), IvrEvent::Digit('1'));
        assert_eq!(
            drain(&mut call),
            vec![IvrAction::Queue {
                queue: "q".into(),
                priority: 5,
                prompt: None
            }]
        );
    }

    #[test]
    fn invalid_key_plays_invalid_then_menu_again() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        call.handle_event(c.at(2000), IvrEvent::Digit('7'));
        assert_eq!(
            drain(&mut call),
            vec![play("es", &["invalid_option", "main_menu"], true)]
        );
        assert_eq!(
            call.poll_timeout(),
            None,
            "timer waits for the re-played prompt"
        );
        assert_eq!(call.current_menu(), Some("principal"));
    }

    #[test]
    fn no_input_timeout_plays_no_input() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        assert_eq!(call.poll_timeout(), Some(c.at(6000)));
        call.handle_timeout(c.at(5999));
        assert_eq!(drain(&mut call), vec![], "one millisecond early: nothing");
        call.handle_timeout(c.at(6000));
        assert_eq!(
            drain(&mut call),
            vec![play("es", &["no_input", "main_menu"], true)]
        );
    }

    #[test]
    fn retries_exhausted_takes_fallback() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        let mut t = 1000;
        // max_retries = 3: three failures re-play the menu (mixing invalid and no-input)...
        for i in 0..3 {
            if i == 1 {
                t += 5000;
                call.handle_timeout(c.at(t));
            } else {
                t += 100;
                call.handle_event(c.at(t), IvrEvent::Digit('8'));
            }
            assert!(matches!(
                drain(&mut call).as_slice(),
                [IvrAction::Play { .. }]
            ));
            t += 100;
            call.handle_event(c.at(t), IvrEvent::PlaybackFinished);
        }
        // ...the fourth takes the fallback: apologise, then the general queue.
        call.handle_event(c.at(t + 100), IvrEvent::Digit('8'));
        assert_eq!(
            drain(&mut call),
            vec![play("es", &["too_many_errors"], false)]
        );
        call.handle_event(c.at(t + 2000), IvrEvent::PlaybackFinished);
        assert_eq!(
            drain(&mut call),
            vec![IvrAction::Queue {
                queue: "general".into(),
                priority: 5,
                prompt: Some("transfer_general".into())
            }]
        );
        assert!(call.is_finished());
    }

    #[test]
    fn idioma_fallback_continues_in_spanish() {
        let c = Clock::new();
        let mut call = IvrCall::new(shipped(), "idioma", "en", c.at(0)).expect("entry menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        for i in 0..4u64 {
            call.handle_event(c.at(i * 10_000), IvrEvent::PlaybackFinished);
            call.handle_timeout(c.at(i * 10_000 + 5_000));
        }
        let acts = drain(&mut call);
        assert!(acts.contains(&IvrAction::LanguageChosen {
            language: "es".into()
        }));
        assert_eq!(call.current_menu(), Some("principal"));
        assert_eq!(call.language(), "es");
    }

    #[test]
    fn collect_hash_terminated_ticket() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        call.handle_event(c.at(1100), IvrEvent::Digit('4'));
        assert_eq!(drain(&mut call), vec![play("es", &["ticket_prompt"], true)]);
        call.handle_event(c.at(2000), IvrEvent::PlaybackFinished);
        for (i, d) in "2024#".chars().enumerate() {
            call.handle_event(c.at(2100 + 100 * i as u64), IvrEvent::Digit(d));
        }
        assert_eq!(
            drain(&mut call),
            vec![
                IvrAction::FieldCollected {
                    name: "ticket".into(),
                    value: "2024".into()
                },
                IvrAction::Queue {
                    queue: "seguimiento".into(),
                    priority: 5,
                    prompt: Some("ticket_thanks".into())
                },
            ]
        );
        assert_eq!(
            call.fields().get("ticket").map(String::as_str),
            Some("2024")
        );
    }

    /// Documented choice: the inter-digit timeout *submits* what was typed;
    /// the entry then passes the usual checks (see collect_length_check_rejects
    /// for the failing side).
    #[test]
    fn collect_inter_digit_timeout_submits_or_fails() {
        let c = Clock::new();
        let mut call = in_ticket_collect(&c);
        call.handle_event(c.at(2100), IvrEvent::Digit('4'));
        call.handle_event(c.at(2200), IvrEvent::Digit('2'));
        assert_eq!(call.poll_timeout(), Some(c.at(5200)));
        call.handle_timeout(c.at(5200));
        assert_eq!(
            drain(&mut call)[0],
            IvrAction::FieldCollected {
                name: "ticket".into(),
                value: "42".into()
            }
        );
        assert!(call.is_finished());
    }

    #[test]
    fn collect_length_check_rejects() {
        let c = Clock::new();
        let script = inline(
            "[menu.m]\nprompts = [\"main_menu\"]\nfallback = { action = \"hangup\" }\n\
             [menu.m.options.1]\naction = \"collect\"\nfield = \"pin\"\nprompts = [\"ticket_prompt\"]\n\
             length = 4\nterminator = \"#\"\ninvalid_prompt = \"ticket_invalid\"\n\
             next = { action = \"queue\", queue = \"q\" }\n",
        );
        let mut call = IvrCall::new(script, "m", "es", c.at(0)).expect("menu exists");
        call.handle_event(c.at(0), IvrEvent::Answered);
        call.handle_event(c.at(100), IvrEvent::Digit('1'));
        call.handle_event(c.at(200), IvrEvent::PlaybackFinished);
        drain(&mut call);
        for d in "12#".chars() {
            call.handle_event(c.at(300), IvrEvent::Digit(d));
        }
        assert_eq!(
            drain(&mut call),
            vec![play("es", &["ticket_invalid", "ticket_prompt"], true)]
        );
        assert!(call.fields().is_empty());
        // A complete entry afterwards is accepted at the fourth digit.
        call.handle_event(c.at(400), IvrEvent::PlaybackFinished);
        for d in "1234".chars() {
            call.handle_event(c.at(500), IvrEvent::Digit(d));
        }
        assert_eq!(
            drain(&mut call)[0],
            IvrAction::FieldCollected {
                name: "pin".into(),
                value: "1234".into()
            }
        );
    }

    #[test]
    fn urgent_option_queues_with_top_priority() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        call.handle_event(c.at(1500), IvrEvent::Digit('5'));
        assert_eq!(
            drain(&mut call),
            vec![IvrAction::Queue {
                queue: "urgente".into(),
                priority: 9,
                prompt: Some("transfer_urgent".into())
            }]
        );
        assert_eq!(call.poll_timeout(), None);
    }

    #[test]
    fn callback_option_confirms_then_hangs_up() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        call.handle_event(c.at(1500), IvrEvent::Digit('9'));
        assert_eq!(
            drain(&mut call),
            vec![
                IvrAction::RequestCallback {
                    queue: "general".into(),
                    number_field: None
                },
                play("es", &["callback_confirm", "goodbye"], false),
            ]
        );
        call.handle_event(c.at(2000), IvrEvent::Digit('1'));
        call.handle_timeout(c.at(60_000));
        assert_eq!(
            drain(&mut call),
            vec![],
            "no hangup before the goodbye has played"
        );
        call.handle_event(c.at(61_000), IvrEvent::PlaybackFinished);
        assert_eq!(
            drain(&mut call),
            vec![IvrAction::Hangup {
                reason: "callback_requested".into()
            }]
        );
    }

    #[test]
    fn poll_timeout_is_earliest_deadline() {
        let c = Clock::new();
        let mut call = in_main_menu(&c);
        call.handle_event(c.at(1100), IvrEvent::Digit('4'));
        assert_eq!(call.poll_timeout(), None, "prompt playing: no deadline");
        call.handle_event(c.at(2000), IvrEvent::PlaybackFinished);
        assert_eq!(call.poll_timeout(), Some(c.at(7000)), "first digit: 5 s");
        call.handle_event(c.at(2500), IvrEvent::Digit('3'));
        assert_eq!(
            call.poll_timeout(),
            Some(c.at(5500)),
            "inter-digit 3 s replaces the later first-digit one"
        );
        drain(&mut call);
        call.handle_timeout(c.at(5499));
        assert_eq!(drain(&mut call), vec![]);
        assert_eq!(call.poll_timeout(), Some(c.at(5500)));
    }

    #[test]
    fn new_rejects_unknown_entry_menu() {
        let c = Clock::new();
        assert_eq!(
            IvrCall::new(shipped(), "nope", "es", c.at(0)).err(),
            Some(IvrError::UnknownMenu("nope".into()))
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Key(char),
            Timeout,
            Junk(IvrEvent),
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                6 => proptest::sample::select("0123456789*#x".chars().collect::<Vec<_>>()).prop_map(Step::Key),
                2 => Just(Step::Timeout),
                1 => prop_oneof![Just(IvrEvent::Answered), Just(IvrEvent::PlaybackFinished)].prop_map(Step::Junk),
            ]
        }

        proptest! {
            /// Random keys, timeouts and stray events never panic, and a
            /// caller whose prompts finish always ends in Queue or Hangup
            /// (callback included) within 100 inputs.
            #[test]
            fn random_input_always_terminates(steps in proptest::collection::vec(step(), 100..101)) {
                let c = Clock::new();
                let mut call = IvrCall::new(shipped(), "idioma", "es", c.at(0)).expect("entry exists");
                call.handle_event(c.at(0), IvrEvent::Answered);
                let mut t = 0u64;
                let mut playing = false;
                let mut ended = None;
                for s in steps {
                    for a in drain(&mut call) {
                        match a {
                            IvrAction::Play { .. } => playing = true,
                            IvrAction::StopPlayback => playing = false,
                            IvrAction::Queue { .. } | IvrAction::Hangup { .. } => ended = Some(a),
                            _ => {}
                        }
                    }
                    if ended.is_some() {
                        break;
                    }
                    t += 250;
                    if playing {
                        playing = false;
                        call.handle_event(c.at(t), IvrEvent::PlaybackFinished);
                        continue;
                    }
                    match s {
                        Step::Key(k) => call.handle_event(c.at(t), IvrEvent::Digit(k)),
                        Step::Junk(e) => call.handle_event(c.at(t), e),
                        Step::Timeout => {
                            if let Some(d) = call.poll_timeout() {
                                t = t.max(d.duration_since(c.0).as_millis() as u64);
                                call.handle_timeout(d);
                            }
                        }
                    }
                }
                for a in drain(&mut call) {
                    if matches!(a, IvrAction::Queue { .. } | IvrAction::Hangup { .. }) {
                        ended = Some(a);
                    }
                }
                prop_assert!(ended.is_some(), "not finished after 100 inputs");
                prop_assert!(call.is_finished());
            }
        }
    }
}
