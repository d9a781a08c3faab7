//! `doctor`: walk one account's integration end to end and say exactly what is wrong.
//!
//! The checks run in the order data flows — trailwatch's own credentials, the role, the trail
//! (exists, logging, validation, SNS topic), the queue (reachable, subscribed to the topic),
//! and a recent log object (readable) — and each failed line carries the fix. A check that
//! needs an earlier one that failed is skipped rather than reported as a second failure.

use aws_config::SdkConfig;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use model::timefmt::civil;

use crate::account::{self, AccountSpec, AwsSettings};
use crate::setup::queue_arn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    Pass,
    /// Works, but is not what it should be (no DLQ, no recent object).
    Warn,
    Fail,
    /// Not run: an earlier check it depends on failed, or it does not apply.
    Skip,
}

impl CheckState {
    pub fn label(self) -> &'static str {
        match self {
            CheckState::Pass => "ok",
            CheckState::Warn => "warn",
            CheckState::Fail => "FAIL",
            CheckState::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub state: CheckState,
    pub detail: String,
    /// What to do about it (failed and warned checks).
    pub fix: Option<String>,
}

fn check(name: &'static str, state: CheckState, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check { name, state, detail: detail.into(), fix }
}

fn err(e: impl std::error::Error) -> String {
    DisplayErrorContext(e).to_string()
}

/// Runs every check for each account, one after the other (`doctor` and the dashboard's
/// accounts page).
pub async fn doctor_all(settings: &AwsSettings, accounts: &[AccountSpec], now: i64) -> Vec<(AccountSpec, Vec<Check>)> {
    let base = crate::account::base_config(settings).await;
    let mut results = Vec::with_capacity(accounts.len());
    for spec in accounts {
        results.push((spec.clone(), doctor(&base, settings, spec, now).await));
    }
    results
}

/// Runs every check for `spec`; `now` picks the day prefixes searched for a recent object.
pub async fn doctor(base: &SdkConfig, settings: &AwsSettings, spec: &AccountSpec, now: i64) -> Vec<Check> {
    let mut out = Vec::new();
    let setup_hint = format!(
        "`trailwatch setup --config FILE --account {}` prints the policies and a CloudFormation template",
        spec.name
    );

    // 1. Who trailwatch is.
    let sts = aws_sdk_sts::Client::new(base);
    let caller = match sts.get_caller_identity().send().await {
        Ok(id) => {
            let arn = id.arn.unwrap_or_default();
            out.push(check("trailwatch's own credentials", CheckState::Pass, arn.clone(), None));
            Some(arn)
        }
        Err(e) => {
            out.push(check(
                "trailwatch's own credentials",
                CheckState::Fail,
                err(e),
                Some("give trailwatch AWS credentials: environment variables, a profile (AWS_PROFILE), or an instance/container role".into()),
            ));
            None
        }
    };

    // 2. The account's role.
    let clients = match account::connect(base, settings, spec).await {
        Ok(c) => {
            let detail = match &spec.role_arn {
                Some(r) => format!("assumed {r} with external id {}", spec.external_id.as_deref().unwrap_or("(none)")),
                None => "no role_arn: trailwatch's own credentials are used".into(),
            };
            out.push(check("assume the account's role", CheckState::Pass, detail, None));
            c
        }
        Err(e) => {
            // A trust policy names roles, not sessions: the caller as its role.
            let me = caller
                .as_deref()
                .map(crate::account::role_of_session)
                .unwrap_or_else(|| "trailwatch's principal".into());
            let role = spec.role_arn.as_deref().unwrap_or("the account's role");
            let fix = format!(
                "both sides must allow it: the trust policy of {role} must allow {me} to sts:AssumeRole with \
                 sts:ExternalId = {:?}, and {me}'s own policy must allow sts:AssumeRole on {role}; \
                 `trailwatch setup --config FILE --account {}` writes both (trust-policy.json, caller-policy.json)",
                spec.external_id.as_deref().unwrap_or(""),
                spec.name
            );
            out.push(check("assume the account's role", CheckState::Fail, e.to_string(), Some(fix)));
            for name in [
                "trail exists",
                "trail is logging",
                "log file validation",
                "digests delivered",
                "trail's SNS topic",
                "queue reachable",
                "queue subscribed to the topic",
                "recent log object readable",
            ] {
                out.push(check(name, CheckState::Skip, "needs the role", None));
            }
            return out;
        }
    };

    // 3–6. The trail that writes to the configured bucket.
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&clients.config);
    let trail = match cloudtrail.describe_trails().include_shadow_trails(true).send().await {
        Ok(resp) => {
            let trails = resp.trail_list.unwrap_or_default();
            let want_prefix = spec.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
            let found = trails.into_iter().find(|t| {
                spec.bucket.as_deref().is_none_or(|b| t.s3_bucket_name.as_deref() == Some(b))
                    && t.s3_key_prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) == want_prefix
            });
            match found {
                Some(t) => {
                    let name = t.trail_arn.clone().or(t.name.clone()).unwrap_or_default();
                    out.push(check(
                        "trail exists",
                        CheckState::Pass,
                        format!("{name} writes to s3://{}", t.s3_bucket_name.clone().unwrap_or_default()),
                        None,
                    ));
                    Some(t)
                }
                None => {
                    out.push(check(
                        "trail exists",
                        CheckState::Fail,
                        format!("no trail in {} writes to bucket {}", spec.home_region(), spec.bucket.as_deref().unwrap_or("(bucket not configured)")),
                        Some(format!("create a trail with log file validation and an SNS topic that writes to this bucket; {setup_hint}")),
                    ));
                    None
                }
            }
        }
        Err(e) => {
            out.push(check(
                "trail exists",
                CheckState::Fail,
                err(e),
                Some("the role needs cloudtrail:DescribeTrails".into()),
            ));
            None
        }
    };
    let mut topic = spec.topic_arn.clone();
    match &trail {
        None => {
            for name in ["trail is logging", "log file validation", "digests delivered", "trail's SNS topic"] {
                out.push(check(name, CheckState::Skip, "needs the trail", None));
            }
        }
        Some(t) => {
            let name = t.trail_arn.clone().or(t.name.clone()).unwrap_or_default();
            // Changes to a trail are made in its home region.
            let home = t.home_region.clone().unwrap_or_else(|| spec.home_region());
            match cloudtrail.get_trail_status().name(&name).send().await {
                Ok(s) if s.is_logging == Some(true) => out.push(check("trail is logging", CheckState::Pass, "logging", None)),
                Ok(_) => out.push(check(
                    "trail is logging",
                    CheckState::Fail,
                    "logging is stopped: no API call is being recorded",
                    Some(format!("aws cloudtrail start-logging --name {name} --region {home}  (and find out who stopped it: trailwatch search --event-name StopLogging)")),
                )),
                Err(e) => out.push(check("trail is logging", CheckState::Fail, err(e), Some("the role needs cloudtrail:GetTrailStatus".into()))),
            }
            if t.log_file_validation_enabled == Some(true) {
                out.push(check("log file validation", CheckState::Pass, "enabled on the trail", None));
                out.push(recent_digest(&clients, spec, now).await);
            } else {
                out.push(check(
                    "log file validation",
                    CheckState::Fail,
                    "disabled: tampering with log files cannot be proven",
                    Some(format!(
                        "aws cloudtrail update-trail --name {name} --region {home} --enable-log-file-validation"
                    )),
                ));
                out.push(check("digests delivered", CheckState::Skip, "log file validation is off", None));
            }
            match (&t.sns_topic_arn, &spec.topic_arn) {
                (None, _) => out.push(check(
                    "trail's SNS topic",
                    CheckState::Fail,
                    "the trail announces no deliveries",
                    Some(format!("aws cloudtrail update-trail --name {name} --region {home} --sns-topic-name <topic>  (the topic policy must let cloudtrail.amazonaws.com publish)")),
                )),
                (Some(actual), Some(configured)) if actual != configured => out.push(check(
                    "trail's SNS topic",
                    CheckState::Fail,
                    format!("the trail publishes to {actual}, the configuration says {configured}"),
                    Some("set accounts.topic_arn to the trail's topic (or point the trail at the configured one)".into()),
                )),
                (Some(actual), _) => {
                    topic = Some(actual.clone());
                    out.push(check("trail's SNS topic", CheckState::Pass, actual.clone(), None));
                }
            }
            match &t.kms_key_id {
                Some(key) => out.push(check(
                    "log file encryption",
                    CheckState::Pass,
                    format!(
                        "SSE-KMS with {key}: the role needs kms:Decrypt on this key (checked by reading a log below)"
                    ),
                    None,
                )),
                None => out.push(check("log file encryption", CheckState::Pass, "SSE-S3 (no KMS key to allow)", None)),
            }
            out.push(event_selectors(&cloudtrail, &name, &home).await);
        }
    }

    // 7–8. The queue.
    let mut queue_arn_found = None;
    match &spec.queue_url {
        None => {
            out.push(check(
                "queue reachable",
                CheckState::Skip,
                "no queue_url configured (SNS push or backfill only)",
                None,
            ));
            out.push(check("queue subscribed to the topic", CheckState::Skip, "no queue_url configured", None));
        }
        Some(url) => {
            match clients.sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await {
                Ok(a) => {
                    let attrs = a.attributes.unwrap_or_default();
                    queue_arn_found = attrs.get(&QueueAttributeName::QueueArn).cloned().or_else(|| queue_arn(url, &spec.home_region()));
                    let waiting = attrs.get(&QueueAttributeName::ApproximateNumberOfMessages).cloned().unwrap_or_default();
                    if attrs.contains_key(&QueueAttributeName::RedrivePolicy) {
                        out.push(check("queue reachable", CheckState::Pass, format!("{waiting} messages waiting"), None));
                    } else {
                        out.push(check(
                            "queue reachable",
                            CheckState::Warn,
                            format!("{waiting} messages waiting; no dead-letter queue"),
                            Some("give the queue a RedrivePolicy (maxReceiveCount 5) so that messages trailwatch cannot handle end up in a DLQ instead of cycling".into()),
                        ));
                    }
                }
                Err(e) => out.push(check(
                    "queue reachable",
                    CheckState::Fail,
                    err(e),
                    Some("check queue_url, and that the role may sqs:ReceiveMessage/DeleteMessage/ChangeMessageVisibility/GetQueueAttributes on it".into()),
                )),
            }
            match (&topic, &queue_arn_found) {
                (Some(topic), Some(qarn)) => {
                    let sns = aws_sdk_sns::Client::new(&clients.config);
                    match sns.list_subscriptions_by_topic().topic_arn(topic).send().await {
                        Ok(r) => {
                            let subscribed = r
                                .subscriptions()
                                .iter()
                                .any(|s| s.protocol() == Some("sqs") && s.endpoint() == Some(qarn.as_str()));
                            if subscribed {
                                out.push(check(
                                    "queue subscribed to the topic",
                                    CheckState::Pass,
                                    format!("{qarn} ← {topic}"),
                                    None,
                                ));
                            } else {
                                out.push(check(
                                    "queue subscribed to the topic",
                                    CheckState::Fail,
                                    format!("{qarn} is not subscribed to {topic}"),
                                    Some(format!("aws sns subscribe --topic-arn {topic} --protocol sqs --notification-endpoint {qarn}  (and a queue policy letting the topic sqs:SendMessage)")),
                                ));
                            }
                        }
                        Err(e) => out.push(check(
                            "queue subscribed to the topic",
                            CheckState::Fail,
                            err(e),
                            Some("the role needs sns:ListSubscriptionsByTopic on the topic".into()),
                        )),
                    }
                }
                _ => out.push(check(
                    "queue subscribed to the topic",
                    CheckState::Skip,
                    "needs the trail's topic and the queue",
                    None,
                )),
            }
        }
    }

    // 9. A recent log object.
    out.push(recent_object(&clients, spec, now).await);
    out
}

