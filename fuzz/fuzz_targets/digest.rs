//! Any bytes as a digest object, its metadata sidecar or a public-key list: parsing never
//! panics; a digest that parses has a string to sign that starts with its end time and ends
//! with its previous signature (or `null`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Both forms: gzip (as stored) and plain JSON (a decompressed copy).
    if let Ok(d) = integrity::Digest::parse_decompressed_copy(data) {
        let s = d.string_to_sign();
        assert!(s.starts_with(&d.body.digest_end_time));
        assert!(s.ends_with(d.body.previous_digest_signature.as_deref().unwrap_or("null")));
        assert_eq!(d.sha256.len(), 64);
    }
    let _ = integrity::SignatureMetadata::from_sidecar(data);
    let _ = integrity::PublicKeys::from_list_json(data);
});
