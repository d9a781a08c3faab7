//! Any bytes as an SQS message body or SNS push: parsing never panics, and whatever parses as
//! a list of objects names each with a non-empty bucket and key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(model::Message { notification: model::Notification::Objects { objects, skipped, .. }, .. }) =
        model::Message::parse(text)
    {
        assert!(!objects.is_empty() || skipped > 0 || text.contains("Records"), "{text}");
        assert!(objects.iter().all(|o| !o.bucket.is_empty() && !o.key.is_empty()), "{text}");
    }
});
