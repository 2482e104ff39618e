//! The policy and config parsers: any file text must load or be refused naming what is wrong,
//! never panic (a policy is validated as a whole at load time).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = tickler::Policy::from_toml(text);
    let _ = toml::from_str::<tickler::config::Config>(text);
    let _ = toml::from_str::<tickler::config::LearningSeed>(text);
});
