//! What to create in a monitored account, and on trailwatch's own side, as IAM JSON and
//! CloudFormation. The permissions follow [`crate::permissions::CALLS`]: each call trailwatch
//! makes, on the resource it acts on, and nothing else.
//!
//! * The **trust policy** of the read-only role: trailwatch's principal may assume it only
//!   with the account's external ID (the confused-deputy guard).
//! * The **permission policy** of that role: read the trail's objects under its own account's
//!   (or organization's) path, list only that path, consume the queue, read the trail's
//!   settings (trail-ARN scoped where the action allows it), list the topic's subscriptions,
//!   look up Event history, and decrypt through S3 with the trail's KMS key if it has one.
//! * The **caller policy**: trailwatch's own identity needs `sts:AssumeRole` on each role
//!   (cross-account, both sides must allow it) and `sns:Publish` on alert topics.
//! * For a trail encrypted with an existing KMS key, the **key policy statements** CloudTrail
//!   needs (without them CreateTrail fails with InsufficientEncryptionPolicyException) and the
//!   one that lets the role decrypt.
//! * A **CloudFormation template** creating the whole wiring: a multi-region trail (an
//!   organization trail with `organization_id`) with log file validation, its bucket (private,
//!   versioned, TLS only) with the bucket policy CloudTrail needs, the SNS topic (SHA256
//!   signatures) and its policy, the queue with a dead-letter queue that keeps messages longer
//!   than the queue, the subscription, the role, and optionally a KMS key.
//!
//! Every policy that lets a service act is pinned to the trail or topic by `aws:SourceArn`;
//! ARNs carry the account's partition (`aws`, `aws-cn`, `aws-us-gov`).

use serde_json::{json, Value};

use crate::account::AccountSpec;

/// Inputs that are not in the account's configuration.
#[derive(Debug, Clone)]
pub struct SetupInput {
    /// The IAM principal trailwatch runs as (a role or user ARN).
    pub principal: String,
    pub external_id: String,
    /// The trail's name: the template's trail (default [`DEFAULT_TRAIL_NAME`]); for an
    /// existing trail, the one the role may read the settings of (`None`: any of the
    /// account's trails).
    pub trail_name: Option<String>,
    pub kms: KmsSetup,
    /// The read-only role's name when the template creates it (a known name lets the caller
    /// policy name the role before the stack exists).
    pub role_name: String,
}

/// How the trail's log files are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KmsSetup {
    /// SSE-S3.
    #[default]
    None,
    /// SSE-KMS with this existing key: its policy needs the statements `setup` prints.
    Existing(String),
    /// SSE-KMS with a key the template creates (rotation on).
    Create,
}

#[derive(Debug, Clone)]
pub struct SetupDocuments {
    pub trust_policy: Value,
    pub permission_policy: Value,
    pub cloudformation: Value,
    /// For [`KmsSetup::Existing`]: statements to add to the key's policy.
    pub key_policy_statements: Option<Value>,
    /// The role trailwatch assumes in this account.
    pub role_arn: String,
    /// What a person must know to deploy these (where, in which order).
    pub notes: Vec<String>,
}

/// The name of the trail the template creates unless told otherwise.
pub const DEFAULT_TRAIL_NAME: &str = "trailwatch-trail";

impl SetupInput {
    fn template_trail(&self) -> &str {
        self.trail_name.as_deref().unwrap_or(DEFAULT_TRAIL_NAME)
    }
}

/// The partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The DNS suffix of a partition's endpoints.
fn dns_suffix(partition: &str) -> &'static str {
    if partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// `arn:<partition>:sqs:<region>:<account>:<name>` for a queue URL
/// (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
pub fn queue_arn(url: &str, fallback_region: &str) -> Option<String> {
    let path = url.split("://").nth(1)?;
    let mut parts = path.split('/');
    parts.next()?; // the host: its region, if any, is read by queue_url_region
    let account = parts.next().filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    let name = parts.next().filter(|n| !n.is_empty())?;
    let region = crate::account::queue_url_region(url).unwrap_or_else(|| fallback_region.to_owned());
    Some(format!("arn:{}:sqs:{region}:{account}:{name}", partition(&region)))
}

/// The key prefix the trail writes under, with a trailing `/` (`[prefix/]AWSLogs/`).
fn logs_prefix(spec: &AccountSpec) -> String {
    match spec.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}/AWSLogs/"),
        None => "AWSLogs/".into(),
    }
}

