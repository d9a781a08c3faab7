//! What to create in a monitored account, as IAM JSON and CloudFormation.
//!
//! * The **trust policy** of the read-only role: trailwatch's principal may assume it only
//!   with the account's external ID (the confused-deputy guard).
//! * The **permission policy**: read the trail's objects and list its prefix, consume the
//!   queue, and the read-only CloudTrail/SNS calls `doctor` and integrity validation make.
//!   Nothing else: no write to the bucket, no access outside the trail's prefix.
//! * A **CloudFormation template** creating the whole wiring: a multi-region trail with log
//!   file validation, its bucket (private, encrypted, versioned) with the bucket policy
//!   CloudTrail needs, the SNS topic and its policy, the queue with a dead-letter queue and the
//!   policy that lets only the topic send to it, the subscription, and the role.
//!
//! Every policy that lets a service act is pinned to the trail or topic by `aws:SourceArn`.

use serde_json::{json, Value};

use crate::account::AccountSpec;

/// Inputs that are not in the account's configuration.
#[derive(Debug, Clone)]
pub struct SetupInput {
    /// The IAM principal trailwatch runs as (a role or user ARN).
    pub principal: String,
    pub external_id: String,
    /// The trail's name (for new trails; `doctor` finds existing ones by bucket).
    pub trail_name: String,
    /// A KMS key the trail encrypts with, if any (the role then needs kms:Decrypt on it).
    pub kms_key_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SetupDocuments {
    pub trust_policy: Value,
    pub permission_policy: Value,
    pub cloudformation: Value,
}

/// `arn:aws:sqs:<region>:<account>:<name>` for a queue URL
/// (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
pub fn queue_arn(url: &str, fallback_region: &str) -> Option<String> {
    let path = url.split("://").nth(1)?;
    let mut parts = path.split('/');
    parts.next()?; // the host: its region, if any, is read by queue_url_region
    let account = parts.next().filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))?;
    let name = parts.next().filter(|n| !n.is_empty())?;
    let region = crate::account::queue_url_region(url).unwrap_or_else(|| fallback_region.to_owned());
    Some(format!("arn:aws:sqs:{region}:{account}:{name}"))
}

/// The key prefix the trail writes under, with a trailing `/` (`[prefix/]AWSLogs/`).
fn logs_prefix(spec: &AccountSpec) -> String {
    match spec.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}/AWSLogs/"),
        None => "AWSLogs/".into(),
    }
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

/// The role's permissions; `bucket`, `queue_arn` and `topic_arn` may be CloudFormation
/// expressions (then the policy is embedded in the template).
fn permission_statements(
    spec: &AccountSpec,
    bucket: Value,
    queue_arn: Value,
    topic_arn: Option<Value>,
    kms: Option<&str>,
) -> Vec<Value> {
    let prefix = logs_prefix(spec);
    let bucket_arn = join(vec![json!("arn:aws:s3:::"), bucket.clone()]);
    let objects_arn = join(vec![json!("arn:aws:s3:::"), bucket, json!(format!("/{prefix}*"))]);
    let mut statements = vec![
        json!({"Sid": "ReadTrailObjects", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects_arn}),
        json!({"Sid": "ListTrailPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn.clone(),
               "Condition": {"StringLike": {"s3:prefix": [format!("{prefix}*")]}}}),
        json!({"Sid": "LocateBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": bucket_arn}),
        json!({"Sid": "ConsumeQueue", "Effect": "Allow",
               "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
               "Resource": queue_arn}),
        json!({"Sid": "ReadTrailSettings", "Effect": "Allow",
               "Action": ["cloudtrail:DescribeTrails", "cloudtrail:GetTrail", "cloudtrail:GetTrailStatus", "cloudtrail:ListPublicKeys", "cloudtrail:GetEventSelectors"],
               "Resource": "*"}),
    ];
    if let Some(topic) = topic_arn {
        statements.push(json!({"Sid": "ReadTopicWiring", "Effect": "Allow",
            "Action": ["sns:GetTopicAttributes", "sns:ListSubscriptionsByTopic"], "Resource": topic}));
    }
    if let Some(key) = kms {
        statements
            .push(json!({"Sid": "DecryptTrailObjects", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}));
    }
    statements
}

