//! Named attack, tamper and human-error scenarios that detection must catch.
//!
//! Each scenario happens in the first simulated account ("prod") and first region, at a
//! fixed point of the simulated window, from principals and addresses chosen to be
//! recognisable: attacker addresses are in 203.0.113.0/24 (TEST-NET-3), which ordinary
//! traffic never uses.

use serde_json::{json, Value};

use crate::record::{build, Call, Caller, SimRecord};
use crate::rng::Rng;
use crate::traffic::{Account, BROWSER};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    TrailTampering,
    RootUsage,
    ConsoleLoginWithoutMfa,
    FailedLoginBurst,
    SecurityGroupOpenWorld,
    AdminPolicyAttached,
    AccessKeyForOtherUser,
    BulkTerminate,
    InstanceStopStartUnusualIp,
}

impl Scenario {
    pub const ALL: [Scenario; 9] = [
        Scenario::TrailTampering,
        Scenario::RootUsage,
        Scenario::ConsoleLoginWithoutMfa,
        Scenario::FailedLoginBurst,
        Scenario::SecurityGroupOpenWorld,
        Scenario::AdminPolicyAttached,
        Scenario::AccessKeyForOtherUser,
        Scenario::BulkTerminate,
        Scenario::InstanceStopStartUnusualIp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::TrailTampering => "trail-tampering",
            Scenario::RootUsage => "root-usage",
            Scenario::ConsoleLoginWithoutMfa => "console-login-without-mfa",
            Scenario::FailedLoginBurst => "failed-login-burst",
            Scenario::SecurityGroupOpenWorld => "security-group-open-world",
            Scenario::AdminPolicyAttached => "admin-policy-attached",
            Scenario::AccessKeyForOtherUser => "access-key-for-other-user",
            Scenario::BulkTerminate => "bulk-terminate",
            Scenario::InstanceStopStartUnusualIp => "instance-stop-start-unusual-ip",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::TrailTampering => "a stolen admin session blinds the trail: event selectors drop management events, the trail is pointed at another bucket with validation off, the log bucket's policy and lifecycle are changed, logging is stopped and the trail deleted",
            Scenario::RootUsage => "the root user signs in to the console and creates an access key",
            Scenario::ConsoleLoginWithoutMfa => "an IAM user signs in to the console without MFA",
            Scenario::FailedLoginBurst => "25 failed console sign-ins from one address within three minutes",
            Scenario::SecurityGroupOpenWorld => "a security group is opened to 0.0.0.0/0 and ::/0 on SSH (22) and RDP (3389)",
            Scenario::AdminPolicyAttached => "AdministratorAccess is attached to a user and to a workload role",
            Scenario::AccessKeyForOtherUser => "an IAM user creates an access key for another user",
            Scenario::BulkTerminate => "40 instances terminated in four calls within two minutes",
            Scenario::InstanceStopStartUnusualIp => "an instance is stopped and started again from an address never seen before",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The scenario's records, starting at `start_ms`, in `acct`/`region`.
    pub fn records(self, rng: &mut Rng, acct: &Account, region: &str, start_ms: i64) -> Vec<SimRecord> {
        let mut out = Vec::new();
        let mut t = start_ms;
        // Ids and request ids come from their own stream so that call arguments may use `rng`.
        let mut ids = rng.fork(1);
        let mut emit = |caller: &Caller, call: Call<'_>, step_ms: i64| {
            out.push(build(&mut ids, caller, call, &acct.id, region, t));
            t += step_ms;
        };
        match self {
            Scenario::TrailTampering => {
                let caller = acct.sso(rng, true, "dana@example.com", "203.0.113.66", false);
                let trail = format!("arn:aws:cloudtrail:{region}:{}:trail/org-trail", acct.id);
                let bucket = acct.trail_bucket();
                emit(
                    &caller,
                    Call::new(
                        "cloudtrail.amazonaws.com",
                        "PutEventSelectors",
                        false,
                        json!({"trailName": trail, "eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": [], "excludeManagementEventSources": []}]}),
                        json!({"trailARN": trail, "eventSelectors": [{"readWriteType": "ReadOnly", "includeManagementEvents": false, "dataResources": [], "excludeManagementEventSources": []}]}),
                    ),
                    40_000,
                );
                emit(
                    &caller,
                    Call::new(
                        "cloudtrail.amazonaws.com",
                        "UpdateTrail",
                        false,
                        json!({"name": trail, "s3BucketName": "exfil-bucket-7731", "enableLogFileValidation": false}),
                        json!({"name": "org-trail", "s3BucketName": "exfil-bucket-7731", "trailARN": trail, "logFileValidationEnabled": false, "isMultiRegionTrail": true, "includeGlobalServiceEvents": true}),
                    ),
                    35_000,
                );
                let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:DeleteObject", "s3:PutObject"], "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
                emit(
                    &caller,
                    Call::new(
                        "s3.amazonaws.com",
                        "PutBucketPolicy",
                        false,
                        json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "bucketPolicy": policy, "policy": ""}),
                        Value::Null,
                    ),
                    30_000,
                );
                emit(
                    &caller,
                    Call::new(
                        "s3.amazonaws.com",
                        "PutBucketLifecycle",
                        false,
                        json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "lifecycle": "",
                           "LifecycleConfiguration": {"Rule": {"ID": "cleanup", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}}}),
                        Value::Null,
                    ),
                    45_000,
                );
                emit(
                    &caller,
                    Call::new("cloudtrail.amazonaws.com", "StopLogging", false, json!({"name": trail}), Value::Null),
                    60_000,
                );
                emit(
                    &caller,
                    Call::new("cloudtrail.amazonaws.com", "DeleteTrail", false, json!({"name": trail}), Value::Null),
                    0,
                );
            }
            Scenario::RootUsage => {
                let caller = acct.root("203.0.113.40");
                let login = crate::record::console_login(true, true);
                emit(&caller, login, 90_000);
                emit(
                    &caller,
                    Call::new("iam.amazonaws.com", "ListUsers", true, json!({"maxItems": 100}), Value::Null),
                    60_000,
                );
                emit(
                    &caller,
                    Call::new(
                        "iam.amazonaws.com",
                        "CreateAccessKey",
                        false,
                        Value::Null,
                        json!({"accessKey": {"accessKeyId": format!("AKIA{}", rng.upper(16)), "status": "Active", "createDate": "Jan 1, 2030, 0:00:00 AM"}}),
                    ),
                    0,
                );
            }
            Scenario::ConsoleLoginWithoutMfa => {
                let mut caller = acct.iam_user("bob", "198.51.100.24", BROWSER);
                caller.identity["accessKeyId"] = json!("");
                let login = crate::record::console_login(true, false);
                emit(&caller, login, 0);
            }
            Scenario::FailedLoginBurst => {
                for i in 0..25 {
                    let mut caller = if i % 3 == 0 {
                        Caller {
                            identity: json!({"type": "IAMUser", "principalId": "", "accountId": acct.id, "accessKeyId": "", "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}),
                            ip: String::new(),
                            user_agent: String::new(),
                            console: false,
                            service: false,
                        }
                    } else {
                        acct.iam_user("alice", "", "")
                    };
                    caller.ip = "203.0.113.23".into();
                    caller.user_agent = BROWSER.into();
                    caller.identity["accessKeyId"] = json!("");
                    let mut login = crate::record::console_login(false, false);
                    login.error = Some(("Failed authentication", "Failed authentication".into()));
                    let mut r = build(rng, &caller, login, &acct.id, region, t);
                    // CloudTrail reports a failed sign-in in responseElements and errorMessage,
                    // without an errorCode.
                    r.response_elements = Some(json!({"ConsoleLogin": "Failure"}));
                    r.error_code = None;
                    out.push(r);
                    t += 7_000;
                }
            }
            Scenario::SecurityGroupOpenWorld => {
                let caller = acct.iam_user("carol", "198.51.100.37", crate::traffic::BROWSER);
                let group = format!("sg-0{}", rng.hex(16));
                for (port, cidr, v6) in [(22, "0.0.0.0/0", false), (3389, "0.0.0.0/0", false), (22, "::/0", true)] {
                    let range = if v6 {
                        json!({"ipv6Ranges": {"items": [{"cidrIpv6": cidr}]}, "ipRanges": {}})
                    } else {
                        json!({"ipRanges": {"items": [{"cidrIp": cidr}]}, "ipv6Ranges": {}})
                    };
                    let mut perm = json!({"ipProtocol": "tcp", "fromPort": port, "toPort": port, "groups": {}, "prefixListIds": {}});
                    perm.as_object_mut().expect("object").extend(range.as_object().expect("object").clone());
                    emit(
                        &caller,
                        Call::new(
                            "ec2.amazonaws.com",
                            "AuthorizeSecurityGroupIngress",
                            false,
                            json!({"groupId": group, "ipPermissions": {"items": [perm]}}),
                            json!({"requestId": rng.uuid(), "_return": true, "securityGroupRuleSet": {"items": [{"groupId": group, "isEgress": false, "ipProtocol": "tcp", "fromPort": port, "toPort": port}]}}),
                        ),
                        20_000,
                    );
                }
            }
            Scenario::AdminPolicyAttached => {
                let caller = acct.iam_user(
                    "alice",
                    "198.51.100.10",
                    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off",
                );
                let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
                emit(
                    &caller,
                    Call::new(
                        "iam.amazonaws.com",
                        "AttachUserPolicy",
                        false,
                        json!({"userName": "carol", "policyArn": admin}),
                        Value::Null,
                    ),
                    30_000,
                );
                emit(
                    &caller,
                    Call::new(
                        "iam.amazonaws.com",
                        "AttachRolePolicy",
                        false,
                        json!({"roleName": "app-server", "policyArn": admin}),
                        Value::Null,
                    ),
                    0,
                );
            }
            Scenario::AccessKeyForOtherUser => {
                let caller = acct.iam_user(
                    "alice",
                    "198.51.100.10",
                    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off",
                );
                emit(
                    &caller,
                    Call::new(
                        "iam.amazonaws.com",
                        "CreateAccessKey",
                        false,
                        json!({"userName": "deploy-bot"}),
                        json!({"accessKey": {"userName": "deploy-bot", "accessKeyId": format!("AKIA{}", rng.upper(16)), "status": "Active", "createDate": "Jan 1, 2030, 0:00:00 AM"}}),
                    ),
                    0,
                );
            }
            Scenario::BulkTerminate => {
                let caller = acct.session(
                    rng,
                    "deploy",
                    "/",
                    "ci-6610",
                    "192.0.2.10",
                    "Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0",
                );
                for _ in 0..4 {
                    let ids: Vec<String> = (0..10).map(|_| format!("i-0{}", rng.hex(16))).collect();
                    let items: Vec<Value> = ids.iter().map(|i| json!({"instanceId": i})).collect();
                    let states: Vec<Value> = ids.iter().map(|i| json!({"instanceId": i, "currentState": {"code": 32, "name": "shutting-down"}, "previousState": {"code": 16, "name": "running"}})).collect();
                    emit(
                        &caller,
                        Call::new(
                            "ec2.amazonaws.com",
                            "TerminateInstances",
                            false,
                            json!({"instancesSet": {"items": items}}),
                            json!({"requestId": rng.uuid(), "instancesSet": {"items": states}}),
                        ),
                        30_000,
                    );
                }
            }
            Scenario::InstanceStopStartUnusualIp => {
                let caller = acct.sso(rng, true, "erik@example.com", "203.0.113.7", false);
                let instance = acct.instances[0].clone();
                emit(
                    &caller,
                    Call::new(
                        "ec2.amazonaws.com",
                        "StopInstances",
                        false,
                        json!({"instancesSet": {"items": [{"instanceId": instance}]}, "force": false}),
                        json!({"requestId": rng.uuid(), "instancesSet": {"items": [{"instanceId": instance, "currentState": {"code": 64, "name": "stopping"}, "previousState": {"code": 16, "name": "running"}}]}}),
                    ),
                    240_000,
                );
                emit(
                    &caller,
                    Call::new(
                        "ec2.amazonaws.com",
                        "StartInstances",
                        false,
                        json!({"instancesSet": {"items": [{"instanceId": instance}]}}),
                        json!({"requestId": rng.uuid(), "instancesSet": {"items": [{"instanceId": instance, "currentState": {"code": 0, "name": "pending"}, "previousState": {"code": 80, "name": "stopped"}}]}}),
                    ),
                    0,
                );
            }
        }
        out
    }
}
