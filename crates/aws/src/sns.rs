//! SNS HTTPS push: proving that a message really comes from SNS before acting on it.
//!
//! AWS's documented procedure ("Verifying the signatures of Amazon SNS messages"):
//! 1. `SigningCertURL` must be `https` on an SNS host (`sns.<region>.amazonaws.com`, or
//!    `.amazonaws.com.cn`); anything else is rejected before any request is made. The PEM
//!    certificate is fetched once per URL and cached.
//! 2. The string to sign is `Key\nValue\n` for a fixed, sorted list of keys that depends on
//!    the message type (`Subject` only when present), over the decoded JSON string values.
//! 3. `Signature` (base64) is RSA PKCS#1 v1.5 over that string with SHA-1 when
//!    `SignatureVersion` is "1" and SHA-256 when it is "2".
//!
//! `SubscribeURL` is held to the same host rule before trailwatch visits it to confirm a
//! subscription, and only topics the configuration names are confirmed.
//!
//! Before anything is fetched, the cheap checks (an unauthenticated POST must not make the
//! server fetch a certificate): the topic must be one the configuration names, the message's
//! `Timestamp` at most an hour old (SNS stops retrying by then; older is a replay), its
//! `SignatureVersion` 2 (SHA256withRSA) — or 1 (SHA1withRSA, what topics use unless set
//! otherwise) where `[sns] accept_sha1` allows it — and a real SNS certificate host must be
//! in the topic's own region.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde_json::{Map, Value};
use x509_cert::der::{DecodePem, Encode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("not an SNS message: {0}")]
    NotSns(String),
    #[error("SigningCertURL {0:?} is not https")]
    CertUrlNotHttps(String),
    #[error("{what} {url:?} is not on an SNS host (sns.<region>.amazonaws.com)")]
    NotSnsHost { what: &'static str, url: String },
    #[error("unsupported SignatureVersion {0:?} (1 = SHA1withRSA, 2 = SHA256withRSA)")]
    SignatureVersion(String),
    #[error("fetching the signing certificate {url}: {detail}")]
    CertFetch { url: String, detail: String },
    #[error("the signing certificate is not a PEM X.509 RSA certificate: {0}")]
    CertInvalid(String),
    #[error("signature does not verify: the message was altered or not signed by SNS")]
    BadSignature,
    #[error("topic {0} is not configured for this trailwatch")]
    UnknownTopic(String),
    #[error("Timestamp {0:?} is more than an hour old (or in the future): a replay, not a delivery")]
    Stale(String),
    #[error(
        "SignatureVersion 1 (SHA1withRSA) is not accepted: set the topic's SignatureVersion attribute to 2 \
         (aws sns set-topic-attributes --attribute-name SignatureVersion --attribute-value 2), or allow it with [sns] accept_sha1 = true"
    )]
    Sha1Refused,
    #[error("SigningCertURL {url:?} is not in the topic's region {region}")]
    CertRegion { url: String, region: String },
    #[error("confirming the subscription at {url}: {detail}")]
    Confirm { url: String, detail: String },
}

impl SnsError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            SnsError::NotSns(_) => "not_sns",
            SnsError::CertUrlNotHttps(_) => "cert_url_not_https",
            SnsError::NotSnsHost { .. } => "not_sns_host",
            SnsError::SignatureVersion(_) => "signature_version",
            SnsError::CertFetch { .. } => "cert_fetch_failed",
            SnsError::CertInvalid(_) => "cert_invalid",
            SnsError::BadSignature => "bad_signature",
            SnsError::UnknownTopic(_) => "unknown_topic",
            SnsError::Stale(_) => "stale_timestamp",
            SnsError::Sha1Refused => "sha1_refused",
            SnsError::CertRegion { .. } => "cert_region",
            SnsError::Confirm { .. } => "confirm_failed",
        }
    }
}