/// A plain string when every part is one; `Fn::Join` when a part is an expression.
fn join(parts: Vec<Value>) -> Value {
    if parts.iter().all(Value::is_string) {
        Value::String(parts.iter().filter_map(Value::as_str).collect())
    } else {
        json!({"Fn::Join": ["", parts]})
    }
}

/// The permission policy for an existing trail (bucket and queue from the configuration).
pub fn permission_policy(spec: &AccountSpec, input: &SetupInput) -> Value {
    let bucket = spec.bucket.clone().unwrap_or_else(|| "<trail bucket>".into());
    let queue = spec
        .queue_url
        .as_deref()
        .and_then(|u| queue_arn(u, &spec.home_region()))
        .unwrap_or_else(|| format!("arn:aws:sqs:{}:{}:<queue>", spec.home_region(), spec.account_id));
    let topic = spec.topic_arn.clone().map(Value::String);
    json!({
        "Version": "2012-10-17",
        "Statement": permission_statements(spec, json!(bucket), json!(queue), topic, input.kms_key_arn.as_deref())
    })
}

/// The CloudFormation template that creates the trail and its whole wiring in the account.
pub fn cloudformation(spec: &AccountSpec, input: &SetupInput) -> Value {
    let prefix = logs_prefix(spec);
    let trail_arn = json!({"Fn::Sub": format!("arn:${{AWS::Partition}}:cloudtrail:${{AWS::Region}}:${{AWS::AccountId}}:trail/{}", input.trail_name)});
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
    let mut queue = json!({
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": 300,
            "MessageRetentionPeriod": 1_209_600,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, "maxReceiveCount": 5}
        }
    });
    let queue_name = spec.queue_url.as_deref().and_then(|u| u.rsplit('/').next()).filter(|n| !n.is_empty());
    if let Some(name) = queue_name {
        queue["Properties"]["QueueName"] = json!(name);
    }
    let mut trail_props = json!({
        "TrailName": input.trail_name,
        "IsLogging": true,
        "IsMultiRegionTrail": true,
        "IncludeGlobalServiceEvents": true,
        "EnableLogFileValidation": true,
        "S3BucketName": bucket_ref,
        "SnsTopicName": {"Fn::GetAtt": ["TrailTopic", "TopicName"]}
    });
    if let Some(p) = spec.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
        trail_props["S3KeyPrefix"] = json!(p);
    }
    if let Some(k) = &input.kms_key_arn {
        trail_props["KMSKeyId"] = json!(k);
    }
    let role_policy = json!({
        "Version": "2012-10-17",
        "Statement": permission_statements(spec, bucket_ref.clone(), json!({"Fn::GetAtt": ["TrailQueue", "Arn"]}),
            Some(json!({"Ref": "TrailTopic"})), input.kms_key_arn.as_deref())
    });
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!("trailwatch: CloudTrail trail {} with log file validation, its bucket, SNS topic, SQS queue (+DLQ) and the read-only role trailwatch assumes", input.trail_name),
        "Resources": {
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
                         "Resource": {"Fn::Sub": format!("${{TrailBucket.Arn}}/{prefix}${{AWS::AccountId}}/*")},
                         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}},
                        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                         "Resource": [{"Fn::GetAtt": ["TrailBucket", "Arn"]}, {"Fn::Sub": "${TrailBucket.Arn}/*"}],
                         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                    ]}
                }
            },
            "TrailTopic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "CloudTrail log delivery"}},
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
                    "Description": "Read-only access for trailwatch: the trail's objects, its queue, its settings",
                    "AssumeRolePolicyDocument": trust_policy(input),
                    "Policies": [{"PolicyName": "trailwatch-read", "PolicyDocument": role_policy}]
                }
            }
        },
        "Outputs": {
            "RoleArn": {"Value": {"Fn::GetAtt": ["TrailwatchReadRole", "Arn"]}},
            "BucketName": {"Value": bucket_ref},
            "QueueUrl": {"Value": {"Ref": "TrailQueue"}},
            "TopicArn": {"Value": {"Ref": "TrailTopic"}},
            "TrailArn": {"Value": {"Fn::GetAtt": ["Trail", "Arn"]}}
        }
    })
}

