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
    #[error("s3://{bucket}/{key}: {detail}")]
    Transient { bucket: String, key: String, detail: String },
}

impl FetchError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            FetchError::Missing { .. } => "object_missing",
            FetchError::Denied { .. } => "object_access_denied",
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
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    match (status, code.as_str()) {
        (Some(404), _) | (_, "NoSuchKey" | "NotFound" | "NoSuchBucket") => FetchError::Missing { bucket, key, code },
        (Some(403), _) | (_, "AccessDenied" | "AllAccessDisabled") => FetchError::Denied { bucket, key, code },
        _ => FetchError::Transient { bucket, key, detail: DisplayErrorContext(&e).to_string() },
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
