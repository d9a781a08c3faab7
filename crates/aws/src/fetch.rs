//! Reading objects from S3, with the errors told apart: an object that is gone or that the
//! role may not read is a finding (someone may have deleted or locked a log file); anything
//! else is transient and the message will be tried again.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("s3://{bucket}/{key} does not exist (404 {code})")]
    Missing { bucket: String, key: String, code: String },
    #[error("s3://{bucket}/{key}: access denied (403 {code}); check the role's permission policy and the bucket/KMS key policies")]
    Denied { bucket: String, key: String, code: String },
    /// The object is encrypted with a KMS key (SSE-KMS) the role may not use: S3 answers the
    /// GET with KMS's refusal.
    #[error(
        "s3://{bucket}/{key} is encrypted with the KMS key {} and the role may not decrypt it ({code}: {message}); \
         allow kms:Decrypt on that key in the role's policy (`trailwatch setup --kms-key-arn ARN` prints it) \
         and let the role use the key in the key's policy",
        kms_key.as_deref().unwrap_or("(not named in the error)")
    )]
    KmsDenied { bucket: String, key: String, code: String, message: String, kms_key: Option<String> },
    #[error("s3://{bucket}/{key}: {detail}")]
    Transient { bucket: String, key: String, detail: String },
}

impl FetchError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            FetchError::Missing { .. } => "object_missing",
            FetchError::Denied { .. } => "object_access_denied",
            FetchError::KmsDenied { .. } => "object_kms_denied",
            FetchError::Transient { .. } => "fetch_failed",
        }
    }

    /// A finding worth an alert (not a hiccup of the network).
    pub fn is_finding(&self) -> bool {
        !matches!(self, FetchError::Transient { .. })
    }
}

/// How often a 404 is retried: CloudTrail's notification can arrive a moment before the
/// object is readable everywhere.
const MISSING_RETRIES: u32 = 2;
const MISSING_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Reads a whole object (CloudTrail files are a few MB at most; the pipeline bounds how
/// many are in memory at once through the fetch concurrency).
pub async fn get_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, FetchError> {
    let mut attempt = 0;
    loop {
        match get_once(s3, bucket, key).await {
            Err(FetchError::Missing { .. }) if attempt < MISSING_RETRIES => {
                attempt += 1;
                tokio::time::sleep(MISSING_RETRY_DELAY * attempt).await;
            }
            other => return other,
        }
    }
}

async fn get_once(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, FetchError> {
    get_with_metadata(s3, bucket, key).await.map(|(bytes, _)| bytes)
}

/// One GET: the object and its user metadata (`x-amz-meta-*`, names without the prefix).
pub async fn get_with_metadata(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<(Vec<u8>, std::collections::HashMap<String, String>), FetchError> {
    let out = s3.get_object().bucket(bucket).key(key).send().await.map_err(|e| classify(bucket, key, e))?;
    let metadata = out.metadata().cloned().unwrap_or_default();
    let body = out.body.collect().await.map_err(|e| FetchError::Transient {
        bucket: bucket.into(),
        key: key.into(),
        detail: format!("reading the body failed: {e}"),
    })?;
    Ok((body.into_bytes().to_vec(), metadata))
}

/// Sorts an SDK error into missing / denied / transient by HTTP status and error code.
pub fn classify<E>(bucket: &str, key: &str, e: SdkError<E, HttpResponse>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().unwrap_or_default().to_owned();
    let message = e.message().unwrap_or_default().to_owned();
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    if is_kms_refusal(&code, &message) {
        let kms_key = kms_key_in(&message);
        return FetchError::KmsDenied { bucket, key, code, message, kms_key };
    }
    match (status, code.as_str()) {
        (Some(404), _) | (_, "NoSuchKey" | "NotFound" | "NoSuchBucket") => FetchError::Missing { bucket, key, code },
        (Some(403), _) | (_, "AccessDenied" | "AllAccessDisabled") => FetchError::Denied { bucket, key, code },
        _ => FetchError::Transient { bucket, key, detail: DisplayErrorContext(&e).to_string() },
    }
}

/// S3 passes KMS's refusals on: `KMS.DisabledException`, `KMS.NotFoundException`, … as the
/// code, or `AccessDenied` whose message names `kms:Decrypt` (no permission on the key).
pub fn is_kms_refusal(code: &str, message: &str) -> bool {
    code.starts_with("KMS.") || message.contains("kms:Decrypt") || message.contains("KMS key")
}

/// The first KMS key ARN a message names (any partition: `arn:aws:kms:…`,
/// `arn:aws-us-gov:kms:…`), skipping the other ARNs it mentions (the caller's role).
pub fn kms_key_in(message: &str) -> Option<String> {
    let mut rest = message;
    while let Some(start) = rest.find("arn:") {
        let arn: String = rest[start..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | '"' | ')' | '<'))
            .collect();
        let arn = arn.trim_end_matches('.');
        if arn.split(':').nth(2) == Some("kms") {
            return Some(arn.to_string());
        }
        rest = &rest[start + 4..];
    }
    None
}

#[cfg(test)]
mod kms_tests {
    use super::*;

    #[test]
    fn kms_refusals_are_told_apart_and_name_the_key() {
        let m = "User: arn:aws:sts::111122223333:assumed-role/trailwatch-read/s is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Decrypt action";
        assert!(is_kms_refusal("AccessDenied", m));
        assert_eq!(
            kms_key_in(m).as_deref(),
            Some("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab")
        );
        assert!(is_kms_refusal("KMS.DisabledException", "arn:aws:kms:eu-west-1:1:key/k is disabled."));
        assert_eq!(
            kms_key_in("arn:aws:kms:eu-west-1:1:key/k is disabled.").as_deref(),
            Some("arn:aws:kms:eu-west-1:1:key/k")
        );
        assert!(!is_kms_refusal("AccessDenied", "Access Denied"));
        assert_eq!(kms_key_in("User: arn:aws:iam::1:user/x is not authorized"), None);
        assert_eq!(
            kms_key_in("on resource: arn:aws-us-gov:kms:us-gov-west-1:1:key/k, because").as_deref(),
            Some("arn:aws-us-gov:kms:us-gov-west-1:1:key/k")
        );
    }
}

/// A listing that failed (it says which bucket and prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("listing s3://{bucket}/{prefix} failed: {detail}")]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    pub detail: String,
}

/// Every key under `prefix` (every page) and, with `delimiter`, the common prefixes one
/// level down (`…/` "directories").
pub async fn list_all(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimiter: bool,
) -> Result<(Vec<String>, Vec<String>), ListError> {
    let mut keys = Vec::new();
    let mut common = Vec::new();
    let mut req = s3.list_objects_v2().bucket(bucket).prefix(prefix);
    if delimiter {
        req = req.delimiter("/");
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, prefix, e))?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        common.extend(page.common_prefixes().iter().filter_map(|c| c.prefix().map(str::to_owned)));
    }
    Ok((keys, common))
}

pub fn list_error<E: std::error::Error + 'static>(
    bucket: &str,
    prefix: &str,
    e: SdkError<E, HttpResponse>,
) -> ListError {
    ListError { bucket: bucket.into(), prefix: prefix.into(), detail: DisplayErrorContext(&e).to_string() }
}
