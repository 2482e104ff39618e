//! The admin socket's request decoder: any line a peer sends must parse or be refused with an
//! error reply, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let Ok((_, request)) = tickler_admin::parse_request(line) {
        // What parses re-encodes (the CLI sends requests in this form).
        let _ = serde_json::to_vec(&request);
    }
});
