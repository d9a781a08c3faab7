//! Who lives in a simulated account and what ordinary traffic they produce.
//!
//! The mix is read-heavy (Describe/Get/List), with sessions from IAM Identity Center (SSO)
//! and SAML users, CI access keys that assume a deploy role, workload roles (EC2, Lambda)
//! making S3 data events, KMS and SSM calls, AWS service principals, console sign-ins, and a
//! few percent of failed calls (AccessDenied, UnauthorizedOperation, throttling).

use serde_json::{json, Value};

use crate::record::{self, build, Call, Caller, SimRecord};
use crate::rng::Rng;

/// A simulated AWS account and its principals.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub name: String,
    /// (user name, user id, access key id)
    pub users: Vec<(String, String, String)>,
    pub sso_admin_role: String,
    pub sso_readonly_role: String,
    pub role_ids: Vec<(String, String)>,
    pub instances: Vec<String>,
    pub buckets: Vec<String>,
    pub kms_key: String,
}

const ACCOUNT_NAMES: &[&str] = &["prod", "staging", "dev", "security", "shared-services", "data", "sandbox", "logging"];
pub const HUMANS: &[&str] = &["alice", "bob", "carol"];
pub const SSO_PEOPLE: &[&str] = &["dana@example.com", "erik@example.com", "fatima@example.com", "gus@example.com"];
pub const SAML_PEOPLE: &[&str] = &["hana@example.com", "ivan@example.com"];
pub const OFFICE_IPS: &[&str] = &["198.51.100.10", "198.51.100.11", "198.51.100.24", "198.51.100.37", "2001:db8:4::17"];
pub const CI_IPS: &[&str] = &["192.0.2.10", "192.0.2.11"];
const WORKLOAD_IPS: &[&str] = &["10.0.12.44", "10.0.13.9", "10.0.44.201"];
const CLI_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1017-aws exe/x86_64.ubuntu.22 prompt/off",
    "aws-cli/2.13.5 Python/3.11.4 Darwin/23.2.0 exe/x86_64 prompt/off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.150.0",
    "Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.2",
];
pub const BROWSER: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36";

impl Account {
    pub fn generate(rng: &mut Rng, index: usize) -> Account {
        let id = format!("{:012}", rng.range(100_000_000_000, 999_999_999_999));
        let name = ACCOUNT_NAMES.get(index).map(|s| s.to_string()).unwrap_or_else(|| format!("account-{}", index + 1));
        let mut users: Vec<(String, String, String)> = HUMANS
            .iter()
            .chain(["deploy-bot"].iter())
            .map(|u| (u.to_string(), format!("AIDA{}", rng.upper(17)), format!("AKIA{}", rng.upper(16))))
            .collect();
        users.sort();
        let sso_admin_role = format!("AWSReservedSSO_AdministratorAccess_{}", rng.hex(16));
        let sso_readonly_role = format!("AWSReservedSSO_ReadOnlyAccess_{}", rng.hex(16));
        let role_ids =
            ["app-server", "orders-processor", "deploy", "SAML-Engineers", &sso_admin_role, &sso_readonly_role]
                .iter()
                .map(|r| (r.to_string(), format!("AROA{}", rng.upper(17))))
                .collect();
        Account {
            sso_admin_role,
            sso_readonly_role,
            instances: (0..6).map(|_| format!("i-0{}", rng.hex(16))).collect(),
            buckets: vec![format!("{name}-app-data-{id}"), format!("{name}-artifacts-{id}")],
            kms_key: format!("arn:aws:kms:us-east-1:{id}:key/{}", rng.uuid()),
            id,
            name,
            users,
            role_ids,
        }
    }

    pub fn trail_bucket(&self) -> String {
        format!("cloudtrail-logs-{}", self.id)
    }

    fn user(&self, name: &str) -> &(String, String, String) {
        self.users.iter().find(|u| u.0 == name).expect("known user")
    }

    fn role_id(&self, role: &str) -> String {
        self.role_ids.iter().find(|r| r.0 == role).map(|r| r.1.clone()).expect("every simulated role has an id")
    }