/// Advice on the trail's event selectors: data events for every S3 object or Lambda
/// function, and high-volume management sources, can multiply what is stored.
async fn event_selectors(cloudtrail: &aws_sdk_cloudtrail::Client, trail: &str, home: &str) -> Check {
    const NAME: &str = "event selectors (volume)";
    let resp = match cloudtrail.get_event_selectors().trail_name(trail).send().await {
        Ok(r) => r,
        Err(e) => {
            return check(
                NAME,
                CheckState::Warn,
                err(e),
                Some("the role needs cloudtrail:GetEventSelectors for this advice".into()),
            )
        }
    };
    let mut advice = Vec::new();
    for sel in resp.event_selectors() {
        for dr in sel.data_resources() {
            let kind = dr.r#type().unwrap_or_default();
            let everything = dr
                .values()
                .iter()
                .any(|v| matches!(v.as_str(), "arn:aws:s3" | "arn:aws:s3:::" | "arn:aws:lambda" | "arn:aws:dynamodb"));
            if everything {
                advice.push(format!("data events for every {kind} ({:?} read/write)", sel.read_write_type()));
            }
        }
    }
    for sel in resp.advanced_event_selectors() {
        let fields = sel.field_selectors();
        let is_data = fields.iter().any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Data"));
        let narrowed = fields.iter().any(|f| {
            matches!(f.field(), "resources.ARN" | "eventName" | "readOnly" | "eventSource")
                || !f.not_equals().is_empty()
                || !f.not_starts_with().is_empty()
        });
        if is_data && !narrowed {
            let kind = fields
                .iter()
                .find(|f| f.field() == "resources.type")
                .and_then(|f| f.equals().first().cloned())
                .unwrap_or_else(|| "resource".into());
            advice.push(format!(
                "advanced selector {:?}: data events for every {kind}",
                sel.name().unwrap_or("(unnamed)")
            ));
        }
        let management =
            fields.iter().any(|f| f.field() == "eventCategory" && f.equals().iter().any(|v| v == "Management"));
        let kms_excluded = fields
            .iter()
            .any(|f| f.field() == "eventSource" && f.not_equals().iter().any(|v| v == "kms.amazonaws.com"));
        if management && !kms_excluded {
            advice.push(
                "management events include kms.amazonaws.com (Decrypt/GenerateDataKey are often most of the volume)"
                    .into(),
            );
        }
    }
    for sel in resp.event_selectors() {
        if sel.include_management_events() == Some(true)
            && !sel.exclude_management_event_sources().iter().any(|s| s == "kms.amazonaws.com")
        {
            advice.push(
                "management events include kms.amazonaws.com (Decrypt/GenerateDataKey are often most of the volume)"
                    .into(),
            );
        }
    }
    advice.dedup();
    // Management events from KMS are worth knowing about, not a problem: only unbounded data
    // events warn.
    let (notes, warnings): (Vec<String>, Vec<String>) = advice.into_iter().partition(|a| a.starts_with("management"));
    if warnings.is_empty() {
        let detail = match notes.first() {
            Some(n) => format!("no unbounded data-event selectors; {n}: if volume matters, exclude it or drop it with [[ingest.filters]]"),
            None => "no unbounded data-event selectors".to_string(),
        };
        return check(NAME, CheckState::Pass, detail, None);
    }
    let advice: Vec<String> = warnings.into_iter().chain(notes).collect();
    // A trail has basic or advanced selectors, never both: the fix uses the kind it has.
    let fix = if resp.advanced_event_selectors().is_empty() {
        format!(
            "narrow data events to what matters, e.g. aws cloudtrail put-event-selectors --trail-name {trail} --region {home} \
             --event-selectors '[{{\"ReadWriteType\":\"WriteOnly\",\"IncludeManagementEvents\":true,\
             \"ExcludeManagementEventSources\":[\"kms.amazonaws.com\",\"rdsdata.amazonaws.com\"],\
             \"DataResources\":[{{\"Type\":\"AWS::S3::Object\",\"Values\":[\"arn:aws:s3:::<bucket that matters>/\"]}}]}}]', \
             or drop them before storage with [[ingest.filters]]"
        )
    } else {
        format!(
            "narrow the advanced selectors, e.g. aws cloudtrail put-event-selectors --trail-name {trail} --region {home} \
             --advanced-event-selectors '[{{\"Name\":\"Management\",\"FieldSelectors\":[{{\"Field\":\"eventCategory\",\"Equals\":[\"Management\"]}},\
             {{\"Field\":\"eventSource\",\"NotEquals\":[\"kms.amazonaws.com\",\"rdsdata.amazonaws.com\"]}}]}},\
             {{\"Name\":\"S3 writes\",\"FieldSelectors\":[{{\"Field\":\"eventCategory\",\"Equals\":[\"Data\"]}},\
             {{\"Field\":\"resources.type\",\"Equals\":[\"AWS::S3::Object\"]}},{{\"Field\":\"readOnly\",\"Equals\":[\"false\"]}},\
             {{\"Field\":\"resources.ARN\",\"StartsWith\":[\"arn:aws:s3:::<bucket that matters>/\"]}}]}}]', \
             or drop them before storage with [[ingest.filters]]"
        )
    };
    check(NAME, CheckState::Warn, advice.join("; "), Some(fix))
}

