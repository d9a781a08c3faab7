//! A CloudTrail digest file: its body, its signature, and the exact string CloudTrail signs.
//!
//! The format (see `../shared/spec/cloudtrail-formats.md` §8 and AWS's "custom implementation
//! of CloudTrail log file integrity validation"): a gzip'd JSON object naming its own location,
//! the key that signed it, the previous digest of the chain (location, SHA-256 of its inflated
//! bytes, its signature) and the log files delivered in the hour with the SHA-256 of each
//! inflated file. The signature is not in the body: S3 keeps it as object metadata
//! (`x-amz-meta-signature`, hex; `x-amz-meta-signature-algorithm`).

use std::io::Read;

use model::timefmt::parse_rfc3339_millis;
use model::EpochMillis;
use rsa::pkcs1::DecodeRsaPublicKey;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// The only algorithm CloudTrail uses, for the digest signature.
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// … and for the log and previous-digest hashes.
pub const HASH_ALGORITHM: &str = "SHA-256";

/// The body of a digest file. Unknown fields are ignored; the ones the algorithm needs are
/// required (their absence makes the digest unreadable, as it does for awscli).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestBody {
    pub aws_account_id: Option<String>,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    #[serde(default)]
    pub digest_signature_algorithm: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    /// Required to be present (it is part of the string to sign), null at a chain's start.
    #[serde(deserialize_with = "present_or_null")]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<LogFileEntry>,
}

/// A field that must be present but may be null (serde treats a missing `Option` field as
/// `None` unless it has its own deserializer).
fn present_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
    #[serde(default)]
    pub hash_algorithm: Option<String>,
}

/// A digest as read: the inflated bytes (what is hashed), the parsed body and its times.
#[derive(Debug, Clone)]
pub struct Digest {
    pub body: DigestBody,
    /// Hex SHA-256 of the inflated bytes: what the next digest's `previousDigestHashValue` holds.
    pub sha256: String,
    /// The exact text CloudTrail signed (see [`string_to_sign`]).
    string_to_sign: String,
    pub start: EpochMillis,
    pub end: EpochMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not gzip: {0}")]
    Gzip(String),
    #[error(
        "stored as plain JSON, not gzip: CloudTrail writes digests gzip'd, so this object is not what it wrote \
         (a local copy made with decompression on: validate with --decompressed-copy)"
    )]
    NotGzip,
    #[error("inflates to more than {MAX_DIGEST_BYTES} bytes")]
    TooLarge,
    #[error("not a digest: {0}")]
    Json(String),
    #[error("{field} is not a time: {value:?}")]
    Time { field: &'static str, value: String },
}

/// The largest digest accepted, inflated. A digest lists an hour's log files of one region
/// (~300 bytes each): even a large organization's stay far below this.
pub const MAX_DIGEST_BYTES: u64 = 256 << 20;

impl Digest {
    /// Parses a digest object as CloudTrail stores it: gzip'd. Plain JSON is not what
    /// CloudTrail wrote (`aws cloudtrail validate-logs` reports it too); see
    /// [`parse_decompressed_copy`](Self::parse_decompressed_copy).
    pub fn parse(stored: &[u8]) -> Result<Digest, DigestError> {
        if !stored.starts_with(&[0x1f, 0x8b]) {
            return Err(DigestError::NotGzip);
        }
        let mut out = Vec::with_capacity(stored.len() * 4);
        flate2::read::MultiGzDecoder::new(stored)
            .take(MAX_DIGEST_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| DigestError::Gzip(e.to_string()))?;
        if out.len() as u64 > MAX_DIGEST_BYTES {
            return Err(DigestError::TooLarge);
        }
        Digest::from_inflated(&out)
    }

    /// Like [`parse`](Self::parse) for a copy of a bucket made with decompression on: plain
    /// JSON is read as the inflated digest (its hash is the same).
    pub fn parse_decompressed_copy(stored: &[u8]) -> Result<Digest, DigestError> {
        if stored.starts_with(&[0x1f, 0x8b]) {
            Digest::parse(stored)
        } else {
            Digest::from_inflated(stored)
        }
    }

    pub fn from_inflated(inflated: &[u8]) -> Result<Digest, DigestError> {
        let body: DigestBody = serde_json::from_slice(inflated).map_err(|e| DigestError::Json(e.to_string()))?;
        let time = |field: &'static str, value: &str| {
            parse_rfc3339_millis(value).ok_or_else(|| DigestError::Time { field, value: value.to_string() })
        };
        let start = time("digestStartTime", &body.digest_start_time)?;
        let end = time("digestEndTime", &body.digest_end_time)?;
        let sha256 = hex::encode(Sha256::digest(inflated));
        let string_to_sign = string_to_sign(&body, &sha256);
        Ok(Digest { body, sha256, string_to_sign, start, end })
    }

    /// The exact bytes CloudTrail signed.
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// Verifies `signature_hex` (SHA256withRSA, PKCS#1 v1.5) with the DER `RSAPublicKey`
    /// `public_key` (aws-lc, already linked for TLS: an order of magnitude faster than the
    /// pure-Rust RSA, which matters with a digest an hour per region for years).
    pub fn verify(&self, public_key: &[u8], signature_hex: &str) -> bool {
        use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
        let Ok(signature) = hex::decode(signature_hex.trim()) else { return false };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
            .verify(self.string_to_sign.as_bytes(), &signature)
            .is_ok()
    }
}