/// What the role reads: `[prefix/]AWSLogs/<account>/`, or for an organization trail every
/// member's logs, `[prefix/]AWSLogs/<o-…>/`. Never the whole `AWSLogs/` of a shared bucket.
pub fn read_scope(spec: &AccountSpec) -> String {
    let owner = spec.organization_id.as_deref().unwrap_or(&spec.account_id);
    format!("{}{owner}/", logs_prefix(spec))
}

/// The role trailwatch assumes: the configured one, or the one the template creates.
pub fn role_arn(spec: &AccountSpec, input: &SetupInput) -> String {
    spec.role_arn.clone().unwrap_or_else(|| {
        format!("arn:{}:iam::{}:role/{}", partition(&spec.home_region()), spec.account_id, input.role_name)
    })
}

pub fn trust_policy(input: &SetupInput) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "TrailwatchAssumesWithExternalId",
            "Effect": "Allow",
            "Principal": {"AWS": input.principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": input.external_id}}
        }]
    })
}

/// How the role's policy names things: literal ARNs (a policy for an existing trail) or
/// CloudFormation expressions (the template's own resources).
struct Names {
    partition: Value,
    bucket: Value,
    queue: Option<Value>,
    topic: Value,
    trail: Value,
    key: Option<Value>,
    /// `s3.<region>.<suffix>`: the service a KMS decrypt comes through.
    via_s3: Value,
    /// The account that owns the trail (an organization trail: the management account).
    trail_owner: Value,
}

/// `Fn::Join` of the parts unless every part is a plain string (then the string).
fn join(parts: Vec<Value>) -> Value {
    if parts.iter().all(Value::is_string) {
        Value::String(parts.iter().filter_map(Value::as_str).collect())
    } else {
        json!({"Fn::Join": ["", parts]})
    }
}