/// A listing that failed: where, and why.
struct ListFailure {
    prefix: String,
    bucket: String,
    error: String,
}

impl ListFailure {
    fn check(self, name: &'static str) -> Check {
        check(
            name,
            CheckState::Fail,
            format!("listing s3://{}/{}: {}", self.bucket, self.prefix, self.error),
            Some("the role needs s3:ListBucket on the bucket for the trail's prefix".into()),
        )
    }
}

/// The newest key under `base` + today's `YYYY/MM/DD/`, else yesterday's.
async fn newest_of_two_days(
    clients: &account::AccountClients,
    bucket: &str,
    base: &str,
    now: i64,
) -> Result<Option<String>, ListFailure> {
    for day in [now, now - 86_400_000] {
        let Some((y, m, d, ..)) = civil(day) else { continue };
        let prefix = format!("{base}{y:04}/{m:02}/{d:02}/");
        match clients.s3.list_objects_v2().bucket(bucket).prefix(&prefix).send().await {
            Ok(r) => {
                if let Some(k) = r.contents().iter().filter_map(|o| o.key()).max() {
                    return Ok(Some(k.to_owned()));
                }
            }
            Err(e) => return Err(ListFailure { prefix, bucket: bucket.to_owned(), error: err(e) }),
        }
    }
    Ok(None)
}