/// Keys of the string to sign, in order, per message type.
fn signed_keys(message_type: &str) -> Option<&'static [&'static str]> {
    match message_type {
        "Notification" => Some(&["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]),
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            Some(&["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"])
        }
        _ => None,
    }
}

/// The exact string SNS signs for `message`.
pub fn string_to_sign(message: &Map<String, Value>) -> Result<String, SnsError> {
    let message_type = message.get("Type").and_then(Value::as_str).ok_or_else(|| SnsError::NotSns("no Type".into()))?;
    let keys = signed_keys(message_type).ok_or_else(|| SnsError::NotSns(format!("unknown Type {message_type:?}")))?;
    let mut out = String::new();
    for key in keys {
        match message.get(*key) {
            Some(Value::String(v)) => {
                out.push_str(key);
                out.push('\n');
                out.push_str(v);
                out.push('\n');
            }
            None | Some(Value::Null) if *key == "Subject" => {}
            _ => return Err(SnsError::NotSns(format!("{message_type} without a string {key}"))),
        }
    }
    Ok(out)
}

/// Whether `host` is an SNS endpoint host: `sns.<region>.amazonaws.com[.cn]`.
pub fn is_sns_host(host: &str) -> bool {
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"));
    let Some(region) = rest.and_then(|r| r.strip_prefix("sns.")) else { return false };
    region.len() >= 3 && region.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `https://<host>[:port]/…` → host, or why not.
fn https_host<'u>(what: &'static str, url: &'u str, allowed_test_hosts: &[String]) -> Result<&'u str, SnsError> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(if what == "SigningCertURL" {
            SnsError::CertUrlNotHttps(url.to_owned())
        } else {
            SnsError::NotSnsHost { what, url: url.to_owned() }
        });
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(SnsError::NotSnsHost { what, url: url.to_owned() });
    }
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if is_sns_host(host) || allowed_test_hosts.iter().any(|h| h == host) {
        Ok(host)
    } else {
        Err(SnsError::NotSnsHost { what, url: url.to_owned() })
    }
}

/// Verifies SNS messages, caching signing certificates by URL.
pub struct SnsVerifier {
    http: reqwest::Client,
    certs: Mutex<HashMap<String, RsaPublicKey>>,
    /// Hosts accepted besides SNS's own. For tests only (a local HTTPS server).
    test_hosts: Vec<String>,
    policy: SnsPolicy,
}

/// What pushed messages must satisfy besides a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsPolicy {
    /// Accept SignatureVersion 1 (SHA1withRSA).
    pub accept_sha1: bool,
    /// The oldest a message's `Timestamp` may be.
    pub max_age: Duration,
}

impl Default for SnsPolicy {
    fn default() -> Self {
        SnsPolicy { accept_sha1: false, max_age: Duration::from_secs(3600) }
    }
}

/// How far in the future a `Timestamp` may be (clocks differ a little).
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Most certificates kept (SNS rotates them rarely; a flood of URLs must not grow memory).
const CERT_CACHE: usize = 64;

