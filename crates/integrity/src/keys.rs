//! CloudTrail's public keys: `aws cloudtrail list-public-keys` output, or the same list from
//! the API. A digest names its key by fingerprint; the key must also have been valid when the
//! digest was written. The fingerprint is compared as given (hex, case-insensitively), never
//! recomputed: AWS does not document how it is derived.

use base64::Engine;
use model::timefmt::parse_rfc3339_millis;
use model::EpochMillis;
use serde_json::Value;

use crate::digest::public_key_from_der;

#[derive(Debug, Clone)]
pub struct PublicKey {
    pub fingerprint: String,
    /// The DER `RSAPublicKey`; `None` when the value does not decode as one.
    pub key: Option<Vec<u8>>,
    pub valid_from: Option<EpochMillis>,
    pub valid_until: Option<EpochMillis>,
}

#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    keys: Vec<PublicKey>,
}

/// Why a digest's key could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Unknown,
    NotValidAt { from: Option<EpochMillis>, until: Option<EpochMillis> },
    Undecodable,
}

impl PublicKeys {
    pub fn new(keys: Vec<PublicKey>) -> PublicKeys {
        PublicKeys { keys }
    }

    /// Parses `{"PublicKeyList":[{"Value":"<base64 DER>","ValidityStartTime":..,
    /// "ValidityEndTime":..,"Fingerprint":"<hex>"}]}`. Times may be RFC 3339 strings (what
    /// awscli prints) or epoch seconds (what some SDKs serialise).
    pub fn from_list_json(text: &[u8]) -> Result<PublicKeys, String> {
        let doc: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        let list = doc
            .get("PublicKeyList")
            .and_then(Value::as_array)
            .ok_or("expected {\"PublicKeyList\":[...]} (the output of aws cloudtrail list-public-keys)")?;
        let mut keys = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let fingerprint = entry
                .get("Fingerprint")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("PublicKeyList[{i}] has no Fingerprint"))?;
            let value =
                entry.get("Value").and_then(Value::as_str).ok_or_else(|| format!("PublicKeyList[{i}] has no Value"))?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|e| format!("PublicKeyList[{i}].Value is not base64: {e}"))?;
            let time = |name: &str| -> Result<Option<EpochMillis>, String> {
                match entry.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => parse_rfc3339_millis(s)
                        .map(Some)
                        .ok_or_else(|| format!("PublicKeyList[{i}].{name} is not a time: {s:?}")),
                    Some(Value::Number(n)) => n
                        .as_f64()
                        .map(|secs| Some((secs * 1000.0) as EpochMillis))
                        .ok_or_else(|| format!("PublicKeyList[{i}].{name} is not a time")),
                    Some(other) => Err(format!("PublicKeyList[{i}].{name} is not a time: {other}")),
                }
            };
            keys.push(PublicKey {
                fingerprint: fingerprint.to_string(),
                key: public_key_from_der(&der),
                valid_from: time("ValidityStartTime")?,
                valid_until: time("ValidityEndTime")?,
            });
        }
        Ok(PublicKeys { keys })
    }

    /// Reads a `list-public-keys` file; errors name the file.
    pub fn read(path: &std::path::Path) -> Result<PublicKeys, String> {
        let text = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        PublicKeys::from_list_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with `fingerprint` that was valid at `at` (a digest's end time). Several keys
    /// may share a fingerprint across validity periods; the one covering `at` wins.
    pub fn select(&self, fingerprint: &str, at: EpochMillis) -> Result<&[u8], KeyProblem> {
        let mut candidates =
            self.keys.iter().filter(|k| k.fingerprint.eq_ignore_ascii_case(fingerprint.trim())).peekable();
        let Some(first) = candidates.peek().copied() else { return Err(KeyProblem::Unknown) };
        let covering = candidates
            .find(|k| k.valid_from.is_none_or(|from| from <= at) && k.valid_until.is_none_or(|until| at <= until));
        match covering {
            Some(k) => k.key.as_deref().ok_or(KeyProblem::Undecodable),
            None => Err(KeyProblem::NotValidAt { from: first.valid_from, until: first.valid_until }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[(&str, &str, &str)]) -> PublicKeys {
        // A real key's DER is not needed to test selection: an undecodable value is kept as such.
        let doc = serde_json::json!({"PublicKeyList": entries.iter().map(|(fp, from, until)| serde_json::json!({
            "Value": "AAAA", "Fingerprint": fp, "ValidityStartTime": from, "ValidityEndTime": until
        })).collect::<Vec<_>>()});
        PublicKeys::from_list_json(doc.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_key_is_chosen_by_fingerprint_and_validity() {
        let keys = list(&[("ab12", "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")]);
        let at = |s: &str| parse_rfc3339_millis(s).unwrap();
        assert_eq!(keys.select("AB12", at("2024-01-15T00:00:00Z")).unwrap_err(), KeyProblem::Undecodable);
        assert!(matches!(keys.select("ab12", at("2024-03-01T00:00:00Z")), Err(KeyProblem::NotValidAt { .. })));
        assert_eq!(keys.select("cd34", at("2024-01-15T00:00:00Z")).unwrap_err(), KeyProblem::Unknown);
    }

    #[test]
    fn epoch_second_times_and_bad_lists() {
        let doc = br#"{"PublicKeyList":[{"Value":"AAAA","Fingerprint":"f","ValidityStartTime":1704067200,"ValidityEndTime":1706745600.5}]}"#;
        let keys = PublicKeys::from_list_json(doc).unwrap();
        assert_eq!(keys.keys[0].valid_from, Some(1_704_067_200_000));
        assert_eq!(keys.keys[0].valid_until, Some(1_706_745_600_500));
        assert!(PublicKeys::from_list_json(b"[]").unwrap_err().contains("PublicKeyList"));
        assert!(PublicKeys::from_list_json(br#"{"PublicKeyList":[{"Fingerprint":"f"}]}"#)
            .unwrap_err()
            .contains("Value"));
        assert!(PublicKeys::from_list_json(br#"{"PublicKeyList":[{"Fingerprint":"f","Value":"%%"}]}"#)
            .unwrap_err()
            .contains("base64"));
    }
}