/// The newest digest of the home region, today or yesterday: validation enabled on the trail
/// is not yet digests delivered (they are written hourly; a stopped trail or a lifecycle rule
/// or someone deleting them leaves none).
async fn recent_digest(clients: &account::AccountClients, spec: &AccountSpec, now: i64) -> Check {
    const NAME: &str = "digests delivered";
    let Some(bucket) = &spec.bucket else {
        return check(NAME, CheckState::Skip, "no bucket configured", None);
    };
    let base = crate::backfill::account_prefix(clients);
    let region = spec.home_region();
    match newest_of_two_days(clients, bucket, &format!("{base}CloudTrail-Digest/{region}/"), now).await {
        Ok(Some(k)) => return check(NAME, CheckState::Pass, format!("newest: {k}"), None),
        Ok(None) => {}
        Err(failure) => return failure.check(NAME),
    }
    check(
        NAME,
        CheckState::Warn,
        format!("no digest file under {base}CloudTrail-Digest/{region}/ today or yesterday"),
        Some(
            "CloudTrail writes a digest every hour once validation is on: if it was enabled over an hour ago, check \
             that the trail is logging and that nothing (a lifecycle rule, a person) deletes CloudTrail-Digest/ objects \
             (`trailwatch validate --trail-arn ARN --start-time 2d` reports what is missing)"
                .into(),
        ),
    )
}

