//! SIP header values a REFER or REGISTER carries: `stack::parse_refer_to`
//! (Refer-To with its `Replaces` parameter, RFC 3891), and the registrar's
//! `parse_contact_list` (Contact) and `normalize_aor` (To).
#![no_main]

use centralita::sip::{registrar, stack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let (target, replaces) = stack::parse_refer_to(&value);
    if let Some(call_id) = replaces {
        assert!(!call_id.is_empty());
    }
    let _ = target;
    let _ = registrar::normalize_aor(&value);
    let values: Vec<&str> = value.split('\n').collect();
    let _ = registrar::parse_contact_list(&values);
});