/// The role's permissions, one statement per kind of resource (see `permissions::CALLS`).
fn permission_statements(spec: &AccountSpec, n: &Names) -> Vec<Value> {
    let scope = read_scope(spec);
    let p = n.partition.clone();
    let bucket_arn = join(vec![json!("arn:"), p.clone(), json!(":s3:::"), n.bucket.clone()]);
    let objects_arn =
        join(vec![json!("arn:"), p.clone(), json!(":s3:::"), n.bucket.clone(), json!(format!("/{scope}*"))]);
    let mut statements = vec![
        json!({"Sid": "ReadTrailObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects_arn}),
        json!({"Sid": "ListTrailPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
               "Condition": {"StringLike": {"s3:prefix": [format!("{scope}*")]}}}),
    ];
    if let Some(queue) = &n.queue {
        statements.push(json!({"Sid": "ConsumeQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": queue}));
    }
    statements.extend([
        json!({"Sid": "ReadTrailSettings", "Effect": "Allow",
               "Action": ["cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
               "Resource": n.trail}),
        // These three have no resource-level permissions.
        json!({"Sid": "FindTrailsKeysAndHistory", "Effect": "Allow",
               "Action": ["cloudtrail:DescribeTrails", "cloudtrail:ListPublicKeys", "cloudtrail:LookupEvents"],
               "Resource": "*"}),
        json!({"Sid": "ReadTopicSubscriptions", "Effect": "Allow", "Action": "sns:ListSubscriptionsByTopic",
               "Resource": n.topic}),
    ]);
    if let Some(key) = &n.key {
        statements.push(json!({"Sid": "DecryptTrailObjects", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
            "Condition": {
                "StringEquals": {"kms:ViaService": n.via_s3},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                    join(vec![json!("arn:"), p.clone(), json!(":cloudtrail:*:"), n.trail_owner.clone(), json!(":trail/*")])}
            }}));
    }
    statements
}

/// The permission policy for an existing trail (bucket, queue and topic from the
/// configuration; `input.trail_name` names the trail).
pub fn permission_policy(spec: &AccountSpec, input: &SetupInput) -> Value {
    let region = spec.home_region();
    let part = partition(&region);
    let bucket = spec.bucket.clone().unwrap_or_else(|| "<trail bucket>".into());
    let queue = spec.queue_url.as_deref().and_then(|u| queue_arn(u, &region));
    let topic = spec
        .topic_arn
        .clone()
        // Without a configured topic, doctor reads the trail's own: any topic of the account.
        .unwrap_or_else(|| format!("arn:{part}:sns:*:{}:*", spec.account_id));
    let key = match &input.kms {
        KmsSetup::Existing(arn) => Some(json!(arn)),
        KmsSetup::Create => Some(json!(format!("arn:{part}:kms:{region}:{}:key/<the key's id>", spec.account_id))),
        KmsSetup::None => None,
    };
    let names = Names {
        partition: json!(part),
        bucket: json!(bucket),
        queue: queue.map(Value::String),
        topic: json!(topic),
        trail: json!(format!(
            "arn:{part}:cloudtrail:*:{}:trail/{}",
            spec.account_id,
            input.trail_name.as_deref().unwrap_or("*")
        )),
        key,
        via_s3: json!(format!("s3.{region}.{}", dns_suffix(part))),
        trail_owner: json!(spec.account_id),
    };
    json!({"Version": "2012-10-17", "Statement": permission_statements(spec, &names)})
}

/// What trailwatch's own identity needs: `sts:AssumeRole` on every account's role (the other
/// side of each trust policy) and `sns:Publish` on the alert sinks' topics.
pub fn caller_policy(role_arns: &[String], alert_topics: &[String]) -> Value {
    let mut statements =
        vec![json!({"Sid": "AssumeTrailwatchReadRoles", "Effect": "Allow", "Action": "sts:AssumeRole",
        "Resource": role_arns})];
    if !alert_topics.is_empty() {
        statements.push(
            json!({"Sid": "PublishAlerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": alert_topics}),
        );
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// What CloudTrail needs in a key's policy to encrypt for the trail `trail_arn` (whose
/// encryption context matches `context`): generate data keys, describe the key; both pinned
/// to the trail by `aws:SourceArn`.
fn cloudtrail_key_statements(trail_arn: Value, context: Value) -> [Value; 2] {
    [
        json!({"Sid": "AllowCloudTrailToEncryptLogs", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "kms:GenerateDataKey*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn},
                       "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": context}}}),
        json!({"Sid": "AllowCloudTrailToDescribeKey", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "kms:DescribeKey", "Resource": "*",
         "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}}),
    ]
}

/// Statements to add to an existing key's policy for a trail named `trail_arn` in
/// `owner`'s account, read by `role_arn` through S3 in `region`.
pub fn key_policy_statements(trail_arn: &str, owner: &str, role_arn: &str, region: &str) -> Value {
    let part = partition(region);
    let context = format!("arn:{part}:cloudtrail:*:{owner}:trail/*");
    let [encrypt, describe] = cloudtrail_key_statements(json!(trail_arn), json!(context));
    json!([
        encrypt,
        describe,
        {"Sid": "AllowTrailwatchToDecryptLogs", "Effect": "Allow", "Principal": {"AWS": role_arn},
         "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": format!("s3.{region}.{}", dns_suffix(part))},
                       "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": context}}}
    ])
}

/// The CloudFormation template that creates the trail and its whole wiring in the account
/// (for an organization trail: in the organization's management account).
pub fn cloudformation(spec: &AccountSpec, input: &SetupInput) -> Value {
    let prefix = logs_prefix(spec);
    let trail_name = input.template_trail();
    let trail_arn = json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:cloudtrail:${{AWS::Region}}:${{AWS::AccountId}}:trail/{trail_name}")});
    let bucket_ref = json!({"Ref": "TrailBucket"});
    let mut bucket = json!({
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
        }
    });
    if let Some(name) = &spec.bucket {
        bucket["Properties"]["BucketName"] = json!(name);
    }
    // The DLQ keeps messages longer than the queue: a moved message keeps its first enqueue
    // time, so with equal periods it would expire on arrival.
    let mut queue = json!({
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": 300,
            "MessageRetentionPeriod": 604_800,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
        }
    });
    let queue_name = spec.queue_url.as_deref().and_then(|u| u.rsplit('/').next()).filter(|n| !n.is_empty());
    if let Some(name) = queue_name {
        queue["Properties"]["QueueName"] = json!(name);
    }
    let mut trail_props = json!({
        "TrailName": trail_name,
        "IsLogging": true,
        "IsMultiRegionTrail": true,
        "IncludeGlobalServiceEvents": true,
        "EnableLogFileValidation": true,
        "S3BucketName": bucket_ref,
        "SnsTopicName": {"Fn::GetAtt": ["TrailTopic", "TopicName"]}
    });
    if spec.organization_id.is_some() {
        trail_props["IsOrganizationTrail"] = json!(true);
    }
    if let Some(p) = spec.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        trail_props["S3KeyPrefix"] = json!(p);
    }
    let key_arn = match &input.kms {
        KmsSetup::None => None,
        KmsSetup::Existing(arn) => Some(json!(arn)),
        KmsSetup::Create => Some(json!({"Fn::GetAtt": ["TrailKey", "Arn"]})),
    };
    if let Some(k) = &key_arn {
        trail_props["KMSKeyId"] = k.clone();
    }
    // CloudTrail writes the account's own logs, and an organization trail every member's.
    let mut write_paths = vec![json!({"Fn::Sub": format!("${{TrailBucket.Arn}}/{prefix}${{AWS::AccountId}}/*")})];
    if let Some(org) = &spec.organization_id {
        write_paths.push(json!({"Fn::Sub": format!("${{TrailBucket.Arn}}/{prefix}{org}/*")}));
    }
    let names = Names {
        partition: json!({"Ref": "AWS::Partition"}),
        bucket: bucket_ref.clone(),
        queue: Some(json!({"Fn::GetAtt": ["TrailQueue", "Arn"]})),
        topic: json!({"Ref": "TrailTopic"}),
        trail: trail_arn.clone(),
        key: key_arn.clone(),
        via_s3: json!({"Fn::Sub": "s3.${AWS::Region}.${AWS::URLSuffix}"}),
        trail_owner: json!({"Ref": "AWS::AccountId"}),
    };
    let role_policy = json!({"Version": "2012-10-17", "Statement": permission_statements(spec, &names)});
    let mut resources = json!({
        "TrailBucket": bucket,
        "TrailBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": bucket_ref,
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                     "Action": "s3:GetBucketAcl", "Resource": {"Fn::GetAtt": ["TrailBucket", "Arn"]},
                     "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}},
                    {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                     "Action": "s3:PutObject",
                     "Resource": write_paths,
                     "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
                    {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                     "Resource": [{"Fn::GetAtt": ["TrailBucket", "Arn"]}, {"Fn::Sub": "${TrailBucket.Arn}/*"}],
                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                ]}
            }
        },
        // SHA256withRSA signatures: what trailwatch's SNS push accepts by default.
        "TrailTopic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "CloudTrail log delivery", "SignatureVersion": "2"}},
        "TrailTopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [{"Ref": "TrailTopic"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "AWSCloudTrailSNSPolicy", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
                     "Action": "SNS:Publish", "Resource": {"Ref": "TrailTopic"},
                     "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}}
                ]}
            }
        },
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1_209_600}},
        "TrailQueue": queue,
        "TrailQueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": "TrailQueue"}],
                "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "TopicSendsToQueue", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                     "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["TrailQueue", "Arn"]},
                     "Condition": {"ArnEquals": {"aws:SourceArn": {"Ref": "TrailTopic"}}}}
                ]}
            }
        },
        "TrailSubscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {"TopicArn": {"Ref": "TrailTopic"}, "Protocol": "sqs",
                           "Endpoint": {"Fn::GetAtt": ["TrailQueue", "Arn"]}, "RawMessageDelivery": false}
        },
        "Trail": {
            "Type": "AWS::CloudTrail::Trail",
            "DependsOn": ["TrailBucketPolicy", "TrailTopicPolicy"],
            "Properties": trail_props
        },
        "TrailwatchReadRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": input.role_name,
                "Description": "Read-only access for trailwatch: the trail's objects, its queue, its settings",
                "AssumeRolePolicyDocument": trust_policy(input),
                "Policies": [{"PolicyName": "trailwatch-read", "PolicyDocument": role_policy}]
            }
        }
    });
    let mut outputs = json!({
        "RoleArn": {"Value": {"Fn::GetAtt": ["TrailwatchReadRole", "Arn"]}},
        "BucketName": {"Value": bucket_ref},
        "QueueUrl": {"Value": {"Ref": "TrailQueue"}},
        "TopicArn": {"Value": {"Ref": "TrailTopic"}},
        "TrailArn": {"Value": {"Fn::GetAtt": ["Trail", "Arn"]}}
    });
    if input.kms == KmsSetup::Create {
        // The account administers the key (IAM policies then decide, so the role's own
        // kms:Decrypt statement suffices); CloudTrail may encrypt for this trail only.
        let context = json!({"Fn::Sub": "arn:${AWS::Partition}:cloudtrail:*:${AWS::AccountId}:trail/*"});
        let [encrypt, describe] = cloudtrail_key_statements(trail_arn.clone(), context);
        resources["TrailKey"] = json!({
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": format!("Encrypts the log and digest files of CloudTrail trail {trail_name}"),
                "EnableKeyRotation": true,
                "KeyPolicy": {"Version": "2012-10-17", "Statement": [
                    {"Sid": "AccountAdministersTheKey", "Effect": "Allow",
                     "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                     "Action": "kms:*", "Resource": "*"},
                    encrypt,
                    describe
                ]}
            }
        });
        outputs["KmsKeyArn"] = json!({"Value": {"Fn::GetAtt": ["TrailKey", "Arn"]}});
    }
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "trailwatch: CloudTrail {}trail {} with log file validation, its bucket, SNS topic, SQS queue (+DLQ) and the read-only role trailwatch assumes",
            if spec.organization_id.is_some() { "organization " } else { "" },
            trail_name
        ),
        "Resources": resources,
        "Outputs": outputs
    })
}