async fn recent_object(clients: &account::AccountClients, spec: &AccountSpec, now: i64) -> Check {
    const NAME: &str = "recent log object readable";
    let Some(bucket) = &spec.bucket else {
        return check(NAME, CheckState::Skip, "no bucket configured", None);
    };
    let base = crate::backfill::account_prefix(clients);
    let region = spec.home_region();
    let newest = match newest_of_two_days(clients, bucket, &format!("{base}CloudTrail/{region}/"), now).await {
        Ok(newest) => newest,
        Err(failure) => return failure.check(NAME),
    };
    let Some(key) = newest else {
        return check(
            NAME,
            CheckState::Warn,
            format!("no log file under {base}CloudTrail/{region}/ today or yesterday"),
            Some("if the account is active, check that the trail is logging to this bucket and prefix (and organization id)".into()),
        );
    };
    match crate::fetch::get_object(&clients.s3, bucket, &key).await {
        Ok(bytes) => {
            let head = clients.s3.head_object().bucket(bucket).key(&key).send().await.ok();
            let encryption = match head.as_ref().and_then(|h| h.ssekms_key_id()) {
                Some(k) => format!(", SSE-KMS with {k}: decrypted"),
                None => String::new(),
            };
            check(NAME, CheckState::Pass, format!("read {key} ({} bytes{encryption})", bytes.len()), None)
        }
        Err(e @ crate::fetch::FetchError::KmsDenied { .. }) => {
            let key_arn = match &e {
                crate::fetch::FetchError::KmsDenied { kms_key, .. } => kms_key.clone(),
                _ => None,
            };
            check(
                NAME,
                CheckState::Fail,
                e.to_string(),
                Some(format!(
                    "allow the role kms:Decrypt on {} through S3, in its own policy and in the key's policy: \
                     `trailwatch setup --config FILE --account {} --kms-key-arn {}` prints both",
                    key_arn.as_deref().unwrap_or("<the trail's KMS key ARN>"),
                    spec.name,
                    key_arn.as_deref().unwrap_or("ARN")
                )),
            )
        }
        Err(e) => check(
            NAME,
            CheckState::Fail,
            e.to_string(),
            Some(
                "the role needs s3:GetObject on the trail's prefix, and kms:Decrypt if the trail uses a KMS key".into(),
            ),
        ),
    }
}
