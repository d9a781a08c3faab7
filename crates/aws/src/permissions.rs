//! Every AWS call trailwatch makes, the IAM action it needs and the resource it acts on:
//! the source of truth for the policies `setup` writes ([`crate::setup`]).
//!
//! Two tests hold the table to the code and the policies to the table: every SDK operation
//! called in trailwatch's source is listed here (and nothing listed is never called), and
//! every generated policy allows each listed call on its real resource and allows nothing
//! else ([`evaluate`] is a small IAM evaluator for our own documents: `Allow` statements,
//! `*`/`?` wildcards in actions and resources, the condition operators `setup` uses).

use serde_json::Value;

/// Who makes the call: the read-only role in the monitored account, or trailwatch's own
/// identity (which assumes that role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Role,
    Own,
}

/// What a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A log or digest object of the trail (`bucket/[prefix/]AWSLogs/<account or org>/…`).
    TrailObject,
    /// The bucket, listed under the trail's prefix (`s3:prefix` condition).
    TrailPrefixListing,
    Queue,
    Topic,
    Trail,
    /// The trail's KMS key, through S3 (`kms:ViaService`), for a CloudTrail object.
    Key,
    /// The account's role (`sts:AssumeRole`).
    Role,
    /// An SNS topic an alert sink publishes to (`[[sinks]] kind = "sns"`).
    AlertTopic,
    /// An action without resource-level permissions (`"Resource": "*"`).
    Any,
}

/// One call: the SDK operation (snake case, as in the Rust SDK), its IAM action, what it acts
/// on, who makes it and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub operation: &'static str,
    pub action: &'static str,
    pub target: Target,
    pub caller: Caller,
    pub why: &'static str,
}

const fn call(
    operation: &'static str,
    action: &'static str,
    target: Target,
    caller: Caller,
    why: &'static str,
) -> Call {
    Call { operation, action, target, caller, why }
}

/// Every call. `get_caller_identity` needs no permission and is not listed.
pub const CALLS: &[Call] = &[
    call(
        "assume_role",
        "sts:AssumeRole",
        Target::Role,
        Caller::Own,
        "every account through its role, with its external ID",
    ),
    call("get_object", "s3:GetObject", Target::TrailObject, Caller::Role, "read log and digest files"),
    call("head_object", "s3:GetObject", Target::TrailObject, Caller::Role, "doctor: a log's encryption"),
    call("list_objects_v2", "s3:ListBucket", Target::TrailPrefixListing, Caller::Role, "backfill, integrity, doctor"),
    call("receive_message", "sqs:ReceiveMessage", Target::Queue, Caller::Role, "consume notifications"),
    call("delete_message_batch", "sqs:DeleteMessage", Target::Queue, Caller::Role, "acknowledge committed messages"),
    call(
        "change_message_visibility",
        "sqs:ChangeMessageVisibility",
        Target::Queue,
        Caller::Role,
        "retry backoff, release on shutdown",
    ),
    call(
        "change_message_visibility_batch",
        "sqs:ChangeMessageVisibility",
        Target::Queue,
        Caller::Role,
        "extend in-flight messages",
    ),
    call(
        "get_queue_attributes",
        "sqs:GetQueueAttributes",
        Target::Queue,
        Caller::Role,
        "doctor, status: depth and DLQ",
    ),
    call(
        "list_subscriptions_by_topic",
        "sns:ListSubscriptionsByTopic",
        Target::Topic,
        Caller::Role,
        "doctor: the queue is subscribed",
    ),
    call(
        "describe_trails",
        "cloudtrail:DescribeTrails",
        Target::Any,
        Caller::Role,
        "doctor: the trail writing to the bucket",
    ),
    call(
        "get_trail",
        "cloudtrail:GetTrail",
        Target::Trail,
        Caller::Role,
        "validate --trail-arn: where the trail writes",
    ),
    call("get_trail_status", "cloudtrail:GetTrailStatus", Target::Trail, Caller::Role, "doctor: the trail is logging"),
    call("get_event_selectors", "cloudtrail:GetEventSelectors", Target::Trail, Caller::Role, "doctor: event volume"),
    call("list_public_keys", "cloudtrail:ListPublicKeys", Target::Any, Caller::Role, "integrity: digest signing keys"),
    call("lookup_events", "cloudtrail:LookupEvents", Target::Any, Caller::Role, "import --event-history"),
    call("get_object", "kms:Decrypt", Target::Key, Caller::Role, "read SSE-KMS encrypted log and digest files"),
    call("publish", "sns:Publish", Target::AlertTopic, Caller::Own, "alert sinks of kind sns"),
];