pub fn documents(spec: &AccountSpec, input: &SetupInput) -> SetupDocuments {
    let region = spec.home_region();
    let part = partition(&region);
    let role = role_arn(spec, input);
    let trail_arn = format!("arn:{part}:cloudtrail:{region}:{}:trail/{}", spec.account_id, input.template_trail());
    let mut notes = Vec::new();
    if let Some(org) = &spec.organization_id {
        notes.push(format!(
            "organization trail ({org}): deploy the template in the organization's management account {} \
             (a CloudTrail delegated administrator may create the trail, but the management account owns it, \
             and aws:SourceArn names the trail there); the role reads every member's logs under {}",
            spec.account_id,
            read_scope(spec)
        ));
    }
    let key_policy_statements = match &input.kms {
        KmsSetup::Existing(key) => {
            notes.push(format!(
                "add key-policy-statements to the policy of {key} before creating or updating the trail \
                 (without them CreateTrail fails with InsufficientEncryptionPolicyException); they also let {role} decrypt \
                 through S3 in {region}"
            ));
            Some(key_policy_statements(&trail_arn, &spec.account_id, &role, &region))
        }
        KmsSetup::Create => {
            notes.push("the template creates a KMS key (rotation on) and encrypts the trail with it".into());
            None
        }
        KmsSetup::None => None,
    };
    notes.push(format!(
        "cross-account: trailwatch's own identity must be allowed sts:AssumeRole on {role} (caller-policy) — \
         the trust policy is only the other half"
    ));
    SetupDocuments {
        trust_policy: trust_policy(input),
        permission_policy: permission_policy(spec, input),
        cloudformation: cloudformation(spec, input),
        key_policy_statements,
        role_arn: role,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{evaluate, Caller, Request, Target, CALLS};

    fn spec() -> AccountSpec {
        AccountSpec {
            name: "prod".into(),
            account_id: "111122223333".into(),
            regions: vec!["us-east-1".into()],
            bucket: Some("example-trail".into()),
            queue_url: Some("https://sqs.us-east-1.amazonaws.com/111122223333/trailwatch".into()),
            topic_arn: Some("arn:aws:sns:us-east-1:111122223333:trail".into()),
            prefix: Some("team/".into()),
            ..Default::default()
        }
    }

    fn input() -> SetupInput {
        SetupInput {
            principal: "arn:aws:iam::444455556666:role/trailwatch".into(),
            external_id: "ext-123".into(),
            trail_name: Some("main-trail".into()),
            kms: KmsSetup::None,
            role_name: "trailwatch-read".into(),
        }
    }

    /// The concrete request a call makes for `spec` (what IAM evaluates).
    fn request_of(
        call: &crate::permissions::Call,
        spec: &AccountSpec,
        key: &str,
        member: &str,
    ) -> (String, Vec<(&'static str, String)>) {
        let part = partition(&spec.home_region());
        let scope = read_scope(spec);
        let owner = &spec.account_id;
        let object_path = if spec.organization_id.is_some() {
            format!("{scope}{member}/CloudTrail/us-east-1/2026/12/05/{member}_CloudTrail_us-east-1_20261205T0000Z_x.json.gz")
        } else {
            format!("{scope}CloudTrail/us-east-1/2026/12/05/{owner}_CloudTrail_us-east-1_20261205T0000Z_x.json.gz")
        };
        let bucket = spec.bucket.clone().unwrap();
        match call.target {
            Target::TrailObject => (format!("arn:{part}:s3:::{bucket}/{object_path}"), vec![]),
            Target::TrailPrefixListing => (
                format!("arn:{part}:s3:::{bucket}"),
                vec![("s3:prefix", format!("{scope}CloudTrail/us-east-1/2026/12/05/"))],
            ),
            Target::Queue => (queue_arn(spec.queue_url.as_deref().unwrap(), "us-east-1").unwrap(), vec![]),
            Target::Topic => {
                (spec.topic_arn.clone().unwrap_or(format!("arn:{part}:sns:us-east-1:{owner}:trail-topic")), vec![])
            }
            Target::Trail => (format!("arn:{part}:cloudtrail:us-east-1:{owner}:trail/main-trail"), vec![]),
            Target::Key => (
                key.to_owned(),
                vec![
                    ("kms:ViaService", format!("s3.us-east-1.{}", dns_suffix(part))),
                    (
                        "kms:EncryptionContext:aws:cloudtrail:arn",
                        format!("arn:{part}:cloudtrail:us-east-1:{owner}:trail/main-trail"),
                    ),
                ],
            ),
            Target::Role | Target::AlertTopic | Target::Any => ("*".into(), vec![]),
        }
    }

    fn allows(policy: &Value, action: &str, resource: &str, context: &[(&str, String)]) -> bool {
        let context: Vec<(&str, &str)> = context.iter().map(|(k, v)| (*k, v.as_str())).collect();
        evaluate(policy, &Request { action, resource, context: &context })
    }

    /// Every call the role makes is allowed on its real resource, in every shape of account;
    /// the same calls elsewhere (another account's logs, another queue, another trail) are not;
    /// and the policy allows no action that no call needs.
    #[test]
    fn the_role_policy_allows_exactly_the_calls_trailwatch_makes() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let shapes: Vec<(&str, AccountSpec, KmsSetup)> = vec![
            ("plain", spec(), KmsSetup::None),
            ("kms", spec(), KmsSetup::Existing(key.into())),
            ("organization", AccountSpec { organization_id: Some("o-abc123defg".into()), ..spec() }, KmsSetup::None),
            ("no topic configured", AccountSpec { topic_arn: None, ..spec() }, KmsSetup::None),
            (
                "china",
                AccountSpec {
                    regions: vec!["cn-north-1".into()],
                    queue_url: Some("https://sqs.cn-north-1.amazonaws.com.cn/111122223333/trailwatch".into()),
                    topic_arn: Some("arn:aws-cn:sns:cn-north-1:111122223333:trail".into()),
                    ..spec()
                },
                KmsSetup::Existing("arn:aws-cn:kms:cn-north-1:111122223333:key/k".into()),
            ),
        ];
        for (shape, spec, kms) in shapes {
            let input = SetupInput { kms: kms.clone(), ..input() };
            let policy = permission_policy(&spec, &input);
            let key_arn = match &kms {
                KmsSetup::Existing(k) => k.clone(),
                _ => key.into(),
            };
            let china_fix = |mut s: (String, Vec<(&'static str, String)>)| {
                if spec.home_region().starts_with("cn-") {
                    s.0 = s.0.replace("us-east-1", "cn-north-1");
                    for (_, v) in s.1.iter_mut() {
                        *v = v.replace("us-east-1", "cn-north-1");
                    }
                }
                s
            };
            for call in CALLS.iter().filter(|c| c.caller == Caller::Role) {
                let needed = crate::permissions::needed(call, kms != KmsSetup::None);
                let (resource, context) = china_fix(request_of(call, &spec, &key_arn, "999988887777"));
                assert_eq!(
                    allows(&policy, call.action, &resource, &context),
                    needed,
                    "{shape}: {} ({}) on {resource} {context:?}",
                    call.operation,
                    call.action
                );
            }
            // Least privilege: every action granted is one a call needs.
            for action in crate::permissions::allowed_actions(&policy) {
                assert!(
                    CALLS.iter().any(|c| c.caller == Caller::Role && c.action == action),
                    "{shape}: {action} is granted but never used"
                );
            }
            // Not elsewhere: another account's logs in a shared bucket, another trail, another key.
            let part = partition(&spec.home_region());
            let other_logs = format!("arn:{part}:s3:::example-trail/team/AWSLogs/999900001111/CloudTrail/x.json.gz");
            assert!(!allows(&policy, "s3:GetObject", &other_logs, &[]), "{shape}: another account's logs");
            let other_listing = [("s3:prefix", "team/AWSLogs/999900001111/".to_owned())];
            assert!(!allows(&policy, "s3:ListBucket", &format!("arn:{part}:s3:::example-trail"), &other_listing));
            assert!(!allows(
                &policy,
                "cloudtrail:GetTrailStatus",
                &format!("arn:{part}:cloudtrail:us-east-1:999900001111:trail/main-trail"),
                &[]
            ));
            if kms != KmsSetup::None {
                // Decrypt only through S3 and only for this account's trail.
                let direct = [(
                    "kms:EncryptionContext:aws:cloudtrail:arn",
                    format!("arn:{part}:cloudtrail:us-east-1:111122223333:trail/t"),
                )];
                assert!(!allows(&policy, "kms:Decrypt", &key_arn, &direct), "{shape}: decrypt without S3");
            }
        }
    }

    #[test]
    fn the_caller_policy_lets_trailwatch_assume_each_role() {
        let roles = vec![
            "arn:aws:iam::111122223333:role/trailwatch-read".to_owned(),
            "arn:aws:iam::222233334444:role/r".to_owned(),
        ];
        let p = caller_policy(&roles, &["arn:aws:sns:us-east-1:444455556666:alerts".into()]);
        for r in &roles {
            assert!(evaluate(&p, &Request { action: "sts:AssumeRole", resource: r, context: &[] }));
        }
        assert!(!evaluate(
            &p,
            &Request { action: "sts:AssumeRole", resource: "arn:aws:iam::999900001111:role/x", context: &[] }
        ));
        assert!(evaluate(
            &p,
            &Request { action: "sns:Publish", resource: "arn:aws:sns:us-east-1:444455556666:alerts", context: &[] }
        ));
        assert_eq!(role_arn(&spec(), &input()), "arn:aws:iam::111122223333:role/trailwatch-read");
        let gov = AccountSpec { regions: vec!["us-gov-west-1".into()], ..spec() };
        assert_eq!(role_arn(&gov, &input()), "arn:aws-us-gov:iam::111122223333:role/trailwatch-read");
    }

    /// The key policy statements CloudTrail needs to encrypt for the trail (as the
    /// CloudTrail documentation gives them), and the role's decrypt through S3.
    #[test]
    fn key_policy_statements_let_cloudtrail_encrypt_and_the_role_decrypt() {
        let key = "arn:aws:kms:us-east-1:111122223333:key/k";
        let docs = documents(&spec(), &SetupInput { kms: KmsSetup::Existing(key.into()), ..input() });
        let statements = docs.key_policy_statements.expect("statements for an existing key");
        let policy = json!({"Version": "2012-10-17", "Statement": statements});
        let trail = "arn:aws:cloudtrail:us-east-1:111122223333:trail/main-trail";
        let encrypt = [("aws:SourceArn", trail), ("kms:EncryptionContext:aws:cloudtrail:arn", trail)];
        assert!(evaluate(&policy, &Request { action: "kms:GenerateDataKey", resource: "*", context: &encrypt }));
        let other = [("aws:SourceArn", "arn:aws:cloudtrail:us-east-1:111122223333:trail/other"), encrypt[1]];
        assert!(!evaluate(&policy, &Request { action: "kms:GenerateDataKey", resource: "*", context: &other }));
        assert!(evaluate(&policy, &Request { action: "kms:DescribeKey", resource: "*", context: &encrypt[..1] }));
        let decrypt =
            [("kms:ViaService", "s3.us-east-1.amazonaws.com"), ("kms:EncryptionContext:aws:cloudtrail:arn", trail)];
        assert!(evaluate(&policy, &Request { action: "kms:Decrypt", resource: "*", context: &decrypt }));
        let reader = statements.as_array().unwrap().iter().find(|s| s["Action"] == "kms:Decrypt").unwrap();
        assert_eq!(reader["Principal"]["AWS"], docs.role_arn);
        assert!(docs.notes.iter().any(|n| n.contains("InsufficientEncryptionPolicyException")));
    }

    #[test]
    fn organization_trails_write_and_read_under_the_organization() {
        let org = AccountSpec { organization_id: Some("o-abc123defg".into()), ..spec() };
        let docs = documents(&org, &input());
        let t = &docs.cloudformation;
        assert_eq!(t["Resources"]["Trail"]["Properties"]["IsOrganizationTrail"], true);
        let write = &t["Resources"]["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][1];
        let paths: Vec<&str> =
            write["Resource"].as_array().unwrap().iter().map(|r| r["Fn::Sub"].as_str().unwrap()).collect();
        assert!(paths.iter().any(|p| p.ends_with("/team/AWSLogs/o-abc123defg/*")), "{paths:?}");
        assert!(paths.iter().any(|p| p.ends_with("/team/AWSLogs/${AWS::AccountId}/*")), "{paths:?}");
        assert!(write["Condition"]["StringEquals"]["aws:SourceArn"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .contains(":trail/main-trail"));
        assert!(docs.notes.iter().any(|n| n.contains("management account")));
        assert_eq!(read_scope(&org), "team/AWSLogs/o-abc123defg/");
        // A plain trail is not an organization trail.
        assert!(cloudformation(&spec(), &input())["Resources"]["Trail"]["Properties"]
            .get("IsOrganizationTrail")
            .is_none());
    }

    #[test]
    fn template_wires_trail_bucket_topic_queue_role_and_key() {
        let t = cloudformation(&spec(), &SetupInput { kms: KmsSetup::Create, ..input() });
        let r = &t["Resources"];
        let trail = &r["Trail"]["Properties"];
        assert_eq!(trail["EnableLogFileValidation"], true);
        assert_eq!(trail["IsLogging"], true);
        assert_eq!(trail["IsMultiRegionTrail"], true);
        assert_eq!(trail["S3KeyPrefix"], "team");
        assert_eq!(trail["KMSKeyId"], json!({"Fn::GetAtt": ["TrailKey", "Arn"]}));
        assert_eq!(r["TrailKey"]["Properties"]["EnableKeyRotation"], true);
        assert_eq!(r["TrailBucket"]["Properties"]["BucketName"], "example-trail");
        assert_eq!(r["TrailQueue"]["Properties"]["QueueName"], "trailwatch");
        assert_eq!(r["TrailTopic"]["Properties"]["SignatureVersion"], "2");
        assert_eq!(r["TrailwatchReadRole"]["Properties"]["RoleName"], "trailwatch-read");
        // The DLQ outlives the queue's retention.
        let queue = r["TrailQueue"]["Properties"]["MessageRetentionPeriod"].as_u64().unwrap();
        let dlq = r["DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"].as_u64().unwrap();
        assert!(dlq > queue, "DLQ {dlq} s, queue {queue} s");
        // Service permissions are pinned to this trail / topic.
        let write = &r["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][1];
        assert_eq!(write["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control");
        assert!(r["TrailTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
            ["aws:SourceArn"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(":trail/main-trail"));
        // The role's policy names the partition through the template, never a literal `arn:aws:`.
        let role_policy = serde_json::to_string(&r["TrailwatchReadRole"]["Properties"]["Policies"]).unwrap();
        assert!(!role_policy.contains("\"arn:aws:"), "{role_policy}");
        assert!(role_policy.contains("AWS::Partition"));
        assert_eq!(
            r["TrailwatchReadRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
                ["StringEquals"]["sts:ExternalId"],
            "ext-123"
        );
        // Every Ref / GetAtt names a resource of the template.
        let names: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        let mut refs = Vec::new();
        collect_refs(&t["Resources"], &mut refs);
        collect_refs(&t["Outputs"], &mut refs);
        for name in refs {
            assert!(names.contains(&name.as_str()), "dangling reference {name}");
        }
    }

    #[test]
    fn without_a_trail_name_the_role_reads_any_trail_of_its_account() {
        let policy = permission_policy(&spec(), &SetupInput { trail_name: None, ..input() });
        let named = |arn: &str| {
            evaluate(&policy, &Request { action: "cloudtrail:GetTrailStatus", resource: arn, context: &[] })
        };
        assert!(named("arn:aws:cloudtrail:eu-west-1:111122223333:trail/whatever"));
        assert!(!named("arn:aws:cloudtrail:eu-west-1:999900001111:trail/whatever"));
        assert_eq!(
            cloudformation(&spec(), &SetupInput { trail_name: None, ..input() })["Resources"]["Trail"]["Properties"]
                ["TrailName"],
            DEFAULT_TRAIL_NAME
        );
    }

    #[test]
    fn queue_arns_from_urls() {
        assert_eq!(
            queue_arn("https://sqs.eu-west-1.amazonaws.com/111122223333/q", "us-east-1").as_deref(),
            Some("arn:aws:sqs:eu-west-1:111122223333:q")
        );
        assert_eq!(
            queue_arn("http://127.0.0.1:5000/123456789012/q", "us-east-1").as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:q")
        );
        assert_eq!(queue_arn("https://sqs.eu-west-1.amazonaws.com/nope", "x"), None);
    }

    #[test]
    fn trust_requires_the_external_id() {
        let t = trust_policy(&input());
        let s = &t["Statement"][0];
        assert_eq!(s["Principal"]["AWS"], "arn:aws:iam::444455556666:role/trailwatch");
        assert_eq!(s["Condition"]["StringEquals"]["sts:ExternalId"], "ext-123");
        assert_eq!(s["Action"], "sts:AssumeRole");
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("Ref") {
                    if !r.starts_with("AWS::") {
                        out.push(r.clone());
                    }
                }
                if let Some(Value::Array(a)) = m.get("Fn::GetAtt") {
                    out.push(a[0].as_str().unwrap().to_owned());
                }
                m.values().for_each(|x| collect_refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }
}
