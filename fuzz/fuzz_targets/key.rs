//! Any string: key parsing never panics, and a key that parses prints back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = model::TrailKey::parse(text) {
        let printed = key.to_key();
        assert_eq!(model::TrailKey::parse(&printed).as_ref(), Ok(&key), "{text} -> {printed}");
    }
});
