//! Monitored accounts and the AWS clients that read them.
//!
//! trailwatch's own identity comes from the standard credential chain (environment,
//! profiles, instance or container roles). For an account with a `role_arn`, trailwatch
//! assumes that role with the account's external ID; the SDK's identity cache keeps the
//! session credentials and refreshes them before they expire.

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::error::DisplayErrorContext;
use model::TrailKey;

/// How to reach AWS (or an AWS-compatible server).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Any AWS-compatible endpoint; `AWS_ENDPOINT_URL` works too.
    pub endpoint_url: Option<String>,
    /// Path-style S3 addressing (needed by most AWS-compatible servers).
    pub force_path_style: bool,
}

/// One monitored account, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSpec {
    pub name: String,
    pub account_id: String,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub regions: Vec<String>,
    pub bucket: Option<String>,
    pub queue_url: Option<String>,
    /// Set for an organization trail: its keys carry `o-…/` before the account id.
    pub organization_id: Option<String>,
    /// The trail's S3 key prefix, if it has one.
    pub prefix: Option<String>,
    /// The trail's SNS topic: SNS HTTPS push messages of this topic belong to this account,
    /// and only configured topics' subscriptions are confirmed.
    pub topic_arn: Option<String>,
}

impl AccountSpec {
    /// The region in an SQS queue URL (`https://sqs.<region>.amazonaws.com/…` or the legacy
    /// `https://<region>.queue.amazonaws.com/…`); `None` for other endpoints.
    pub fn queue_region(&self) -> Option<String> {
        queue_url_region(self.queue_url.as_deref()?)
    }

    /// The region the account's clients use: the first configured region, else the
    /// queue's, else us-east-1.
    pub fn home_region(&self) -> String {
        self.regions.first().cloned().or_else(|| self.queue_region()).unwrap_or_else(|| "us-east-1".into())
    }

    /// Whether a CloudTrail key belongs to this account's trail: the account's own logs, or
    /// (organization trail) any member account's logs under the configured organization.
    pub fn owns(&self, key: &TrailKey) -> bool {
        key.account_id == self.account_id
            || (self.organization_id.is_some() && key.org_id.as_deref() == self.organization_id.as_deref())
    }
}

/// The region in an SQS queue URL's host, if it names one.
pub fn queue_url_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut parts = host.split('.');
    match (parts.next()?, parts.next()?) {
        ("sqs", region) => Some(region.to_owned()),
        (region, "queue") => Some(region.to_owned()),
        _ => None,
    }
}

/// The clients of one account, authenticated as the account's role.
#[derive(Clone)]
pub struct AccountClients {
    pub spec: AccountSpec,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub config: SdkConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("assuming role {role} (external id {external_id}) failed: {detail}")]
    AssumeRole { role: String, external_id: String, detail: String },
    #[error("trailwatch has no AWS credentials of its own: {0}")]
    NoCredentials(String),
}

impl AccountError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            AccountError::AssumeRole { .. } => "assume_role_failed",
            AccountError::NoCredentials(_) => "no_credentials",
        }
    }
}

/// trailwatch's own configuration: the standard chain, plus the configured endpoint.
pub async fn base_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// The ARN trailwatch's own credentials belong to.
pub async fn caller_arn(base: &SdkConfig) -> Result<String, AccountError> {
    let id = aws_sdk_sts::Client::new(base)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AccountError::NoCredentials(DisplayErrorContext(&e).to_string()))?;
    Ok(id.arn.unwrap_or_default())
}

/// Authenticates as the account (assuming its role now, so a bad role is reported at once)
/// and builds its clients.
pub async fn connect(
    base: &SdkConfig,
    settings: &AwsSettings,
    spec: &AccountSpec,
) -> Result<AccountClients, AccountError> {
    let region = Region::new(spec.home_region());
    let mut builder = base.to_builder().region(region.clone());
    match &spec.role_arn {
        Some(role) => {
            let mut provider =
                AssumeRoleProvider::builder(role).session_name("trailwatch").region(region.clone()).configure(base);
            if let Some(id) = &spec.external_id {
                provider = provider.external_id(id);
            }
            let provider = provider.build().await;
            provider.provide_credentials().await.map_err(|e| AccountError::AssumeRole {
                role: role.clone(),
                external_id: spec.external_id.clone().unwrap_or_else(|| "none".into()),
                detail: DisplayErrorContext(&e).to_string(),
            })?;
            builder = builder.credentials_provider(SharedCredentialsProvider::new(provider));
        }
        None => {
            let provider = base
                .credentials_provider()
                .ok_or_else(|| AccountError::NoCredentials("no credential provider is configured".into()))?;
            provider
                .provide_credentials()
                .await
                .map_err(|e| AccountError::NoCredentials(DisplayErrorContext(&e).to_string()))?;
        }
    }
    let config = builder.build();
    let s3_config = aws_sdk_s3::config::Builder::from(&config).force_path_style(settings.force_path_style).build();
    let mut sqs_config = aws_sdk_sqs::config::Builder::from(&config);
    if let Some(r) = spec.queue_region() {
        sqs_config = sqs_config.region(Region::new(r));
    }
    Ok(AccountClients {
        spec: spec.clone(),
        s3: aws_sdk_s3::Client::from_conf(s3_config),
        sqs: aws_sdk_sqs::Client::from_conf(sqs_config.build()),
        config,
    })
}

/// `arn:aws:sts::1:assumed-role/Name/session` → `arn:aws:iam::1:role/Name`; others unchanged.
pub fn role_of_session(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[2] == "sts" {
        if let Some(rest) = parts[5].strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or(rest);
            return format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]);
        }
    }
    arn.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_become_roles() {
        assert_eq!(
            role_of_session("arn:aws:sts::444455556666:assumed-role/trailwatch/i-0abc"),
            "arn:aws:iam::444455556666:role/trailwatch"
        );
        assert_eq!(role_of_session("arn:aws:iam::444455556666:user/tw"), "arn:aws:iam::444455556666:user/tw");
    }

    #[test]
    fn queue_regions() {
        let spec = |url: &str| AccountSpec { queue_url: Some(url.into()), ..Default::default() };
        assert_eq!(
            spec("https://sqs.eu-west-1.amazonaws.com/444455556666/q").queue_region().as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(spec("https://ap-south-1.queue.amazonaws.com/4/q").queue_region().as_deref(), Some("ap-south-1"));
        assert_eq!(spec("http://127.0.0.1:5000/123456789012/q").queue_region(), None);
        assert_eq!(spec("http://127.0.0.1:5000/123456789012/q").home_region(), "us-east-1");
    }

    #[test]
    fn organization_trails_own_member_keys() {
        let key = |k: &str| TrailKey::parse(k).unwrap();
        let member = key("AWSLogs/o-abc123defg/222233334444/CloudTrail/us-east-1/2024/03/05/222233334444_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz");
        let own = key("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/05/111122223333_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz");
        let mut spec = AccountSpec { account_id: "111122223333".into(), ..Default::default() };
        assert!(spec.owns(&own));
        assert!(!spec.owns(&member));
        spec.organization_id = Some("o-abc123defg".into());
        assert!(spec.owns(&member));
        spec.organization_id = Some("o-other00000".into());
        assert!(!spec.owns(&member));
    }
}