pub fn documents(spec: &AccountSpec, input: &SetupInput) -> SetupDocuments {
    SetupDocuments {
        trust_policy: trust_policy(input),
        permission_policy: permission_policy(spec, input),
        cloudformation: cloudformation(spec, input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AccountSpec {
        AccountSpec {
            name: "prod".into(),
            account_id: "111122223333".into(),
            regions: vec!["us-east-1".into()],
            bucket: Some("example-trail".into()),
            queue_url: Some("https://sqs.eu-west-1.amazonaws.com/111122223333/trailwatch".into()),
            topic_arn: Some("arn:aws:sns:us-east-1:111122223333:trail".into()),
            prefix: Some("team/".into()),
            ..Default::default()
        }
    }

    fn input() -> SetupInput {
        SetupInput {
            principal: "arn:aws:iam::444455556666:role/trailwatch".into(),
            external_id: "ext-123".into(),
            trail_name: "org-trail".into(),
            kms_key_arn: None,
        }
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

    #[test]
    fn permissions_are_read_only_and_scoped_to_the_trail_prefix() {
        let p = permission_policy(&spec(), &input());
        let statements = p["Statement"].as_array().unwrap();
        let actions: Vec<String> = statements
            .iter()
            .flat_map(|s| match &s["Action"] {
                Value::String(a) => vec![a.clone()],
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
                _ => vec![],
            })
            .collect();
        for a in &actions {
            let verb = a.split(':').nth(1).unwrap();
            assert!(
                ["Get", "List", "Describe", "Receive"].iter().any(|p| verb.starts_with(p))
                    || ["sqs:DeleteMessage", "sqs:ChangeMessageVisibility"].contains(&a.as_str()),
                "{a} is not read-only"
            );
        }
        assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
        let objects = statements.iter().find(|s| s["Sid"] == "ReadTrailObjects").unwrap();
        assert_eq!(objects["Resource"], "arn:aws:s3:::example-trail/team/AWSLogs/*");
        let list = statements.iter().find(|s| s["Sid"] == "ListTrailPrefix").unwrap();
        assert_eq!(list["Condition"]["StringLike"]["s3:prefix"][0], "team/AWSLogs/*");
        let queue = statements.iter().find(|s| s["Sid"] == "ConsumeQueue").unwrap();
        assert_eq!(queue["Resource"], "arn:aws:sqs:eu-west-1:111122223333:trailwatch");
    }

    #[test]
    fn template_wires_trail_bucket_topic_queue_and_role() {
        let t = cloudformation(&spec(), &input());
        let r = &t["Resources"];
        let trail = &r["Trail"]["Properties"];
        assert_eq!(trail["EnableLogFileValidation"], true);
        assert_eq!(trail["IsLogging"], true);
        assert_eq!(trail["IsMultiRegionTrail"], true);
        assert_eq!(trail["S3KeyPrefix"], "team");
        assert_eq!(r["TrailBucket"]["Properties"]["BucketName"], "example-trail");
        assert_eq!(r["TrailQueue"]["Properties"]["QueueName"], "trailwatch");
        assert_eq!(r["TrailQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"], 5);
        assert_eq!(r["TrailSubscription"]["Properties"]["Protocol"], "sqs");
        // Service permissions are pinned to this trail / topic.
        let write = &r["TrailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][1];
        assert_eq!(write["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control");
        assert!(write["Resource"]["Fn::Sub"].as_str().unwrap().ends_with("/team/AWSLogs/${AWS::AccountId}/*"));
        assert!(r["TrailTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]
            ["aws:SourceArn"]["Fn::Sub"]
            .as_str()
            .unwrap()
            .ends_with(":trail/org-trail"));
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
