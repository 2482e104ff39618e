//! The admin socket's request decoder: any line a peer sends must parse or be refused with an
//! error reply, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    // The daemon's command families, so their commands are decoded as the daemon decodes them.
    let families = tickler::config::Config::command_families();
    if let Ok((_, request)) = tickler_admin::parse_request(line, &families) {
        // What parses re-encodes (the CLI sends requests in this form).
        let _ = serde_json::to_vec(&request);
    }
});