    pub fn iam_user(&self, name: &str, ip: &str, agent: &str) -> Caller {
        let (user, uid, key) = self.user(name);
        Caller {
            identity: json!({
                "type": "IAMUser", "principalId": uid, "arn": format!("arn:aws:iam::{}:user/{user}", self.id),
                "accountId": self.id, "accessKeyId": key, "userName": user
            }),
            ip: ip.into(),
            user_agent: agent.into(),
            console: false,
            service: false,
        }
    }

    /// A role session. `path` is the role path (`/` or `/aws-reserved/sso.amazonaws.com/`).
    pub fn session(&self, rng: &mut Rng, role: &str, path: &str, session: &str, ip: &str, agent: &str) -> Caller {
        let role_id = self.role_id(role);
        Caller {
            identity: json!({
                "type": "AssumedRole",
                "principalId": format!("{role_id}:{session}"),
                "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", self.id),
                "accountId": self.id,
                "accessKeyId": format!("ASIA{}", rng.upper(16)),
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": role_id,
                        "arn": format!("arn:aws:iam::{}:role{path}{role}", self.id), "accountId": self.id, "userName": role},
                    "webIdFederationData": {},
                    "attributes": {"creationDate": "2024-01-01T00:00:00Z", "mfaAuthenticated": "false"}
                }
            }),
            ip: ip.into(),
            user_agent: agent.into(),
            console: false,
            service: false,
        }
    }

    pub fn sso(&self, rng: &mut Rng, admin: bool, person: &str, ip: &str, console: bool) -> Caller {
        let role = if admin { &self.sso_admin_role } else { &self.sso_readonly_role };
        let agent = if console { BROWSER.to_string() } else { rng.pick(CLI_AGENTS).to_string() };
        let mut c = self.session(rng, role, "/aws-reserved/sso.amazonaws.com/", person, ip, &agent);
        c.console = console;
        c
    }

    pub fn root(&self, ip: &str) -> Caller {
        Caller {
            identity: json!({
                "type": "Root", "principalId": self.id, "arn": format!("arn:aws:iam::{}:root", self.id),
                "accountId": self.id, "accessKeyId": ""
            }),
            ip: ip.into(),
            user_agent: BROWSER.into(),
            console: true,
            service: false,
        }
    }

    pub fn service(service: &str) -> Caller {
        Caller {
            identity: json!({"type": "AWSService", "invokedBy": service}),
            ip: service.into(),
            user_agent: service.into(),
            console: false,
            service: true,
        }
    }
}

/// One ordinary event in `account`/`region` at `time_ms`.
pub fn ordinary(rng: &mut Rng, acct: &Account, region: &str, time_ms: i64) -> SimRecord {
    let kind = *rng.weighted(&[(34, 0u8), (14, 1), (8, 2), (24, 3), (8, 4), (7, 5), (2, 6), (3, 7)]);
    let (caller, call) = match kind {
        0 => human_api(rng, acct, region),
        1 => human_console(rng, acct, region),
        2 => ci(rng, acct, region),
        3 => workload(rng, acct, region),
        4 => lambda(rng, acct),
        5 => aws_service(rng, acct, region),
        6 => console_login(rng, acct),
        _ => assume_role_chain(rng, acct),
    };
    build(rng, &caller, call, &acct.id, region, time_ms)
}

fn human_caller(rng: &mut Rng, acct: &Account) -> Caller {
    let ip = *rng.pick(OFFICE_IPS);
    let agent = rng.pick(CLI_AGENTS).to_string();
    match rng.below(3) {
        0 => {
            let user = *rng.pick(HUMANS);
            acct.iam_user(user, ip, &agent)
        }
        1 => {
            let admin = rng.chance(0.4);
            let person = *rng.pick(SSO_PEOPLE);
            acct.sso(rng, admin, person, ip, false)
        }
        _ => {
            let person = *rng.pick(SAML_PEOPLE);
            acct.session(rng, "SAML-Engineers", "/", person, ip, &agent)
        }
    }
}

