//! The operator's configuration: `config/centralita.toml`, read with serde
//! (`deny_unknown_fields`, defaults as named functions), validated into a
//! typed [`RuntimeConfig`] before anything starts. Every error names the file
//! and the key and says what was expected. Paths in the file are relative to
//! the file's own directory, so the controller does not depend on its working
//! directory.

mod file;
mod load;
mod runtime;

pub use file::*;
pub use load::ConfigError;
pub use runtime::{Overrides, PortRange, PortRangeError, RuntimeConfig, Trunk, TrunkError};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::TransferTarget;
    use std::path::Path;

    #[test]
    fn shipped_config_is_valid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        let cfg = RuntimeConfig::load(path, &Overrides::default()).expect("shipped config loads");
        assert_eq!(
            cfg.numbers.get("soporte").map(String::as_str),
            Some("idioma")
        );
        assert_eq!(
            cfg.rtp_ports,
            PortRange {
                low: 20000,
                high: 39999
            }
        );
        assert!(cfg.sounds_dir.join("es").is_dir());
    }

    #[test]
    fn errors_name_file_and_key() {
        let text = "[sip]\nlisten = \"nonsense\"\n[media]\nrtp_ports = \"5-3\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("x/c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"sip.listen"), "{errs:?}");
        assert!(keys.contains(&"media.rtp_ports"), "{errs:?}");
        assert!(keys.contains(&"numbers"), "{errs:?}");
        assert!(errs.iter().all(|e| e.file == "x/c.toml"));
    }

    #[test]
    fn transfer_targets_are_queues_and_agents_by_name_or_number() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/centralita.toml"
        ));
        let cfg = RuntimeConfig::load(path, &Overrides::default()).expect("shipped config loads");
        let q = |s: &str| Some(TransferTarget::Queue(s.into()));
        let a = |s: &str| Some(TransferTarget::Agent(s.into()));
        assert_eq!(cfg.transfer_target("hardware"), q("hardware"));
        assert_eq!(cfg.transfer_target("202"), q("hardware"));
        assert_eq!(cfg.transfer_target("carmen"), a("carmen"));
        assert_eq!(cfg.transfer_target("303"), a("carmen"));
        assert_eq!(cfg.transfer_target("999"), None);
        assert_eq!(cfg.queue_by_number("200"), Some("general"));
    }

    #[test]
    fn the_callback_trunk_is_an_ip_address_never_a_name() {
        let t = Trunk::parse("sip:127.0.0.1:5080").expect("valid");
        assert_eq!(t.uri_for("600123456"), "sip:600123456@127.0.0.1:5080");
        let t = Trunk::parse("sip:192.0.2.7;transport=udp").expect("valid");
        assert_eq!(t.addr.port(), 5060);
        let t = Trunk::parse("sip:[::1]:5070").expect("valid");
        assert_eq!(t.uri_for("1"), "sip:1@[::1]:5070");
        for bad in [
            "sip:gateway.example.com",
            "127.0.0.1:5080",
            "sip:trunk@127.0.0.1",
            "sip:127.0.0.1;transport=tcp",
        ] {
            assert!(Trunk::parse(bad).is_err(), "{bad}");
        }
        let text = "[numbers]\n\"100\" = \"idioma\"\n[acd]\ncallback_trunk = \"sip:gw.example\"\ncallback_retry_secs = 0\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"acd.callback_trunk"), "{errs:?}");
        assert!(keys.contains(&"acd.callback_retry_secs"), "{errs:?}");
    }

    #[test]
    fn limits_name_the_bad_key_and_the_trunk_is_exempt() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[limits]\nexempt = [\"10.0.0.0/8\", \"pbx.example\"]\nban_secs = 0\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["limits.exempt[1]", "limits.ban_secs"], "{errs:?}");
        let text =
            "[numbers]\n\"100\" = \"idioma\"\n[acd]\ncallback_trunk = \"sip:192.0.2.7:5080\"\n";
        let cfg = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect("valid");
        let exempt: Vec<String> = cfg.limits.exempt.iter().map(|n| n.to_string()).collect();
        assert_eq!(exempt, ["127.0.0.1", "::1", "192.0.2.7"]);
        assert_eq!(cfg.limits.calls_per_source, 10);
    }

    #[test]
    fn direct_numbers_must_be_unique() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\ntransfer_prefix = \"##\"\n\
                    [queues.a]\nnumber = \"100\"\n[queues.b]\nnumber = \"7\"\n[queues.\"c d\"]\n\
                    [agents.x]\nname = \"X\"\nsip_user = \"x\"\npassword = \"secret\"\nextension = \"7\"\n\
                    [agents.y]\nname = \"Y\"\nsip_user = \"y\"\npassword = \"secret\"\nextension = \"*11\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "queues.a.number",
            "agents.x.extension",
            "agents.y.extension",
            "queues.c d",
        ] {
            assert!(keys.contains(&k), "{k} missing from {errs:?}");
        }
    }

    #[test]
    fn unknown_key_is_refused_with_line() {
        let text =
            "[numbers]\nsoporte = \"idioma\"\n[sip]\nlisten = \"0.0.0.0:5060\"\nlistne = 1\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert!(errs[0].message.contains("listne"), "{errs:?}");
        assert_eq!(errs[0].key, "sip.listne", "{errs:?}");
        assert!(errs[0].message.contains("line 5"), "{errs:?}");
    }

    #[test]
    fn agents_are_validated_with_their_keys() {
        let text = "[numbers]\n\"*11\" = \"idioma\"\n[agents.ana]\nname = \"Ana\"\nsip_user = \"ana\"\npassword = \"pw\"\nlevel = 3\nskills = { software = 11 }\n[agents.bea]\nname = \"Bea\"\nsip_user = \"ana\"\npassword = \"secret\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "agents.ana.password",
            "agents.ana.level",
            "agents.ana.skills.software",
            "agents.bea.sip_user",
            "features.ready",
        ] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
    }

    #[test]
    fn strategies_and_fallbacks_are_read_into_their_enums() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[queues.a]\nstrategy = \"ring_all\"\n\
                    max_wait_secs = 60\non_max_wait = { overflow = \"b\" }\non_no_agents = \"callback\"\n\
                    [queues.b]\non_max_wait = { message = \"closed\" }\n";
        let cfg = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect("valid");
        let a = &cfg.queues["a"];
        assert_eq!(a.strategy, crate::acd::Strategy::RingAll);
        assert_eq!(
            a.on_max_wait,
            crate::acd::Fallback::Overflow { queue: "b".into() }
        );
        assert_eq!(a.on_no_agents, crate::acd::Fallback::OfferCallback);
        assert_eq!(
            cfg.queues["b"].on_max_wait,
            crate::acd::Fallback::MessageAndHangup {
                prompt: "closed".into()
            }
        );
        assert_eq!(cfg.queues["b"].strategy, crate::acd::Strategy::LongestIdle);
    }

    #[test]
    fn an_unknown_strategy_or_fallback_is_refused_with_key_and_line() {
        for (text, key, words) in [
            (
                "[numbers]\n\"100\" = \"idioma\"\n[queues.a]\nstrategy = \"random\"\n",
                "queues.a.strategy",
                "longest_idle",
            ),
            (
                "[numbers]\n\"100\" = \"idioma\"\n[queues.a]\non_no_agents = \"wait\"\n",
                "queues.a.on_no_agents",
                "\"accept\", \"callback\"",
            ),
            (
                "[numbers]\n\"100\" = \"idioma\"\n[queues.a]\non_no_agents = { goto = \"b\" }\n",
                "queues.a.on_no_agents",
                "overflow",
            ),
        ] {
            let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
                .expect_err("invalid");
            assert_eq!(errs[0].key, key, "{errs:?}");
            assert!(errs[0].message.contains(words), "{errs:?}");
            assert!(errs[0].message.contains("line 4"), "{errs:?}");
        }
    }

    #[test]
    fn the_in_call_hold_code_is_digits_and_no_queues_number() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\nhold = \"7\"\n[queues.a]\nnumber = \"7\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert!(
            errs.iter()
                .any(|e| e.key == "queues.a.number" && e.message.contains("hold")),
            "{errs:?}"
        );
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\nhold = \"*\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert_eq!(errs[0].key, "features.hold", "{errs:?}");
    }

    #[test]
    fn the_consultation_code_begins_no_number_and_is_not_the_hold_code() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\nconsult = \"3\"\n[queues.a]\nnumber = \"301\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert!(
            errs.iter()
                .any(|e| e.key == "queues.a.number" && e.message.contains("features.consult")),
            "{errs:?}"
        );
        let text = "[numbers]\n\"100\" = \"idioma\"\n[features]\nconsult = \"0\"\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        assert_eq!(errs[0].key, "features.consult", "{errs:?}");
    }

    #[test]
    fn due_times_are_read_per_level_and_queue_and_checked() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n[tickets]\nlevel2_due_mins = 60\n\
                    [queues.a]\ndue_mins = 5\n";
        let cfg = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect("valid");
        assert_eq!(cfg.store.due.levels, [30, 60, 4320]);
        assert_eq!(cfg.store.due.queue_ms("a"), Some(5 * 60_000));
        let text = "[numbers]\n\"100\" = \"idioma\"\n[tickets]\nlevel1_due_mins = 0\n\
                    [queues.a]\ndue_mins = 0\n";
        let errs = RuntimeConfig::from_toml(text, Path::new("c.toml"), &Overrides::default())
            .expect_err("invalid");
        let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["tickets.level1_due_mins", "queues.a.due_mins"],
            "{errs:?}"
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let text = "[numbers]\n\"100\" = \"idioma\"\n";
        let ov = Overrides {
            sip_listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..Overrides::default()
        };
        let cfg = RuntimeConfig::from_toml(text, Path::new("c.toml"), &ov).expect("valid");
        assert_eq!(cfg.sip_listen.to_string(), "127.0.0.1:0");
        assert_eq!(cfg.http_listen.to_string(), "127.0.0.1:8080");
    }
}
