//! The agent's keypad during a bridged call, sans IO: which keys pass on to
//! the caller and which make an in-call feature code.
//!
//! The agent types the transfer prefix (`##` by default), a target (a
//! queue's number or an agent's extension) and `#`: the caller is
//! transferred there. Keys that are not part of such a code reach the
//! caller as typed — a key that could begin the prefix is held until the
//! next key or a short pause shows it does not. `*` while typing a target,
//! or `#` with no target, cancels; a pause after some target digits submits
//! them.

use std::time::{Duration, Instant};

/// A held prefix key passes on after this pause.
pub const PREFIX_PAUSE: Duration = Duration::from_millis(1500);
/// Target digits typed so far are submitted after this pause.
pub const TARGET_PAUSE: Duration = Duration::from_secs(4);

/// What the call does after a key or a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeypadAction {
    /// Nothing yet.
    None,
    /// Send these keys on to the caller.
    Pass(Vec<char>),
    /// The agent typed a feature code: transfer the caller to this target.
    Transfer(String),
    /// The agent abandoned a feature code.
    Cancelled,
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    /// Keys of the prefix typed so far (held back).
    Prefix(Vec<char>),
    /// Prefix complete; the target's digits so far.
    Target(String),
}

/// One bridged call's agent keypad.
#[derive(Debug, Clone)]
pub struct Keypad {
    prefix: Vec<char>,
    state: State,
    deadline: Option<Instant>,
}

impl Keypad {
    pub fn new(prefix: &str) -> Self {
        Keypad {
            prefix: prefix.chars().collect(),
            state: State::Idle,
            deadline: None,
        }
    }