fn human_api(rng: &mut Rng, acct: &Account, region: &str) -> (Caller, Call<'static>) {
    let caller = human_caller(rng, acct);
    let mut call = read_call(rng, acct, region);
    maybe_fail(rng, &mut call, &caller, acct, 0.06);
    (caller, call)
}

fn human_console(rng: &mut Rng, acct: &Account, region: &str) -> (Caller, Call<'static>) {
    let ip = *rng.pick(OFFICE_IPS);
    let person = *rng.pick(SSO_PEOPLE);
    let admin = rng.chance(0.3);
    let caller = acct.sso(rng, admin, person, ip, true);
    let mut call = read_call(rng, acct, region);
    maybe_fail(rng, &mut call, &caller, acct, 0.03);
    (caller, call)
}

fn read_call(rng: &mut Rng, acct: &Account, region: &str) -> Call<'static> {
    match rng.below(16) {
        0..=3 => Call::new(
            "ec2.amazonaws.com",
            "DescribeInstances",
            true,
            json!({"instancesSet": {}, "filterSet": {}, "maxResults": 1000}),
            Value::Null,
        ),
        4 => Call::new(
            "ec2.amazonaws.com",
            "DescribeSecurityGroups",
            true,
            json!({"securityGroupSet": {}, "filterSet": {}}),
            Value::Null,
        ),
        5 => Call::new("ec2.amazonaws.com", "DescribeVpcs", true, json!({"vpcSet": {}, "filterSet": {}}), Value::Null),
        6 => Call::new("s3.amazonaws.com", "ListBuckets", true, json!({"Host": "s3.amazonaws.com"}), Value::Null),
        7 => {
            let bucket = rng.pick(&acct.buckets).clone();
            Call::new(
                "s3.amazonaws.com",
                "GetBucketPolicy",
                true,
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "policy": ""}),
                Value::Null,
            )
        }
        8 => Call::new("sts.amazonaws.com", "GetCallerIdentity", true, Value::Null, Value::Null),
        9 => Call::new("iam.amazonaws.com", "ListRoles", true, json!({"maxItems": 100}), Value::Null),
        10 => Call::new("iam.amazonaws.com", "GetUser", true, json!({"userName": rng.pick(HUMANS)}), Value::Null),
        11 => Call::new("monitoring.amazonaws.com", "DescribeAlarms", true, json!({"maxRecords": 100}), Value::Null),
        12 => Call::new("logs.amazonaws.com", "DescribeLogGroups", true, json!({"limit": 50}), Value::Null),
        13 => Call::new("lambda.amazonaws.com", "ListFunctions20150331", true, json!({"maxItems": 50}), Value::Null),
        14 => Call::new("cloudformation.amazonaws.com", "DescribeStacks", true, Value::Null, Value::Null),
        _ => {
            let instance = rng.pick(&acct.instances).clone();
            Call::new(
                "ec2.amazonaws.com",
                "DescribeInstanceStatus",
                true,
                json!({"instancesSet": {"items": [{"instanceId": instance}]}, "filterSet": {}, "includeAllInstances": false}),
                Value::Null,
            )
        }
    }
}

fn maybe_fail(rng: &mut Rng, call: &mut Call<'_>, caller: &Caller, acct: &Account, p: f64) {
    if !rng.chance(p) {
        return;
    }
    call.error = Some(match (call.source, rng.below(5)) {
        ("ec2.amazonaws.com", _) => record::denied(call, caller, &acct.id),
        (_, 0) => ("ThrottlingException", "Rate exceeded".into()),
        _ => record::denied(call, caller, &acct.id),
    });
}

