//! Integrity validation against S3: the digests and logs of a trail's bucket, read through
//! the account's role, and CloudTrail's public keys from `ListPublicKeys`.
//!
//! The validator (crate `integrity`) is synchronous and reads from worker threads; the
//! [`S3Reader`] bridges to the SDK with the runtime's handle, so it must be used from outside
//! the runtime's own threads (`spawn_blocking` or a plain thread).

use aws_config::Region;
use aws_sdk_s3::error::DisplayErrorContext;
use integrity::digest::SignatureMetadata;
use integrity::keys::PublicKey;
use integrity::{FetchError as ReadError, Inventory, ObjectReader, PublicKeys};
use model::timefmt::civil;
use model::EpochMillis;
use tokio::runtime::Handle;

use crate::account::AccountClients;
use crate::fetch::{classify, FetchError};

/// Where a trail writes: bucket, key prefix, organization (for organization trails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailLocation {
    pub name: String,
    pub home_region: String,
    pub account_id: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub organization_trail: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("{0:?} is not a trail ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)")]
    BadArn(String),
    #[error("cloudtrail:{call} failed: {detail}")]
    CloudTrail { call: &'static str, detail: String },
    #[error("listing s3://{bucket}/{prefix} failed: {detail}")]
    List { bucket: String, prefix: String, detail: String },
    #[error(transparent)]
    Validate(#[from] integrity::ValidateError),
}

/// (region, account, name) of `arn:<partition>:cloudtrail:<region>:<account>:trail/<name>`.
pub fn parse_trail_arn(arn: &str) -> Result<(String, String, String), IntegrityError> {
    let bad = || IntegrityError::BadArn(arn.to_string());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "cloudtrail" {
        return Err(bad());
    }
    let name = parts[5].strip_prefix("trail/").filter(|n| !n.is_empty()).ok_or_else(bad)?;
    if !model::key::is_region(parts[3]) || !model::key::is_account_id(parts[4]) {
        return Err(bad());
    }
    Ok((parts[3].to_string(), parts[4].to_string(), name.to_string()))
}

/// Looks the trail up (GetTrail in its home region) for its bucket and prefix.
pub async fn locate_trail(clients: &AccountClients, arn: &str) -> Result<TrailLocation, IntegrityError> {
    let (region, account, name) = parse_trail_arn(arn)?;
    let cloudtrail = cloudtrail_in(clients, &region);
    let out =
        cloudtrail.get_trail().name(arn).send().await.map_err(|e| IntegrityError::CloudTrail {
            call: "GetTrail",
            detail: DisplayErrorContext(&e).to_string(),
        })?;
    let trail =
        out.trail().ok_or(IntegrityError::CloudTrail { call: "GetTrail", detail: "no trail in the answer".into() })?;
    Ok(TrailLocation {
        name,
        home_region: trail.home_region().unwrap_or(&region).to_string(),
        account_id: account,
        bucket: trail
            .s3_bucket_name()
            .ok_or(IntegrityError::CloudTrail { call: "GetTrail", detail: "the trail has no S3 bucket".into() })?
            .to_string(),
        prefix: trail.s3_key_prefix().map(str::to_string).filter(|p| !p.is_empty()),
        organization_trail: trail.is_organization_trail().unwrap_or(false),
    })
}

fn cloudtrail_in(clients: &AccountClients, region: &str) -> aws_sdk_cloudtrail::Client {
    let config =
        aws_sdk_cloudtrail::config::Builder::from(&clients.config).region(Region::new(region.to_string())).build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

/// CloudTrail's public keys valid in the window, from every region given (CloudTrail signs
/// with a key pair per region).
pub async fn public_keys(
    clients: &AccountClients,
    regions: &[String],
    start: EpochMillis,
    end: EpochMillis,
) -> Result<PublicKeys, IntegrityError> {
    let mut keys = Vec::new();
    for region in regions {
        let cloudtrail = cloudtrail_in(clients, region);
        let mut token: Option<String> = None;
        loop {
            let out = cloudtrail
                .list_public_keys()
                .start_time(aws_smithy_types::DateTime::from_millis(start))
                .end_time(aws_smithy_types::DateTime::from_millis(end))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| IntegrityError::CloudTrail {
                    call: "ListPublicKeys",
                    detail: DisplayErrorContext(&e).to_string(),
                })?;
            for k in out.public_key_list() {
                let millis = |t: Option<&aws_smithy_types::DateTime>| t.and_then(|t| t.to_millis().ok());
                keys.push(PublicKey {
                    fingerprint: k.fingerprint().unwrap_or_default().to_string(),
                    key: k.value().and_then(|v| integrity::digest::public_key_from_der(v.as_ref())),
                    valid_from: millis(k.validity_start_time()),
                    valid_until: millis(k.validity_end_time()),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(PublicKeys::new(keys))
}

/// The trail's log and digest keys for the window: per account (an organization trail's
/// members are found by listing) and region, each day directory from a day before `start`
/// to a day after `end` (digests of the window's last hour come after it).
pub async fn inventory(
    clients: &AccountClients,
    trail: &TrailLocation,
    start: EpochMillis,
    end: EpochMillis,
) -> Result<(Inventory, Vec<String>), IntegrityError> {
    let s3 = &clients.s3;
    let bucket = &trail.bucket;
    let root = match &trail.prefix {
        Some(p) => format!("{}/AWSLogs/", p.trim_end_matches('/')),
        None => "AWSLogs/".to_string(),
    };
    let mut account_roots = Vec::new();
    if trail.organization_trail {
        for org in list(s3, bucket, &root, true).await?.1.into_iter().filter(|p| p[root.len()..].starts_with("o-")) {
            account_roots.extend(list(s3, bucket, &org, true).await?.1);
        }
    }
    account_roots.push(format!("{root}{}/", trail.account_id));

    let mut inventory = Inventory::default();
    let mut regions = Vec::new();
    const DAY: i64 = 86_400_000;
    for account_root in account_roots {
        for kind in ["CloudTrail", "CloudTrail-Digest"] {
            let kind_root = format!("{account_root}{kind}/");
            for region_root in list(s3, bucket, &kind_root, true).await?.1 {
                let region = region_root[kind_root.len()..].trim_end_matches('/').to_string();
                if !regions.contains(&region) {
                    regions.push(region.clone());
                }
                let mut day = start.saturating_sub(DAY);
                while day <= end.saturating_add(DAY) {
                    let Some((y, m, d, ..)) = civil(day) else { break };
                    let prefix = format!("{region_root}{y:04}/{m:02}/{d:02}/");
                    for (key, size) in list_sized(s3, bucket, &prefix).await? {
                        inventory.push(key, size);
                    }
                    day += DAY;
                }
            }
        }
    }
    inventory.objects.sort_by(|a, b| a.key.cmp(&b.key));
    regions.sort();
    Ok((inventory, regions))
}

async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    delimiter: bool,
) -> Result<(Vec<String>, Vec<String>), IntegrityError> {
    let mut keys = Vec::new();
    let mut common = Vec::new();
    let mut req = s3.list_objects_v2().bucket(bucket).prefix(prefix);
    if delimiter {
        req = req.delimiter("/");
    }
    let mut pages = req.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| IntegrityError::List {
            bucket: bucket.into(),
            prefix: prefix.into(),
            detail: DisplayErrorContext(&e).to_string(),
        })?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        common.extend(page.common_prefixes().iter().filter_map(|c| c.prefix().map(str::to_string)));
    }
    Ok((keys, common))
}

async fn list_sized(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<(String, u64)>, IntegrityError> {
    let mut out = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| IntegrityError::List {
            bucket: bucket.into(),
            prefix: prefix.into(),
            detail: DisplayErrorContext(&e).to_string(),
        })?;
        out.extend(
            page.contents().iter().filter_map(|o| Some((o.key()?.to_string(), o.size().unwrap_or(0).max(0) as u64))),
        );
    }
    Ok(out)
}

/// Reads objects from S3 for the validator's worker threads.
pub struct S3Reader {
    s3: aws_sdk_s3::Client,
    bucket: String,
    handle: Handle,
}

impl S3Reader {
    pub fn new(clients: &AccountClients, bucket: &str, handle: Handle) -> S3Reader {
        S3Reader { s3: clients.s3.clone(), bucket: bucket.to_string(), handle }
    }
}

fn read_error(e: FetchError) -> ReadError {
    match e {
        FetchError::Missing { .. } => ReadError::NotFound,
        other => ReadError::Other(other.to_string()),
    }
}

impl ObjectReader for S3Reader {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ReadError> {
        self.handle.block_on(async {
            let out = self
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| read_error(classify(bucket, key, e)))?;
            let body = out.body.collect().await.map_err(|e| ReadError::Other(format!("s3://{bucket}/{key}: {e}")))?;
            Ok(body.into_bytes().to_vec())
        })
    }

    fn get_digest(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, SignatureMetadata), ReadError> {
        self.handle.block_on(async {
            let out = self
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| read_error(classify(bucket, key, e)))?;
            let metadata = out
                .metadata()
                .map(|m| SignatureMetadata {
                    signature: m.get("signature").cloned(),
                    algorithm: m.get("signature-algorithm").cloned(),
                })
                .unwrap_or_default();
            let body = out.body.collect().await.map_err(|e| ReadError::Other(format!("s3://{bucket}/{key}: {e}")))?;
            Ok((body.into_bytes().to_vec(), metadata))
        })
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_arns() {
        assert_eq!(
            parse_trail_arn("arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail").unwrap(),
            ("eu-west-1".into(), "111122223333".into(), "org-trail".into())
        );
        for bad in [
            "arn:aws:cloudtrail:eu-west-1:111122223333:trail/",
            "arn:aws:s3:::bucket",
            "arn:aws:cloudtrail:eu-west-1:1111:trail/x",
            "trail/x",
        ] {
            assert!(parse_trail_arn(bad).is_err(), "{bad}");
        }
    }
}