    /// When [`Keypad::on_timeout`] is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn on_key(&mut self, now: Instant, key: char) -> KeypadAction {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.start(now, key, Vec::new()),
            State::Prefix(mut held) => {
                if self.prefix.get(held.len()) == Some(&key) {
                    held.push(key);
                    if held.len() == self.prefix.len() {
                        self.state = State::Target(String::new());
                        self.deadline = Some(now + TARGET_PAUSE);
                    } else {
                        self.state = State::Prefix(held);
                        self.deadline = Some(now + PREFIX_PAUSE);
                    }
                    KeypadAction::None
                } else {
                    // Not the prefix after all: what was held goes on, and
                    // this key is looked at afresh.
                    self.start(now, key, held)
                }
            }
            State::Target(mut target) => match key {
                '#' if target.is_empty() => self.finish(KeypadAction::Cancelled),
                '#' => self.finish(KeypadAction::Transfer(target)),
                '*' => self.finish(KeypadAction::Cancelled),
                d => {
                    target.push(d);
                    self.state = State::Target(target);
                    self.deadline = Some(now + TARGET_PAUSE);
                    KeypadAction::None
                }
            },
        }
    }

    pub fn on_timeout(&mut self, now: Instant) -> KeypadAction {
        if self.deadline.is_none_or(|d| now < d) {
            return KeypadAction::None;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.finish(KeypadAction::None),
            State::Prefix(held) => self.finish(KeypadAction::Pass(held)),
            State::Target(t) if t.is_empty() => self.finish(KeypadAction::Cancelled),
            State::Target(t) => self.finish(KeypadAction::Transfer(t)),
        }
    }

    /// `key` in the idle state, after `passed` keys that go on first.
    fn start(&mut self, now: Instant, key: char, mut passed: Vec<char>) -> KeypadAction {
        if self.prefix.first() == Some(&key) {
            if self.prefix.len() == 1 {
                self.state = State::Target(String::new());
                self.deadline = Some(now + TARGET_PAUSE);
            } else {
                self.state = State::Prefix(vec![key]);
                self.deadline = Some(now + PREFIX_PAUSE);
            }
            if passed.is_empty() {
                KeypadAction::None
            } else {
                KeypadAction::Pass(passed)
            }
        } else {
            passed.push(key);
            self.finish(KeypadAction::Pass(passed))
        }
    }

    fn finish(&mut self, action: KeypadAction) -> KeypadAction {
        self.state = State::Idle;
        self.deadline = None;
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pass(keys: &str) -> KeypadAction {
        KeypadAction::Pass(keys.chars().collect())
    }

    #[test]
    fn ordinary_keys_pass_at_once() {
        let t = Instant::now();
        let mut k = Keypad::new("##");
        assert_eq!(k.on_key(t, '5'), pass("5"));
        assert_eq!(k.on_key(t, '*'), pass("*"));
        assert_eq!(k.deadline(), None);
    }

    #[test]
    fn prefix_target_and_hash_transfer() {
        let t = Instant::now();
        let mut k = Keypad::new("##");
        for key in ['#', '#', '2', '0'] {
            assert_eq!(k.on_key(t, key), KeypadAction::None);
        }
        assert_eq!(k.on_key(t, '2'), KeypadAction::None);
        assert_eq!(k.on_key(t, '#'), KeypadAction::Transfer("202".into()));
        assert_eq!(k.on_key(t, '1'), pass("1"), "back to passing keys");
    }

    #[test]
    fn a_lone_hash_passes_after_the_pause_or_with_the_next_key() {
        let t = Instant::now();
        let mut k = Keypad::new("##");
        assert_eq!(k.on_key(t, '#'), KeypadAction::None);
        assert_eq!(k.on_timeout(t + PREFIX_PAUSE / 2), KeypadAction::None);
        assert_eq!(k.on_timeout(t + PREFIX_PAUSE), pass("#"));
        assert_eq!(k.on_key(t, '#'), KeypadAction::None);
        assert_eq!(k.on_key(t, '4'), pass("#4"));
    }

    #[test]
    fn target_pause_submits_and_star_cancels() {
        let t = Instant::now();
        let mut k = Keypad::new("##");
        k.on_key(t, '#');
        k.on_key(t, '#');
        k.on_key(t, '3');
        assert_eq!(
            k.on_timeout(t + TARGET_PAUSE),
            KeypadAction::Transfer("3".into())
        );
        k.on_key(t, '#');
        k.on_key(t, '#');
        k.on_key(t, '3');
        assert_eq!(k.on_key(t, '*'), KeypadAction::Cancelled);
        k.on_key(t, '#');
        k.on_key(t, '#');
        assert_eq!(k.on_key(t, '#'), KeypadAction::Cancelled);
        k.on_key(t, '#');
        k.on_key(t, '#');
        assert_eq!(k.on_timeout(t + TARGET_PAUSE), KeypadAction::Cancelled);
    }

    #[test]
    fn a_longer_prefix_restarts_on_a_mismatch() {
        let t = Instant::now();
        let mut k = Keypad::new("*9*");
        k.on_key(t, '*');
        assert_eq!(
            k.on_key(t, '*'),
            pass("*"),
            "the first * passes, the second may begin the prefix"
        );
        assert_eq!(k.on_key(t, '9'), KeypadAction::None);
        assert_eq!(k.on_key(t, '*'), KeypadAction::None);
        k.on_key(t, '7');
        assert_eq!(k.on_key(t, '#'), KeypadAction::Transfer("7".into()));
    }

    proptest! {
        /// Without the prefix's first key, every key passes, in order, at once.
        #[test]
        fn keys_without_the_prefix_pass_unchanged(keys in "[0-9*ABCD]{0,30}") {
            let t = Instant::now();
            let mut k = Keypad::new("##");
            let mut out = String::new();
            for key in keys.chars() {
                match k.on_key(t, key) {
                    KeypadAction::Pass(p) => out.extend(p),
                    other => prop_assert!(false, "{other:?}"),
                }
            }
            prop_assert_eq!(out, keys);
        }

        /// Any key sequence: keys that pass keep their order and every key
        /// either passes or belongs to a feature code; nothing is stuck.
        #[test]
        fn nothing_is_stuck(keys in "[0-9*#]{0,30}") {
            let t = Instant::now();
            let mut k = Keypad::new("##");
            let mut passed = String::new();
            for key in keys.chars() {
                if let KeypadAction::Pass(p) = k.on_key(t, key) {
                    passed.extend(p);
                }
            }
            if let KeypadAction::Pass(p) = k.on_timeout(t + TARGET_PAUSE) {
                passed.extend(p);
            }
            prop_assert!(k.deadline().is_none());
            prop_assert!(passed.len() <= keys.len());
            let mut rest = keys.chars();
            for c in passed.chars() {
                prop_assert!(rest.any(|k| k == c), "order kept");
            }
        }
    }
}