fn ci(rng: &mut Rng, acct: &Account, region: &str) -> (Caller, Call<'static>) {
    let ip = *rng.pick(CI_IPS);
    let agent = CLI_AGENTS[4];
    if rng.chance(0.5) {
        let caller = acct.iam_user("deploy-bot", ip, agent);
        let session = format!("ci-{}", rng.range(1000, 9999));
        let call = Call::new(
            "sts.amazonaws.com",
            "AssumeRole",
            false,
            json!({"roleArn": format!("arn:aws:iam::{}:role/deploy", acct.id), "roleSessionName": session, "durationSeconds": 3600}),
            json!({"credentials": {"accessKeyId": format!("ASIA{}", rng.upper(16)), "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": "Jan 1, 2030, 1:00:00 AM"},
                   "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", acct.role_id("deploy")),
                                       "arn": format!("arn:aws:sts::{}:assumed-role/deploy/{session}", acct.id)}}),
        );
        return (caller, call);
    }
    let session = format!("ci-{}", rng.range(1000, 9999));
    let caller = acct.session(rng, "deploy", "/", &session, ip, agent);
    let bucket = acct.buckets[1].clone();
    let call = match rng.below(3) {
        0 => Call::new(
            "cloudformation.amazonaws.com",
            "DescribeStackEvents",
            true,
            json!({"stackName": format!("{}-app", acct.name)}),
            Value::Null,
        ),
        1 => Call::new(
            "ecr.amazonaws.com",
            "GetAuthorizationToken",
            true,
            json!({"registryIds": [acct.id]}),
            Value::Null,
        ),
        _ => {
            let key = format!("builds/{}/app.zip", rng.hex(12));
            let mut c = Call::new(
                "s3.amazonaws.com",
                "PutObject",
                false,
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "key": key}),
                json!({"x-amz-server-side-encryption": "aws:kms"}),
            );
            c.data = true;
            c.resources = Some(json!([
                {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
                {"accountId": acct.id, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
            ]));
            c
        }
    };
    (caller, call)
}

fn workload(rng: &mut Rng, acct: &Account, region: &str) -> (Caller, Call<'static>) {
    let instance = rng.pick(&acct.instances).clone();
    let ip = *rng.pick(WORKLOAD_IPS);
    let caller = acct.session(rng, "app-server", "/", &instance, ip, CLI_AGENTS[2]);
    let bucket = acct.buckets[0].clone();
    let call = match rng.below(10) {
        0..=4 => {
            let key = format!("orders/{}/{}.json", rng.range(2020, 2026), rng.hex(10));
            let (name, read) = if rng.chance(0.7) { ("GetObject", true) } else { ("PutObject", false) };
            let additional = json!({"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader", "x-amz-id-2": rng.alnum(40), "bytesTransferredOut": rng.range(200, 90_000)});
            record::s3_object(name, read, &bucket, &key, region, &acct.id, additional)
        }
        5..=7 => kms_decrypt(rng, acct),
        8 => Call::new(
            "ssm.amazonaws.com",
            "GetParameter",
            true,
            json!({"name": "/app/db/password", "withDecryption": true}),
            Value::Null,
        ),
        _ => Call::new("sts.amazonaws.com", "GetCallerIdentity", true, Value::Null, Value::Null),
    };
    (caller, call)
}

