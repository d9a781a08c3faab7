//! Building CloudTrail records the way CloudTrail writes them (field order included).

use model::timefmt::format_millis;
use serde::Serialize;
use serde_json::{json, Value};

use crate::rng::Rng;

/// One record, serialised in CloudTrail's field order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimRecord {
    pub event_version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<Value>,
    pub event_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    pub aws_region: String,
    #[serde(rename = "sourceIPAddress", skip_serializing_if = "Option::is_none")]
    pub source_ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    #[serde(rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(rename = "eventID")]
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub management_event: Option<bool>,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID", skip_serializing_if = "Option::is_none")]
    pub shared_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_account_id: Option<String>,
    pub event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_credential_from_console: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insight_details: Option<Value>,
    #[serde(skip)]
    pub time_ms: i64,
}

/// Who makes a call, from where, with what client.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Value,
    pub ip: String,
    pub user_agent: String,
    pub console: bool,
    /// AWS service principals call without TLS details and with their DNS name as IP.
    pub service: bool,
}

/// What a call did.
pub struct Call<'a> {
    pub source: &'a str,
    pub name: &'a str,
    pub read_only: bool,
    pub params: Value,
    pub response: Value,
    pub resources: Option<Value>,
    /// Data event (S3 object, Lambda invoke…): `managementEvent` false, category `Data`.
    pub data: bool,
    pub error: Option<(&'a str, String)>,
    pub additional: Option<Value>,
    pub event_type: &'static str,
}

impl<'a> Call<'a> {
    pub fn new(source: &'a str, name: &'a str, read_only: bool, params: Value, response: Value) -> Call<'a> {
        Call {
            source,
            name,
            read_only,
            params,
            response,
            resources: None,
            data: false,
            error: None,
            additional: None,
            event_type: "AwsApiCall",
        }
    }
}

/// A `ConsoleLogin` sign-in (`signin.amazonaws.com`, `AwsConsoleSignIn`), as CloudTrail
/// records it: the outcome in `responseElements`, MFA use in `additionalEventData`.
pub fn console_login(success: bool, mfa_used: bool) -> Call<'static> {
    let outcome = if success { "Success" } else { "Failure" };
    let mut call =
        Call::new("signin.amazonaws.com", "ConsoleLogin", false, Value::Null, json!({"ConsoleLogin": outcome}));
    call.event_type = "AwsConsoleSignIn";
    call.additional = Some(json!({
        "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
        "MobileVersion": "No",
        "MFAUsed": if mfa_used { "Yes" } else { "No" }
    }));
    call
}

/// An S3 object-level data event (`GetObject`, `PutObject`, …) on `bucket`/`key`, with the
/// request details S3 records in `additionalEventData`.
pub fn s3_object<'a>(
    name: &'a str,
    read_only: bool,
    bucket: &str,
    key: &str,
    region: &str,
    account: &str,
    additional: Value,
) -> Call<'a> {
    let mut c = Call::new(
        "s3.amazonaws.com",
        name,
        read_only,
        json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "key": key}),
        Value::Null,
    );
    c.data = true;
    c.additional = Some(additional);
    c.resources = Some(json!([
        {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
        {"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
    ]));
    c
}

/// The error of a call `caller` was not allowed to make, worded as each service words it.
pub fn denied(call: &Call<'_>, caller: &Caller, account: &str) -> (&'static str, String) {
    if call.source == "ec2.amazonaws.com" {
        return ("Client.UnauthorizedOperation", "You are not authorized to perform this operation.".into());
    }
    let who = caller.identity["arn"].as_str().unwrap_or("unknown");
    let action = format!("{}:{}", call.source.trim_end_matches(".amazonaws.com"), call.name);
    (
        "AccessDenied",
        format!("User: {who} is not authorized to perform: {action} on resource: arn:aws:iam::{account}:* because no identity-based policy allows the {action} action"),
    )
}

pub fn build(rng: &mut Rng, caller: &Caller, call: Call<'_>, account: &str, region: &str, time_ms: i64) -> SimRecord {
    let host = format!("{}.{region}.amazonaws.com", call.source.trim_end_matches(".amazonaws.com"));
    let failed = call.error.is_some();
    let (error_code, error_message) = match call.error {
        Some((code, message)) => (Some(code.to_string()), Some(message)),
        None => (None, None),
    };
    SimRecord {
        event_version: if call.data { "1.09" } else { "1.10" },
        user_identity: Some(caller.identity.clone()),
        event_time: format_millis(time_ms),
        event_source: Some(call.source.to_string()),
        event_name: Some(call.name.to_string()),
        aws_region: region.to_string(),
        source_ip_address: Some(caller.ip.clone()),
        user_agent: Some(caller.user_agent.clone()),
        error_code,
        error_message,
        request_parameters: Some(call.params),
        response_elements: Some(if failed { Value::Null } else { call.response }),
        additional_event_data: call.additional,
        request_id: Some(rng.uuid()),
        event_id: rng.uuid(),
        read_only: Some(call.read_only),
        resources: call.resources,
        event_type: call.event_type,
        management_event: Some(!call.data),
        recipient_account_id: account.to_string(),
        shared_event_id: None,
        vpc_endpoint_id: None,
        vpc_endpoint_account_id: None,
        event_category: if call.data { "Data" } else { "Management" },
        tls_details: (!caller.service).then(|| {
            json!({"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": host})
        }),
        session_credential_from_console: caller.console.then_some("true"),
        insight_details: None,
        time_ms,
    }
}

/// An Insights record (`AwsCloudTrailInsight`): no identity, details under `insightDetails`.
pub fn insight(
    rng: &mut Rng,
    account: &str,
    region: &str,
    time_ms: i64,
    shared: &str,
    state: &str,
    name: &str,
) -> SimRecord {
    let stats = if state == "Start" {
        json!({"baseline": {"average": 0.0862}, "insight": {"average": 14.0}, "insightDuration": 1})
    } else {
        json!({"baseline": {"average": 0.0862}, "insight": {"average": 9.3}, "insightDuration": 7, "baselineDuration": 11003})
    };
    SimRecord {
        event_version: "1.08",
        user_identity: None,
        event_time: format_millis(time_ms),
        event_source: None,
        event_name: None,
        aws_region: region.to_string(),
        source_ip_address: None,
        user_agent: None,
        error_code: None,
        error_message: None,
        request_parameters: None,
        response_elements: None,
        additional_event_data: None,
        request_id: None,
        event_id: rng.uuid(),
        read_only: None,
        resources: None,
        event_type: "AwsCloudTrailInsight",
        management_event: None,
        recipient_account_id: account.to_string(),
        shared_event_id: Some(shared.to_string()),
        vpc_endpoint_id: None,
        vpc_endpoint_account_id: None,
        event_category: "Insight",
        tls_details: None,
        session_credential_from_console: None,
        insight_details: Some(json!({
            "state": state,
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "insightType": "ApiCallRateInsight",
            "insightContext": {"statistics": stats, "attributions": [
                {"attribute": "userIdentityArn", "insight": [{"value": format!("arn:aws:iam::{account}:user/deploy-bot"), "average": 14.0}],
                 "baseline": [{"value": format!("arn:aws:iam::{account}:user/deploy-bot"), "average": 0.0862}]}
            ]}
        })),
        time_ms,
    }
}
