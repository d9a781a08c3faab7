//! SigmaHQ CloudTrail rules against events made from each rule's intent: one that must match,
//! and a near miss that must not (the same call failing, from another service, or what the
//! rule's own filter excludes). Rules are found by file name; the rest of the pack follows.

use detect::RuleSet;
use serde_json::{json, Value};
use test_support::shared_data;

fn ev(source: &str, name: &str) -> Value {
    json!({"eventVersion": "1.09", "eventSource": source, "eventName": name, "eventTime": "2024-03-05T14:10:42Z",
           "eventID": "66666666-7777-4888-9999-aaaaaaaaaaaa", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
           "userAgent": "aws-cli/2.15.0", "recipientAccountId": "111122223333",
           "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/alice", "userName": "alice"}})
}

fn with(mut v: Value, path: &[&str], value: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        if cur.get(*p).is_none_or(|x| !x.is_object()) {
            cur[*p] = json!({});
        }
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = value;
    v
}

/// (rule file stem, must match, must not match)
fn cases() -> Vec<(&'static str, Value, Value)> {
    let failed = |v: Value| with(v, &["errorCode"], json!("AccessDenied"));
    vec![
        (
            "aws_cloudtrail_bedrock_guardrail_deleted",
            ev("bedrock.amazonaws.com", "DeleteGuardrail"),
            ev("bedrock.amazonaws.com", "GetGuardrail"),
        ),
        (
            "aws_cloudtrail_bedrock_guardrail_updated",
            ev("bedrock.amazonaws.com", "UpdateGuardrail"),
            ev("bedrock-agent.amazonaws.com", "UpdateGuardrail"),
        ),
        (
            "aws_cloudtrail_bucket_deleted",
            ev("s3.amazonaws.com", "DeleteBucket"),
            failed(ev("s3.amazonaws.com", "DeleteBucket")),
        ),
        (
            "aws_cloudtrail_console_login_failed_authentication",
            with(ev("signin.amazonaws.com", "ConsoleLogin"), &["errorMessage"], json!("Failed authentication")),
            with(ev("signin.amazonaws.com", "ConsoleLogin"), &["responseElements", "ConsoleLogin"], json!("Success")),
        ),
        (
            "aws_cloudtrail_console_login_success_without_mfa",
            with(
                with(ev("signin.amazonaws.com", "ConsoleLogin"), &["additionalEventData", "MFAUsed"], json!("No")),
                &["responseElements", "ConsoleLogin"],
                json!("Success"),
            ),
            with(
                with(ev("signin.amazonaws.com", "ConsoleLogin"), &["additionalEventData", "MFAUsed"], json!("Yes")),
                &["responseElements", "ConsoleLogin"],
                json!("Success"),
            ),
        ),
        (
            "aws_cloudtrail_disable_logging",
            ev("cloudtrail.amazonaws.com", "StopLogging"),
            ev("cloudtrail.amazonaws.com", "StartLogging"),
        ),
        (
            "aws_cloudtrail_guardduty_detector_deleted_or_updated",
            with(ev("guardduty.amazonaws.com", "UpdateDetector"), &["requestParameters", "enable"], json!("false")),
            with(ev("guardduty.amazonaws.com", "UpdateDetector"), &["requestParameters", "enable"], json!("true")),
        ),
        (
            "aws_cloudtrail_imds_malicious_usage",
            with(
                ev("s3.amazonaws.com", "ListBuckets"),
                &["userIdentity", "arn"],
                json!("arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0123456789abcdef0"),
            ),
            with(
                ev("ssm.amazonaws.com", "UpdateInstanceInformation"),
                &["userIdentity", "arn"],
                json!("arn:aws:sts::111122223333:assumed-role/aws:ec2-instance/i-0123456789abcdef0"),
            ),
        ),
        (
            "aws_cloudtrail_new_acl_entries",
            ev("ec2.amazonaws.com", "CreateNetworkAclEntry"),
            ev("ec2.amazonaws.com", "DescribeNetworkAcls"),
        ),
        (
            "aws_cloudtrail_new_route_added",
            ev("ec2.amazonaws.com", "CreateRoute"),
            ev("ec2.amazonaws.com", "CreateRouteTable"),
        ),
        (
            "aws_cloudtrail_pua_trufflehog",
            with(ev("sts.amazonaws.com", "GetCallerIdentity"), &["userAgent"], json!("TruffleHog")),
            with(ev("sts.amazonaws.com", "GetCallerIdentity"), &["userAgent"], json!("TruffleHog/3.63 (scanner)")),
        ),
        (
            "aws_cloudtrail_region_enabled",
            ev("account.amazonaws.com", "EnableRegion"),
            ev("account.amazonaws.com", "DisableRegion"),
        ),
        (
            "aws_cloudtrail_security_group_change_ingress_egress",
            ev("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
            ev("ec2.amazonaws.com", "DescribeSecurityGroups"),
        ),
        (
            "aws_cloudtrail_security_group_change_loadbalancer",
            ev("elasticloadbalancing.amazonaws.com", "SetSecurityGroups"),
            ev("ec2.amazonaws.com", "SetSecurityGroups"),
        ),
        (
            "aws_cloudtrail_security_group_change_rds",
            ev("rds.amazonaws.com", "CreateDBSecurityGroup"),
            ev("rds.amazonaws.com", "DescribeDBSecurityGroups"),
        ),
        (
            "aws_cloudtrail_ssm_malicious_usage",
            ev("ssm.amazonaws.com", "SendCommand"),
            failed(ev("ssm.amazonaws.com", "SendCommand")),
        ),
        (
            "aws_cloudtrail_vpc_flow_logs_deleted",
            with(ev("ec2.amazonaws.com", "DeleteFlowLogs"), &["errorCode"], json!("Success")),
            failed(ev("ec2.amazonaws.com", "DeleteFlowLogs")),
        ),
        (
            "aws_config_disable_recording",
            ev("config.amazonaws.com", "StopConfigurationRecorder"),
            ev("config.amazonaws.com", "StartConfigurationRecorder"),
        ),
        (
            "aws_console_getsignintoken",
            with(ev("signin.amazonaws.com", "GetSigninToken"), &["userAgent"], json!("python-requests/2.31")),
            with(ev("signin.amazonaws.com", "GetSigninToken"), &["userAgent"], json!("Jersey/${project.version}")),
        ),
        ("aws_delete_identity", ev("ses.amazonaws.com", "DeleteIdentity"), ev("ses.amazonaws.com", "ListIdentities")),
    ]
}

#[test]
fn sigmahq_rules_match_their_intent_and_not_the_near_miss() {
    let dir = shared_data("sigma/rules");
    for (stem, yes, no) in cases() {
        let set = RuleSet::from_yaml_text(&std::fs::read_to_string(dir.join(format!("{stem}.yml"))).unwrap(), stem)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let rule = &set.rules[0];
        assert!(rule.matches(&yes), "{stem} should match {yes}");
        assert!(!rule.matches(&no), "{stem} should not match {no}");
        // The same through the index and the projection.
        let projected = set.parse_record(yes.to_string().as_bytes()).unwrap();
        assert_eq!(set.matching(&projected).count(), 1, "{stem}");
    }
}