/// `digestEndTime \n digestS3Bucket/digestS3Object \n hex(SHA-256(inflated digest)) \n
/// previousDigestSignature` — the literal `null` at a chain's start — with no trailing newline.
pub fn string_to_sign(body: &DigestBody, inflated_sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        body.digest_end_time,
        body.digest_s3_bucket,
        body.digest_s3_object,
        inflated_sha256_hex,
        body.previous_digest_signature.as_deref().unwrap_or("null")
    )
}

/// `der` when it is a DER `RSAPublicKey` (PKCS#1), the form ListPublicKeys returns.
pub fn public_key_from_der(der: &[u8]) -> Option<Vec<u8>> {
    rsa::RsaPublicKey::from_pkcs1_der(der).ok().map(|_| der.to_vec())
}

/// What S3 keeps beside a digest: `signature` and `signature-algorithm` user metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureMetadata {
    pub signature: Option<String>,
    pub algorithm: Option<String>,
}

impl SignatureMetadata {
    /// Reads a `KEY.metadata.json` sidecar. Both spellings are accepted: the user-metadata
    /// names the SDKs show (`signature`, `signature-algorithm`) and the HTTP header names
    /// (`x-amz-meta-signature`, …), case-insensitively.
    pub fn from_sidecar(text: &[u8]) -> Result<SignatureMetadata, String> {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(text).map_err(|e| format!("metadata sidecar is not a JSON object: {e}"))?;
        let mut out = SignatureMetadata::default();
        for (name, value) in map {
            let name = name.to_ascii_lowercase();
            let name = name.strip_prefix("x-amz-meta-").unwrap_or(&name);
            let Some(value) = value.as_str() else { continue };
            match name {
                "signature" => out.signature = Some(value.to_string()),
                "signature-algorithm" => out.algorithm = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Hex SHA-256 of a log file's inflated content, streamed (log files reach tens of MB).
pub fn inflated_sha256(stored: &[u8]) -> std::io::Result<String> {
    thread_local! {
        // One inflate buffer per worker thread: allocating (and zeroing) it per file costs
        // as much as a tenth of the hashing.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 128 * 1024]);
    }
    let mut hasher = Sha256::new();
    if stored.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = flate2::read::MultiGzDecoder::new(stored);
        BUF.with_borrow_mut(|buf| -> std::io::Result<()> {
            loop {
                let n = decoder.read(buf)?;
                if n == 0 {
                    return Ok(());
                }
                hasher.update(&buf[..n]);
            }
        })?;
    } else {
        hasher.update(stored);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_in_both_spellings() {
        let sdk =
            SignatureMetadata::from_sidecar(br#"{"signature":"ab","signature-algorithm":"SHA256withRSA"}"#).unwrap();
        let http = SignatureMetadata::from_sidecar(
            br#"{"X-Amz-Meta-Signature":"ab","x-amz-meta-signature-algorithm":"SHA256withRSA"}"#,
        )
        .unwrap();
        assert_eq!(sdk, http);
        assert_eq!(sdk.signature.as_deref(), Some("ab"));
        assert!(SignatureMetadata::from_sidecar(b"[1]").is_err());
    }

    #[test]
    fn the_string_to_sign_of_a_chain_start_ends_in_null() {
        let body = br#"{"digestStartTime":"2024-01-15T20:37:05Z","digestEndTime":"2024-01-15T21:37:05Z",
            "digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"f",
            "previousDigestSignature":null,"logFiles":[]}"#;
        let d = Digest::from_inflated(body).unwrap();
        let sha = hex::encode(Sha256::digest(body));
        assert_eq!(d.string_to_sign(), format!("2024-01-15T21:37:05Z\nb/k\n{sha}\nnull"));
        // previousDigestSignature is part of what is signed: a digest without it is not a digest.
        let missing = br#"{"digestStartTime":"2024-01-15T20:37:05Z","digestEndTime":"2024-01-15T21:37:05Z",
            "digestS3Bucket":"b","digestS3Object":"k","digestPublicKeyFingerprint":"f","logFiles":[]}"#;
        assert!(matches!(Digest::from_inflated(missing), Err(DigestError::Json(_))));
        let bad_time = String::from_utf8_lossy(body).replace("2024-01-15T21:37:05Z", "yesterday");
        assert!(matches!(Digest::from_inflated(bad_time.as_bytes()), Err(DigestError::Time { .. })));
    }

    #[test]
    fn log_hashes_are_of_the_inflated_content() {
        let content = br#"{"Records":[]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, content).unwrap();
        let packed = gz.finish().unwrap();
        let expected = hex::encode(Sha256::digest(content));
        assert_eq!(inflated_sha256(&packed).unwrap(), expected);
        assert!(inflated_sha256(&packed[..packed.len() - 6]).is_err(), "a truncated file is not a hash");
    }
}