/// Operations trailwatch calls that need no permission.
pub const UNCHECKED: &[&str] = &["get_caller_identity"];

/// The calls the role makes that a trail without a KMS key does not need.
pub fn needed(call: &Call, kms: bool) -> bool {
    call.target != Target::Key || kms
}

/// A request to evaluate: action, resource ARN and the condition keys it carries.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a [(&'a str, &'a str)],
}

/// Whether `policy` (an identity policy document) allows `request`: an `Allow` statement
/// whose action, resource and every condition match, and no matching `Deny`.
pub fn evaluate(policy: &Value, request: &Request<'_>) -> bool {
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.clone(),
        s @ Value::Object(_) => vec![s.clone()],
        _ => return false,
    };
    let matching = |s: &Value| {
        any_matches(&s["Action"], request.action, true)
            && any_matches(&s["Resource"], request.resource, false)
            && conditions_hold(&s["Condition"], request.context)
    };
    let denied = statements.iter().any(|s| s["Effect"] == "Deny" && matching(s));
    !denied && statements.iter().any(|s| s["Effect"] == "Allow" && matching(s))
}

/// The actions a policy's `Allow` statements name.
pub fn allowed_actions(policy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Value::Array(statements) = &policy["Statement"] {
        for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
            match &s["Action"] {
                Value::String(a) => out.push(a.clone()),
                Value::Array(a) => out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned)),
                _ => {}
            }
        }
    }
    out
}

fn any_matches(patterns: &Value, value: &str, case_insensitive: bool) -> bool {
    let one = |p: &str| {
        if case_insensitive {
            wildcard(&p.to_ascii_lowercase(), &value.to_ascii_lowercase())
        } else {
            wildcard(p, value)
        }
    };
    match patterns {
        Value::String(p) => one(p),
        Value::Array(ps) => ps.iter().filter_map(Value::as_str).any(one),
        _ => false,
    }
}

/// IAM's `*` (any run) and `?` (one character) matching.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Every operator's every key must hold (a key absent from the context fails, as in IAM).
fn conditions_hold(conditions: &Value, context: &[(&str, &str)]) -> bool {
    let Value::Object(ops) = conditions else { return true };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else { return false };
        keys.iter().all(|(key, wanted)| {
            let Some((_, actual)) = context.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else { return false };
            let values: Vec<&str> = match wanted {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                Value::Bool(b) => vec![if *b { "true" } else { "false" }],
                _ => return false,
            };
            match op.as_str() {
                "StringEquals" | "ArnEquals" | "Bool" => values.iter().any(|w| w == actual),
                "StringLike" | "ArnLike" => values.iter().any(|w| wildcard(w, actual)),
                _ => false,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("arn:aws:s3:::b/AWSLogs/1/*", "arn:aws:s3:::b/AWSLogs/1/CloudTrail/x.json.gz"));
        assert!(!wildcard("arn:aws:s3:::b/AWSLogs/1/*", "arn:aws:s3:::b/AWSLogs/2/CloudTrail/x.json.gz"));
        assert!(wildcard("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext"));
        assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
        assert!(wildcard("*", "") && wildcard("AWSLogs/o-1/*", "AWSLogs/o-1/"));
    }

    #[test]
    fn evaluation_needs_action_resource_and_conditions() {
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::b",
             "Condition": {"StringLike": {"s3:prefix": ["AWSLogs/1/*"]}}},
            {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::b", "Condition": {"Bool": {"aws:SecureTransport": false}}}
        ]});
        let list = |prefix: &str, tls: &str| {
            let context = [("s3:prefix", prefix), ("aws:SecureTransport", tls)];
            evaluate(&policy, &Request { action: "s3:ListBucket", resource: "arn:aws:s3:::b", context: &context })
        };
        assert!(list("AWSLogs/1/CloudTrail/", "true"));
        assert!(!list("AWSLogs/2/", "true"), "another account's prefix");
        assert!(!list("AWSLogs/1/", "false"), "denied without TLS");
        let no_context = Request { action: "s3:ListBucket", resource: "arn:aws:s3:::b", context: &[] };
        assert!(!evaluate(&policy, &no_context), "a missing condition key fails");
    }
}