fn kms_decrypt(rng: &mut Rng, acct: &Account) -> Call<'static> {
    let mut c = Call::new(
        "kms.amazonaws.com",
        if rng.chance(0.7) { "Decrypt" } else { "GenerateDataKey" },
        true,
        json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"aws:s3:arn": format!("arn:aws:s3:::{}", acct.buckets[0])}}),
        Value::Null,
    );
    c.resources = Some(json!([{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": acct.kms_key}]));
    c
}

fn lambda(rng: &mut Rng, acct: &Account) -> (Caller, Call<'static>) {
    let caller = acct.session(
        rng,
        "orders-processor",
        "/",
        "orders-processor",
        "3.92.17.140",
        "aws-sdk-nodejs/2.1550.0 linux/v20.11.1 exec-env/AWS_Lambda_nodejs20.x promise",
    );
    let call = if rng.chance(0.5) {
        kms_decrypt(rng, acct)
    } else {
        Call::new("dynamodb.amazonaws.com", "DescribeTable", true, json!({"tableName": "orders"}), Value::Null)
    };
    (caller, call)
}

fn aws_service(rng: &mut Rng, acct: &Account, region: &str) -> (Caller, Call<'static>) {
    match rng.below(4) {
        0 => {
            let bucket = acct.trail_bucket();
            let caller = Account::service("cloudtrail.amazonaws.com");
            let call = Call::new(
                "s3.amazonaws.com",
                "GetBucketAcl",
                true,
                json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), "acl": ""}),
                Value::Null,
            );
            (caller, call)
        }
        1 => (
            Account::service("config.amazonaws.com"),
            Call::new(
                "ec2.amazonaws.com",
                "DescribeSecurityGroups",
                true,
                json!({"securityGroupSet": {}, "filterSet": {}}),
                Value::Null,
            ),
        ),
        2 => (
            Account::service("autoscaling.amazonaws.com"),
            Call::new(
                "ec2.amazonaws.com",
                "DescribeInstanceStatus",
                true,
                json!({"instancesSet": {"items": [{"instanceId": rng.pick(&acct.instances)}]}, "includeAllInstances": true}),
                Value::Null,
            ),
        ),
        _ => {
            // An AWS-internal service event (key rotation), as KMS records it.
            let caller = Caller {
                identity: json!({"accountId": acct.id, "invokedBy": "AWS Internal"}),
                ip: "AWS Internal".into(),
                user_agent: "AWS Internal".into(),
                console: false,
                service: true,
            };
            let mut call = Call::new("kms.amazonaws.com", "RotateKey", false, Value::Null, Value::Null);
            call.event_type = "AwsServiceEvent";
            call.resources = Some(json!([{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": acct.kms_key}]));
            (caller, call)
        }
    }
}

fn console_login(rng: &mut Rng, acct: &Account) -> (Caller, Call<'static>) {
    let user = *rng.pick(HUMANS);
    let ip = *rng.pick(OFFICE_IPS);
    let mut caller = acct.iam_user(user, ip, BROWSER);
    caller.identity["accessKeyId"] = json!("");
    let mut call = record::console_login(true, true);
    if let Some(extra) = call.additional.as_mut() {
        extra["MFAIdentifier"] = json!(format!("arn:aws:iam::{}:mfa/{user}", acct.id));
    }
    (caller, call)
}

/// SSO and SAML users getting role credentials: the first link of an AssumeRole chain.
fn assume_role_chain(rng: &mut Rng, acct: &Account) -> (Caller, Call<'static>) {
    if rng.chance(0.5) {
        let person = *rng.pick(SAML_PEOPLE);
        let caller = Caller {
            identity: json!({
                "type": "SAMLUser",
                "principalId": format!("Xx6KpUPAuIHu2XH2ouVBvEKx1Kc=:{person}"),
                "userName": person,
                "identityProvider": "Xx6KpUPAuIHu2XH2ouVBvEKx1Kc="
            }),
            ip: rng.pick(OFFICE_IPS).to_string(),
            user_agent: BROWSER.into(),
            console: false,
            service: false,
        };
        let call = Call::new(
            "sts.amazonaws.com",
            "AssumeRoleWithSAML",
            false,
            json!({"sAMLAssertionID": format!("_{}", rng.hex(32)), "roleSessionName": person,
                   "principalArn": format!("arn:aws:iam::{}:saml-provider/Okta", acct.id),
                   "roleArn": format!("arn:aws:iam::{}:role/SAML-Engineers", acct.id), "durationSeconds": 3600}),
            json!({"subjectType": "persistent", "issuer": "http://www.okta.com/exk1example", "audience": "https://signin.aws.amazon.com/saml",
                   "assumedRoleUser": {"arn": format!("arn:aws:sts::{}:assumed-role/SAML-Engineers/{person}", acct.id)}}),
        );
        return (caller, call);
    }
    // An SSO session chaining into the workload role (e.g. to debug the app).
    let person = *rng.pick(SSO_PEOPLE);
    let ip = *rng.pick(OFFICE_IPS);
    let caller = acct.sso(rng, true, person, ip, false);
    let call = Call::new(
        "sts.amazonaws.com",
        "AssumeRole",
        false,
        json!({"roleArn": format!("arn:aws:iam::{}:role/app-server", acct.id), "roleSessionName": person}),
        json!({"assumedRoleUser": {"arn": format!("arn:aws:sts::{}:assumed-role/app-server/{person}", acct.id)}}),
    );
    (caller, call)
}