impl SnsVerifier {
    /// `extra_ca_pem` and `test_hosts` exist for tests against a local HTTPS server.
    pub fn new(test_hosts: Vec<String>, extra_ca_pem: Option<&[u8]>) -> Result<SnsVerifier, SnsError> {
        let mut builder =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = extra_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| SnsError::CertInvalid(e.to_string()))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| SnsError::CertInvalid(e.to_string()))?;
        Ok(SnsVerifier { http, certs: Mutex::new(HashMap::new()), test_hosts, policy: SnsPolicy::default() })
    }

    pub fn with_policy(mut self, policy: SnsPolicy) -> SnsVerifier {
        self.policy = policy;
        self
    }

    /// Checks `body` is a genuine SNS message for a topic `known` accepts, delivered within
    /// the policy's age at `now_ms`; returns its JSON fields. Everything that needs no
    /// request is checked before the signing certificate is fetched.
    pub async fn verify(
        &self,
        body: &str,
        known: impl Fn(&str) -> bool,
        now_ms: i64,
    ) -> Result<Map<String, Value>, SnsError> {
        let message: Map<String, Value> =
            serde_json::from_str(body).map_err(|e| SnsError::NotSns(format!("not a JSON object: {e}")))?;
        let field = |k: &str| message.get(k).and_then(Value::as_str).ok_or_else(|| SnsError::NotSns(format!("no {k}")));
        let version = field("SignatureVersion")?;
        let cert_url = field("SigningCertURL")?;
        let topic = field("TopicArn")?;
        if !known(topic) {
            return Err(SnsError::UnknownTopic(topic.to_owned()));
        }
        let timestamp = field("Timestamp")?;
        let age = model::timefmt::parse_rfc3339_millis(timestamp).map(|t| now_ms - t);
        let fresh =
            age.is_some_and(|a| a <= self.policy.max_age.as_millis() as i64 && a >= -(CLOCK_SKEW.as_millis() as i64));
        if !fresh {
            return Err(SnsError::Stale(timestamp.to_owned()));
        }
        match version {
            "2" => {}
            "1" if self.policy.accept_sha1 => {}
            "1" => return Err(SnsError::Sha1Refused),
            other => return Err(SnsError::SignatureVersion(other.to_owned())),
        }
        let host = https_host("SigningCertURL", cert_url, &self.test_hosts)?;
        // A real SNS host serves the certificates of its own region's topics.
        if is_sns_host(host) {
            let topic_region = topic.split(':').nth(3).unwrap_or_default();
            let host_region = host.trim_start_matches("sns.").split('.').next().unwrap_or_default();
            if topic_region != host_region {
                return Err(SnsError::CertRegion { url: cert_url.to_owned(), region: topic_region.to_owned() });
            }
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(field("Signature")?)
            .map_err(|_| SnsError::BadSignature)?;
        let signature = Signature::try_from(signature.as_slice()).map_err(|_| SnsError::BadSignature)?;
        let signed = string_to_sign(&message)?;
        let key = self.certificate(cert_url).await?;
        let ok = match version {
            "1" => VerifyingKey::<sha1::Sha1>::new(key).verify(signed.as_bytes(), &signature).is_ok(),
            _ => VerifyingKey::<sha2::Sha256>::new(key).verify(signed.as_bytes(), &signature).is_ok(),
        };
        if ok {
            Ok(message)
        } else {
            Err(SnsError::BadSignature)
        }
    }

    async fn certificate(&self, url: &str) -> Result<RsaPublicKey, SnsError> {
        if let Some(k) = self.certs.lock().unwrap_or_else(|p| p.into_inner()).get(url) {
            return Ok(k.clone());
        }
        let fetch_error = |detail: String| SnsError::CertFetch { url: url.to_owned(), detail };
        let resp = self.http.get(url).send().await.map_err(|e| fetch_error(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(fetch_error(format!("HTTP {}", resp.status())));
        }
        let pem = resp.bytes().await.map_err(|e| fetch_error(e.to_string()))?;
        let key = public_key_from_pem(&pem)?;
        let mut certs = self.certs.lock().unwrap_or_else(|p| p.into_inner());
        if certs.len() >= CERT_CACHE {
            certs.clear();
        }
        certs.insert(url.to_owned(), key.clone());
        Ok(key)
    }

    /// Visits a verified SubscriptionConfirmation's `SubscribeURL` (after the host check).
    pub async fn confirm_subscription(&self, message: &Map<String, Value>) -> Result<(), SnsError> {
        let url = message
            .get("SubscribeURL")
            .and_then(Value::as_str)
            .ok_or_else(|| SnsError::NotSns("SubscriptionConfirmation without SubscribeURL".into()))?;
        https_host("SubscribeURL", url, &self.test_hosts)?;
        let confirm_error = |detail: String| SnsError::Confirm { url: url.to_owned(), detail };
        let resp = self.http.get(url).send().await.map_err(|e| confirm_error(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(confirm_error(format!("HTTP {}", resp.status())));
        }
        Ok(())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The RSA public key of a PEM X.509 certificate.
pub fn public_key_from_pem(pem: &[u8]) -> Result<RsaPublicKey, SnsError> {
    let cert = x509_cert::Certificate::from_pem(pem).map_err(|e| SnsError::CertInvalid(e.to_string()))?;
    let spki =
        cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| SnsError::CertInvalid(e.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| SnsError::CertInvalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sns_hosts() {
        for ok in ["sns.us-east-1.amazonaws.com", "sns.cn-north-1.amazonaws.com.cn", "sns.eu-west-3.amazonaws.com"] {
            assert!(is_sns_host(ok), "{ok}");
        }
        for bad in [
            "sns.amazonaws.com",
            "evil.com",
            "sns.us-east-1.amazonaws.com.evil.com",
            "sns.us_east_1.amazonaws.com",
            "xsns.us-east-1.amazonaws.com",
            "sns.a.amazonaws.com",
        ] {
            assert!(!is_sns_host(bad), "{bad}");
        }
        assert!(https_host("SigningCertURL", "https://sns.us-east-1.amazonaws.com/x.pem", &[]).is_ok());
        assert!(https_host("SigningCertURL", "https://sns.us-east-1.amazonaws.com:443/x.pem", &[]).is_ok());
        let err = |u: &str| https_host("SigningCertURL", u, &[]).unwrap_err().reason_code();
        assert_eq!(err("http://sns.us-east-1.amazonaws.com/x.pem"), "cert_url_not_https");
        assert_eq!(err("https://sns.us-east-1.amazonaws.com@evil.com/x.pem"), "not_sns_host");
        assert_eq!(err("https://evil.com/sns.us-east-1.amazonaws.com/x.pem"), "not_sns_host");
        assert!(https_host("SigningCertURL", "https://localhost:8443/c.pem", &["localhost".into()]).is_ok());
    }

    /// An unauthenticated POST makes no request unless the cheap checks pass: each message
    /// below would need a certificate fetch (from a host that does not answer here) and is
    /// refused for its own reason first.
    #[tokio::test]
    async fn cheap_checks_come_before_any_certificate_fetch() {
        let v = SnsVerifier::new(Vec::new(), None).unwrap();
        let now = model::timefmt::parse_rfc3339_millis("2026-12-05T10:00:00Z").unwrap();
        let topic = "arn:aws:sns:us-east-1:111122223333:trail";
        let message = |topic: &str, ts: &str, version: &str, cert: &str| {
            serde_json::json!({"Type": "Notification", "MessageId": "m", "TopicArn": topic, "Message": "{}",
                "Timestamp": ts, "SignatureVersion": version, "Signature": "AAAA", "SigningCertURL": cert})
            .to_string()
        };
        let known = |t: &str| t == topic;
        let cert = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem";
        let code = |r: Result<Map<String, Value>, SnsError>| r.unwrap_err().reason_code();
        let other = "arn:aws:sns:us-east-1:111122223333:other";
        assert_eq!(
            code(v.verify(&message(other, "2026-12-05T09:59:00Z", "2", cert), known, now).await),
            "unknown_topic"
        );
        assert_eq!(
            code(v.verify(&message(topic, "2026-12-05T08:59:00Z", "2", cert), known, now).await),
            "stale_timestamp"
        );
        assert_eq!(
            code(v.verify(&message(topic, "2026-12-05T10:30:00Z", "2", cert), known, now).await),
            "stale_timestamp"
        );
        assert_eq!(code(v.verify(&message(topic, "not a time", "2", cert), known, now).await), "stale_timestamp");
        assert_eq!(
            code(v.verify(&message(topic, "2026-12-05T09:59:00Z", "1", cert), known, now).await),
            "sha1_refused"
        );
        let elsewhere = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem";
        assert_eq!(
            code(v.verify(&message(topic, "2026-12-05T09:59:00Z", "2", elsewhere), known, now).await),
            "cert_region"
        );
        // Past the cheap checks, the fetch is tried: a local port nobody listens on stands in
        // for SNS (no request leaves this machine).
        let local = SnsVerifier::new(vec!["127.0.0.1".into()], None).unwrap();
        let nobody = "https://127.0.0.1:9/cert.pem";
        let fetched = local.verify(&message(topic, "2026-12-05T09:59:00Z", "2", nobody), known, now).await;
        assert_eq!(code(fetched), "cert_fetch_failed");
        // With SHA1 allowed, version 1 goes on to the fetch too.
        let sha1 = SnsVerifier::new(vec!["127.0.0.1".into()], None)
            .unwrap()
            .with_policy(SnsPolicy { accept_sha1: true, ..SnsPolicy::default() });
        let r = sha1.verify(&message(topic, "2026-12-05T09:59:00Z", "1", nobody), known, now).await;
        assert_eq!(code(r), "cert_fetch_failed");
    }

    #[test]
    fn string_to_sign_follows_the_documented_layout() {
        let n: Map<String, Value> = serde_json::from_str(
            r#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"{\"a\":1}\nline","Timestamp":"ts",
                "SignatureVersion":"1","Signature":"x","SigningCertURL":"u","UnsubscribeURL":"un"}"#,
        )
        .unwrap();
        assert_eq!(
            string_to_sign(&n).unwrap(),
            "Message\n{\"a\":1}\nline\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
        );
        let mut with_subject = n.clone();
        with_subject.insert("Subject".into(), Value::String("s".into()));
        assert!(string_to_sign(&with_subject).unwrap().contains("MessageId\nm\nSubject\ns\nTimestamp\n"));
        let c: Map<String, Value> = serde_json::from_str(
            r#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"tok","TopicArn":"t","Message":"msg",
                "SubscribeURL":"https://x","Timestamp":"ts"}"#,
        )
        .unwrap();
        assert_eq!(
            string_to_sign(&c).unwrap(),
            "Message\nmsg\nMessageId\nm\nSubscribeURL\nhttps://x\nTimestamp\nts\nToken\ntok\nTopicArn\nt\nType\nSubscriptionConfirmation\n"
        );
        let mut missing = c.clone();
        missing.remove("Token");
        assert_eq!(string_to_sign(&missing).unwrap_err().reason_code(), "not_sns");
    }
}
