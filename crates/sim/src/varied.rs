//! Traffic as varied as real trails: the `realistic` and `high-cardinality` profiles.
//!
//! Real trails are heavy-tailed: a few user agents, addresses, principals and calls make
//! most events, and a long tail of values is seen once or a handful of times, so the number
//! of distinct values keeps growing with the trail. Each dimension here is a population of
//! values ranked by frequency: an event draws a rank from a Zipf-like law over a population
//! whose size is proportional to the number of events, and the value of rank `k` is
//! *computed* from `(seed, dimension, k)` — never stored — so memory stays constant however
//! many events are written, and the same rank is the same value in every file.
//!
//! The classic profile ([`crate::traffic`]) keeps its small fixed cast: the scenario tests
//! and the demo know its people by name.

use serde_json::{json, Value};

use crate::record::{self, build, Call, Caller, SimRecord};
use crate::rng::Rng;
use crate::traffic::Account;

/// How varied the simulated trail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    /// A fixed cast (3 IAM users, 6 SSO/SAML people, 5 office addresses, 5 CLI agents).
    Classic,
    /// Heavy-tailed values whose distinct counts grow with the trail, like public trails
    /// (about one distinct user agent per 8 events and one address per 4 at 100 k events).
    Realistic,
    /// Stress for value-keyed structures: ≥ 0.3 distinct user agents and ≥ 0.5 distinct
    /// source addresses per event.
    HighCardinality,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Classic, Profile::Realistic, Profile::HighCardinality];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Classic => "classic",
            Profile::Realistic => "realistic",
            Profile::HighCardinality => "high-cardinality",
        }
    }

    pub fn parse(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// One dimension's law: `size` values (at least `min`, else `per_event` × events), drawn
/// with exponent `s` (larger: more concentrated on the head).
#[derive(Debug, Clone, Copy)]
struct Law {
    size: u64,
    s: f64,
}

impl Law {
    fn new(events: u64, per_event: f64, min: u64, s: f64) -> Law {
        Law { size: ((events as f64 * per_event) as u64).max(min), s }
    }

    /// A rank in `1..=size`, by inverting the continuous power law x^-s on [1, size + 1).
    fn draw(&self, rng: &mut Rng) -> u64 {
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let n = (self.size + 1) as f64;
        let x = if (self.s - 1.0).abs() < 1e-9 {
            n.powf(u)
        } else {
            let a = 1.0 - self.s;
            ((n.powf(a) - 1.0) * u + 1.0).powf(1.0 / a)
        };
        (x as u64).clamp(1, self.size)
    }
}

/// An index in `0..n`, index 0 the most likely (accounts and regions are heavy-tailed too).
pub(crate) fn zipf_index(rng: &mut Rng, n: usize, s: f64) -> u64 {
    Law { size: n as u64, s }.draw(rng) - 1
}

/// The populations of one simulated trail.
#[derive(Debug, Clone)]
pub struct Population {
    seed: u64,
    agents: Law,
    browsers: Law,
    addresses: Law,
    people: Law,
    users: Law,
    roles: Law,
    instances: Law,
    functions: Law,
    buckets: Law,
    /// CI runs and web-identity sessions: each makes many calls under one session name.
    runs: Law,
    calls: Law,
}

const DIM_AGENT: u64 = 1;
const DIM_BROWSER: u64 = 2;
const DIM_ADDRESS: u64 = 3;
const DIM_PERSON: u64 = 4;
const DIM_USER: u64 = 5;
const DIM_ROLE: u64 = 6;
const DIM_INSTANCE: u64 = 7;
const DIM_FUNCTION: u64 = 8;
const DIM_BUCKET: u64 = 9;
const DIM_KEY: u64 = 10;
const DIM_RUN: u64 = 11;

impl Population {
    pub fn new(profile: Profile, seed: u64, events: u64) -> Population {
        let high = profile == Profile::HighCardinality;
        Population {
            seed,
            agents: if high { Law::new(events, 1.0, 200, 0.6) } else { Law::new(events, 0.25, 200, 1.0) },
            browsers: if high { Law::new(events, 0.5, 50, 0.6) } else { Law::new(events, 0.01, 50, 1.1) },
            addresses: if high { Law::new(events, 2.0, 500, 0.6) } else { Law::new(events, 0.5, 500, 1.0) },
            people: Law::new(events, if high { 0.02 } else { 0.002 }, 40, 1.0),
            users: Law::new(events, if high { 0.01 } else { 0.001 }, 20, 1.1),
            roles: Law::new(events, if high { 0.005 } else { 0.0005 }, 30, 1.1),
            instances: Law::new(events, if high { 0.05 } else { 0.005 }, 40, 0.9),
            functions: Law::new(events, if high { 0.01 } else { 0.001 }, 20, 1.0),
            buckets: Law::new(events, if high { 0.01 } else { 0.001 }, 10, 1.0),
            runs: Law::new(events, if high { 0.05 } else { 0.01 }, 20, 0.7),
            calls: Law { size: CALLS.len() as u64, s: 1.2 },
        }
    }

    /// The deterministic generator of value `rank` of dimension `dim`.
    fn value_rng(&self, dim: u64, rank: u64) -> Rng {
        Rng::new(self.seed ^ 0xA5A5_0000_0000_0000).fork(dim.wrapping_mul(0x1_0000_0001) ^ rank)
    }

    fn agent(&self, rng: &mut Rng) -> String {
        let rank = self.agents.draw(rng);
        user_agent(&mut self.value_rng(DIM_AGENT, rank), rank)
    }

    fn browser(&self, rng: &mut Rng) -> String {
        let rank = self.browsers.draw(rng);
        browser(&mut self.value_rng(DIM_BROWSER, rank))
    }

    /// A caller's address: public v4 or v6, or a private one behind a VPC endpoint
    /// (then with the endpoint's id).
    fn address(&self, rng: &mut Rng, acct: &Account) -> (String, Option<String>) {
        let rank = self.addresses.draw(rng);
        let mut v = self.value_rng(DIM_ADDRESS, rank);
        match v.below(100) {
            0..=71 => (public_v4(&mut v), None),
            72..=83 => (public_v6(&mut v), None),
            _ => {
                let ip = format!("10.{}.{}.{}", v.below(256), v.below(256), 1 + v.below(254));
                let endpoint = format!("vpce-0{}", acct_rng(acct).fork(v.below(4)).hex(16));
                (ip, Some(endpoint))
            }
        }
    }

    fn person(&self, rng: &mut Rng) -> String {
        let rank = self.people.draw(rng);
        let mut v = self.value_rng(DIM_PERSON, rank);
        let (first, last) = (*v.pick(FIRST_NAMES), *v.pick(LAST_NAMES));
        let n = rank / (FIRST_NAMES.len() * LAST_NAMES.len()) as u64;
        let suffix = if n == 0 { String::new() } else { n.to_string() };
        format!("{first}.{last}{suffix}@{}", v.pick(&["example.com", "corp.example.com", "example.org"]))
    }

    fn user(&self, rng: &mut Rng) -> (String, u64) {
        let rank = self.users.draw(rng);
        let mut v = self.value_rng(DIM_USER, rank);
        let name = match v.below(4) {
            0 => format!("svc-{}-{}", v.pick(APPS), v.pick(PURPOSES)),
            _ => format!("{}{}", &v.pick(FIRST_NAMES)[..1], v.pick(LAST_NAMES)),
        };
        (format!("{name}{}", if rank > 40 { format!("-{rank}") } else { String::new() }), rank)
    }

    fn role(&self, rng: &mut Rng) -> (String, u64) {
        let rank = self.roles.draw(rng);
        self.role_of(rank)
    }

    /// The role an instance, function or person (`owner`) works through, as a deployment
    /// gives each one its role: the same for the same owner, heavy-tailed over owners.
    fn role_for(&self, owner: &str, choice: u64) -> (String, u64) {
        let rank = self.roles.draw(&mut Rng::from_text(owner).fork(choice));
        self.role_of(rank)
    }

    fn role_of(&self, rank: u64) -> (String, u64) {
        let mut v = self.value_rng(DIM_ROLE, rank);
        let name = format!("{}-{}-{}", v.pick(APPS), v.pick(PURPOSES), v.pick(&["role", "Role", "exec", "task"]));
        (if rank > 60 { format!("{name}-{rank}") } else { name }, rank)
    }

    /// A pipeline run's session name, e.g. `GitHubActions-4821337`.
    fn run(&self, rng: &mut Rng) -> String {
        let rank = self.runs.draw(rng);
        let mut v = self.value_rng(DIM_RUN, rank);
        format!(
            "{}-{}",
            v.pick(&["GitHubActions", "gitlab-ci", "codebuild", "jenkins", "atlantis"]),
            v.range(1_000_000, 9_999_999)
        )
    }

    fn instance(&self, rng: &mut Rng) -> String {
        let rank = self.instances.draw(rng);
        format!("i-0{}", self.value_rng(DIM_INSTANCE, rank).hex(16))
    }

    fn function(&self, rng: &mut Rng) -> String {
        let rank = self.functions.draw(rng);
        let mut v = self.value_rng(DIM_FUNCTION, rank);
        format!("{}-{}-{rank}", v.pick(APPS), v.pick(&["handler", "worker", "api", "cron", "consumer", "authorizer"]))
    }

    fn bucket(&self, rng: &mut Rng, acct: &Account) -> String {
        let rank = self.buckets.draw(rng);
        let mut v = self.value_rng(DIM_BUCKET, rank);
        format!("{}-{}-{}-{rank}", acct.name, v.pick(APPS), v.pick(&["data", "logs", "artifacts", "backups", "assets"]))
    }

    fn object_key(&self, rng: &mut Rng) -> String {
        let mut v = self.value_rng(DIM_KEY, rng.next_u64() >> 20);
        format!(
            "{}/{}/{:02}/{}.{}",
            v.pick(APPS),
            2020 + v.below(7),
            1 + v.below(12),
            v.hex(12),
            v.pick(&["json", "parquet", "gz", "csv", "png"])
        )
    }
}

/// The account's own stream (its endpoints, its role and user ids).
fn acct_rng(acct: &Account) -> Rng {
    Rng::from_text(&acct.id)
}

/// A key id that stays the same for one principal within one hour, as temporary credentials do.
fn session_key(principal: &str, time_ms: i64) -> String {
    format!("ASIA{}", Rng::from_text(principal).fork(time_ms.div_euclid(3_600_000) as u64).upper(16))
}

fn public_v4(v: &mut Rng) -> String {
    loop {
        let a = 1 + v.below(223);
        let b = v.below(256);
        let private = matches!(a, 10 | 127 | 169 | 0)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 100 && (64..128).contains(&b));
        if !private {
            return format!("{a}.{b}.{}.{}", v.below(256), 1 + v.below(254));
        }
    }
}

fn public_v6(v: &mut Rng) -> String {
    let prefix = *v.pick(&["2600:1f18", "2a05:d018", "2001:4860", "2a02:26f0", "2607:f8b0", "2406:da14"]);
    format!(
        "{prefix}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
        v.below(65536),
        v.below(65536),
        v.below(65536),
        v.below(65536),
        v.below(65536),
        v.below(65536)
    )
}

/// A client string of rank `rank`: SDKs, the CLI, infrastructure tools, each with versions,
/// platforms and (for the long tail) the extra fields newer SDKs append.
fn user_agent(v: &mut Rng, rank: u64) -> String {
    let py = format!("3.{}.{}", 8 + v.below(5), v.below(15));
    let kernel = match v.below(4) {
        0 => format!("Linux/{}.{}.0-{}-aws", 5 + v.below(2), v.below(20), 1000 + v.below(80)),
        1 => format!("Linux/{}.{}.{}-{}.amzn2023.x86_64", 6, v.below(13), v.below(80), 100 + v.below(100)),
        2 => format!("Darwin/{}.{}.0", 21 + v.below(4), v.below(7)),
        _ => format!("Windows/{}", v.pick(&["10", "11", "Server2022"])),
    };
    let arch = *v.pick(&["x86_64", "arm64", "aarch64"]);
    let mut agent = match v.below(100) {
        0..=29 => format!(
            "aws-cli/2.{}.{} Python/{py} {kernel} exe/{arch}.{} prompt/off command/{}",
            9 + v.below(14),
            v.below(50),
            v.pick(&["ubuntu.22", "amzn.2", "amzn.2023", "debian.12", "rhel.9"]),
            v.pick(&["sts.get-caller-identity", "s3.ls", "ec2.describe-instances", "logs.tail", "iam.list-roles", "ssm.start-session"])
        ),
        30..=49 => {
            let core = format!("1.{}.{}", 28 + v.below(8), v.below(100));
            format!(
                "Boto3/{core} md/Botocore#{core} ua/2.0 os/linux#{} md/arch#{arch} lang/python#{py} md/pyimpl#CPython cfg/retry-mode#{} Botocore/{core}",
                kernel.trim_start_matches("Linux/"),
                v.pick(&["legacy", "standard", "adaptive"])
            )
        }
        50..=62 => format!(
            "aws-sdk-go-v2/1.{}.{} os/linux lang/go#1.{}.{} md/GOOS#linux md/GOARCH#{} api/{}#1.{}.{}",
            20 + v.below(12),
            v.below(20),
            19 + v.below(5),
            v.below(12),
            v.pick(&["amd64", "arm64"]),
            v.pick(SDK_APIS),
            v.below(200),
            v.below(10)
        ),
        63..=74 => format!(
            "aws-sdk-java/2.{}.{} {kernel} OpenJDK_64-Bit_Server_VM/{}.0.{}+{}-LTS Java/{}.0.{} vendor/{} io/sync http/Apache cfg/retry-mode/legacy",
            20 + v.below(10),
            v.below(100),
            *v.pick(&[11, 17, 21]),
            v.below(25),
            v.below(12),
            *v.pick(&[11, 17, 21]),
            v.below(25),
            v.pick(&["Amazon.com_Inc.", "Eclipse_Adoptium", "Oracle_Corporation"])
        ),
        75..=86 => format!(
            "aws-sdk-js/3.{}.0 ua/2.0 os/linux#{} lang/js md/nodejs#{}.{}.{} api/{}#3.{}.0 exec-env/AWS_Lambda_nodejs{}.x",
            400 + v.below(250),
            kernel.trim_start_matches("Linux/"),
            16 + 2 * v.below(3),
            v.below(20),
            v.below(10),
            v.pick(SDK_APIS),
            400 + v.below(250),
            16 + 2 * v.below(3)
        ),
        87..=93 => format!(
            "APN/1.0 HashiCorp/1.0 Terraform/1.{}.{} (+https://www.terraform.io) terraform-provider-aws/5.{}.{} (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.{}.{}",
            3 + v.below(7),
            v.below(8),
            v.below(80),
            v.below(3),
            20 + v.below(12),
            v.below(20)
        ),
        _ => format!(
            "{}/{}.{}.{} aws-sdk-dotnet-coreclr/3.7.{}.{} .NET_Core/{}.0.{} OS/{}",
            v.pick(&["aws-powershell", "AWSPowerShell.Common", "aws-toolkit-vscode", "aws-toolkit-jetbrains"]),
            v.below(5),
            v.below(300),
            v.below(10),
            v.below(400),
            v.below(10),
            6 + v.below(3),
            v.below(30),
            kernel
        ),
    };
    // The long tail: custom application suffixes, as apps append their own names.
    if rank > 500 && v.chance(0.5) {
        agent.push_str(&format!(" app/{}-{}#{}", v.pick(APPS), v.pick(PURPOSES), rank));
    }
    agent
}

fn browser(v: &mut Rng) -> String {
    match v.below(4) {
        0 | 1 => format!(
            "Mozilla/5.0 ({}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.{}.{} Safari/537.36",
            v.pick(&["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64"]),
            110 + v.below(22),
            5000 + v.below(1800),
            v.below(200)
        ),
        2 => format!(
            "Mozilla/5.0 ({}; rv:{}.0) Gecko/20100101 Firefox/{}.0",
            v.pick(&["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 14.4", "X11; Ubuntu; Linux x86_64"]),
            110 + v.below(25),
            110 + v.below(25)
        ),
        _ => format!(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{}.{} Safari/605.1.15",
            15 + v.below(4),
            v.below(6)
        ),
    }
}

const FIRST_NAMES: &[&str] = &[
    "ana", "ben", "chen", "dara", "eli", "femi", "gita", "hugo", "ines", "jon", "kofi", "lena", "mika", "nora", "omar",
    "pia", "quinn", "rosa", "sami", "tara", "uma", "vik", "wren", "xiu", "yara", "zeno",
];
const LAST_NAMES: &[&str] = &[
    "adams", "brown", "costa", "dubois", "evans", "fischer", "garcia", "haddad", "ito", "jensen", "kim", "lopez",
    "meyer", "nakamura", "okafor", "patel", "quist", "rossi", "silva", "tanaka", "ueda", "varga", "wong", "young",
];
const APPS: &[&str] = &[
    "orders",
    "billing",
    "search",
    "auth",
    "catalog",
    "payments",
    "reports",
    "etl",
    "ingest",
    "web",
    "mobile-api",
    "analytics",
    "ml",
    "notifications",
    "inventory",
    "checkout",
    "gateway",
    "backoffice",
];
const PURPOSES: &[&str] =
    &["deploy", "runtime", "readonly", "admin", "ci", "batch", "migration", "monitoring", "backup"];
const SDK_APIS: &[&str] = &["s3", "ec2", "sts", "dynamodb", "sqs", "sns", "kms", "ssm", "lambda", "ecr", "iam", "logs"];

/// Management calls, most frequent first (their rank is drawn Zipf-like).
const CALLS: &[(&str, &str, bool)] = &[
    ("sts.amazonaws.com", "GetCallerIdentity", true),
    ("ec2.amazonaws.com", "DescribeInstances", true),
    ("kms.amazonaws.com", "Decrypt", true),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("ssm.amazonaws.com", "GetParameter", true),
    ("logs.amazonaws.com", "DescribeLogGroups", true),
    ("ec2.amazonaws.com", "DescribeSecurityGroups", true),
    ("iam.amazonaws.com", "ListRoles", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
    ("lambda.amazonaws.com", "ListFunctions20150331", true),
    ("ec2.amazonaws.com", "DescribeVpcs", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("s3.amazonaws.com", "GetBucketPolicy", true),
    ("ecr.amazonaws.com", "GetAuthorizationToken", true),
    ("monitoring.amazonaws.com", "DescribeAlarms", true),
    ("cloudformation.amazonaws.com", "DescribeStacks", true),
    ("iam.amazonaws.com", "GetRole", true),
    ("ec2.amazonaws.com", "DescribeSubnets", true),
    ("ssm.amazonaws.com", "GetParametersByPath", true),
    ("kms.amazonaws.com", "GenerateDataKey", true),
    ("s3.amazonaws.com", "GetBucketLocation", true),
    ("ec2.amazonaws.com", "DescribeNetworkInterfaces", true),
    ("iam.amazonaws.com", "GetUser", true),
    ("elasticloadbalancing.amazonaws.com", "DescribeTargetHealth", true),
    ("autoscaling.amazonaws.com", "DescribeAutoScalingGroups", true),
    ("rds.amazonaws.com", "DescribeDBInstances", true),
    ("ecs.amazonaws.com", "DescribeServices", true),
    ("eks.amazonaws.com", "DescribeCluster", true),
    ("route53.amazonaws.com", "ListResourceRecordSets", true),
    ("iam.amazonaws.com", "ListAttachedRolePolicies", true),
    ("cloudformation.amazonaws.com", "DescribeStackEvents", true),
    ("sqs.amazonaws.com", "GetQueueAttributes", true),
    ("sns.amazonaws.com", "ListSubscriptionsByTopic", true),
    ("ec2.amazonaws.com", "DescribeImages", true),
    ("organizations.amazonaws.com", "DescribeAccount", true),
    ("config.amazonaws.com", "DescribeConfigRules", true),
    ("ec2.amazonaws.com", "DescribeVolumes", true),
    ("s3.amazonaws.com", "GetBucketAcl", true),
    ("s3.amazonaws.com", "GetBucketEncryption", true),
    ("iam.amazonaws.com", "ListPolicies", true),
    ("logs.amazonaws.com", "CreateLogStream", false),
    ("ecs.amazonaws.com", "RunTask", false),
    ("ec2.amazonaws.com", "CreateTags", false),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", false),
    ("ssm.amazonaws.com", "PutParameter", false),
    ("cloudformation.amazonaws.com", "UpdateStack", false),
    ("dynamodb.amazonaws.com", "UpdateTable", false),
    ("ec2.amazonaws.com", "RunInstances", false),
    ("ec2.amazonaws.com", "TerminateInstances", false),
    ("ec2.amazonaws.com", "StopInstances", false),
    ("ec2.amazonaws.com", "StartInstances", false),
    ("ec2.amazonaws.com", "CreateSnapshot", false),
    ("ecr.amazonaws.com", "PutImage", false),
    ("sqs.amazonaws.com", "CreateQueue", false),
    ("sns.amazonaws.com", "Publish", false),
    ("iam.amazonaws.com", "CreateRole", false),
    ("iam.amazonaws.com", "AttachRolePolicy", false),
    ("iam.amazonaws.com", "PutRolePolicy", false),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
    ("ec2.amazonaws.com", "RevokeSecurityGroupIngress", false),
    ("s3.amazonaws.com", "PutBucketTagging", false),
    ("kms.amazonaws.com", "CreateGrant", false),
    ("rds.amazonaws.com", "CreateDBSnapshot", false),
    ("secretsmanager.amazonaws.com", "RotateSecret", false),
    ("iam.amazonaws.com", "CreateAccessKey", false),
    ("iam.amazonaws.com", "UpdateAssumeRolePolicy", false),
    ("route53.amazonaws.com", "ChangeResourceRecordSets", false),
    ("elasticloadbalancing.amazonaws.com", "ModifyListener", false),
    ("ec2.amazonaws.com", "ModifyInstanceAttribute", false),
    ("s3.amazonaws.com", "PutBucketPolicy", false),
];

/// One ordinary event of a varied profile in `acct`/`region` at `time_ms`.
pub fn ordinary(rng: &mut Rng, pop: &Population, acct: &Account, region: &str, time_ms: i64) -> SimRecord {
    let (caller, call, endpoint) = match rng.below(100) {
        0..=29 => {
            let (caller, endpoint) = human(rng, pop, acct, time_ms, false);
            (caller, management_call(rng, pop, acct, region), endpoint)
        }
        30..=39 => {
            let (caller, endpoint) = human(rng, pop, acct, time_ms, true);
            (caller, management_call(rng, pop, acct, region), endpoint)
        }
        40..=64 => workload(rng, pop, acct, region, time_ms),
        65..=76 => service(rng, pop, acct, region),
        77..=84 => {
            let (caller, endpoint) = automation(rng, pop, acct, time_ms);
            (caller, management_call(rng, pop, acct, region), endpoint)
        }
        85..=91 => assume(rng, pop, acct, time_ms),
        92..=94 => sign_in(rng, pop, acct),
        _ => {
            let (caller, endpoint) = iam_user(rng, pop, acct);
            (caller, management_call(rng, pop, acct, region), endpoint)
        }
    };
    let mut call = call;
    if !caller.service && rng.chance(0.04) {
        fail(rng, &mut call, &caller, acct);
    }
    let mut rec = build(rng, &caller, call, &acct.id, region, time_ms);
    if let Some(endpoint) = endpoint {
        rec.vpc_endpoint_id = Some(endpoint);
        rec.vpc_endpoint_account_id = Some(acct.id.clone());
    }
    rec
}

fn role_arn(acct: &Account, role: &str) -> String {
    format!("arn:aws:iam::{}:role/{role}", acct.id)
}

fn role_id(role_rank: u64, acct: &Account) -> String {
    format!("AROA{}", acct_rng(acct).fork(role_rank).upper(17))
}

fn session(acct: &Account, role: &str, role_rank: u64, name: &str, time_ms: i64, mfa: bool) -> Value {
    let id = role_id(role_rank, acct);
    let arn = format!("arn:aws:sts::{}:assumed-role/{role}/{name}", acct.id);
    json!({
        "type": "AssumedRole",
        "principalId": format!("{id}:{name}"),
        "arn": arn,
        "accountId": acct.id,
        "accessKeyId": session_key(&arn, time_ms),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": id, "arn": role_arn(acct, role), "accountId": acct.id, "userName": role},
            "webIdFederationData": {},
            "attributes": {"creationDate": model::timefmt::format_millis(time_ms.div_euclid(3_600_000) * 3_600_000), "mfaAuthenticated": if mfa { "true" } else { "false" }}
        }
    })
}

fn caller(identity: Value, ip: String, agent: String) -> Caller {
    Caller { identity, ip, user_agent: agent, console: false, service: false }
}

/// A person through IAM Identity Center (SSO) or SAML, on the CLI/SDK or the console.
fn human(rng: &mut Rng, pop: &Population, acct: &Account, time_ms: i64, console: bool) -> (Caller, Option<String>) {
    let person = pop.person(rng);
    let (ip, endpoint) = pop.address(rng, acct);
    let (role, rank) = if rng.chance(0.7) {
        (if rng.chance(0.3) { acct.sso_admin_role.clone() } else { acct.sso_readonly_role.clone() }, 0)
    } else {
        pop.role_for(&person, rng.below(3))
    };
    let agent = if console { pop.browser(rng) } else { pop.agent(rng) };
    let mut c = caller(session(acct, &role, rank, &person, time_ms, rng.chance(0.5)), ip, agent);
    c.console = console;
    (c, if console { None } else { endpoint })
}

/// CI and infrastructure tooling: a deploy role's session named after a pipeline run.
fn automation(rng: &mut Rng, pop: &Population, acct: &Account, time_ms: i64) -> (Caller, Option<String>) {
    let run = pop.run(rng);
    let (role, rank) = pop.role_for(&run, 0);
    let (ip, endpoint) = pop.address(rng, acct);
    (caller(session(acct, &role, rank, &run, time_ms, false), ip, pop.agent(rng)), endpoint)
}

fn iam_user(rng: &mut Rng, pop: &Population, acct: &Account) -> (Caller, Option<String>) {
    let (user, rank) = pop.user(rng);
    let mut v = acct_rng(acct).fork(0x05E7 ^ rank);
    let (ip, endpoint) = pop.address(rng, acct);
    let identity = json!({
        "type": "IAMUser", "principalId": format!("AIDA{}", v.upper(17)), "arn": format!("arn:aws:iam::{}:user/{user}", acct.id),
        "accountId": acct.id, "accessKeyId": format!("AKIA{}", v.upper(16)), "userName": user
    });
    (caller(identity, ip, pop.agent(rng)), endpoint)
}

/// EC2 instances, Lambda functions and containers using their roles: data events, KMS,
/// DynamoDB, SQS, secrets.
fn workload(
    rng: &mut Rng,
    pop: &Population,
    acct: &Account,
    region: &str,
    time_ms: i64,
) -> (Caller, Call<'static>, Option<String>) {
    let (name, ip, endpoint) = if rng.chance(0.5) {
        let instance = pop.instance(rng);
        let rank = pop.role_for(&instance, 0).1;
        let mut v = acct_rng(acct).fork(instance.len() as u64 ^ rank);
        let ip = format!("10.{}.{}.{}", v.below(256), rng.below(256), 1 + rng.below(254));
        (instance, ip, Some(format!("vpce-0{}", acct_rng(acct).fork(rng.below(4)).hex(16))))
    } else {
        let function = pop.function(rng);
        let (ip, _) = pop.address(rng, acct);
        (function, ip, None)
    };
    let (role, rank) = pop.role_for(&name, 0);
    let agent = pop.agent(rng);
    let c = caller(session(acct, &role, rank, &name, time_ms, false), ip, agent);
    let bucket = pop.bucket(rng, acct);
    let call = match rng.below(10) {
        0..=5 => {
            let key = pop.object_key(rng);
            let (op, read) = *rng.pick(&[
                ("GetObject", true),
                ("GetObject", true),
                ("PutObject", false),
                ("HeadObject", true),
                ("DeleteObject", false),
            ]);
            let additional = json!({"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": if read { 0 } else { rng.range(100, 5_000_000) }, "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": rng.alnum(56), "bytesTransferredOut": if read { rng.range(100, 5_000_000) } else { 0 }});
            record::s3_object(op, read, &bucket, &key, region, &acct.id, additional)
        }
        6 | 7 => {
            let mut call = Call::new(
                "kms.amazonaws.com",
                if rng.chance(0.7) { "Decrypt" } else { "GenerateDataKey" },
                true,
                json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"aws:s3:arn": format!("arn:aws:s3:::{bucket}")}}),
                Value::Null,
            );
            call.resources = Some(json!([{"accountId": acct.id, "type": "AWS::KMS::Key", "ARN": acct.kms_key}]));
            call
        }
        8 => {
            const TABLE_CALLS: [&str; 3] = ["DescribeTable", "DescribeTimeToLive", "ListTables"];
            Call::new(
                "dynamodb.amazonaws.com",
                TABLE_CALLS[rng.index(3)],
                true,
                json!({"tableName": format!("{}-{}", name.split('-').next().unwrap_or("app"), rng.pick(APPS))}),
                Value::Null,
            )
        }
        _ => Call::new(
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            true,
            json!({"secretId": format!("arn:aws:secretsmanager:{region}:{}:secret:{}/{}-{}", acct.id, rng.pick(APPS), rng.pick(PURPOSES), rng.alnum(6))}),
            Value::Null,
        ),
    };
    (c, call, endpoint)
}

/// AWS services acting for the account: their DNS name as address and agent.
fn service(rng: &mut Rng, pop: &Population, acct: &Account, region: &str) -> (Caller, Call<'static>, Option<String>) {
    let by = *rng.pick(&[
        "cloudtrail.amazonaws.com",
        "config.amazonaws.com",
        "autoscaling.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "ecs.amazonaws.com",
        "lambda.amazonaws.com",
        "backup.amazonaws.com",
        "access-analyzer.amazonaws.com",
        "guardduty.amazonaws.com",
        "securityhub.amazonaws.com",
    ]);
    let c = Caller {
        identity: json!({"type": "AWSService", "invokedBy": by}),
        ip: by.into(),
        user_agent: by.into(),
        console: false,
        service: true,
    };
    (c, management_call(rng, pop, acct, region), None)
}

fn assume(rng: &mut Rng, pop: &Population, acct: &Account, time_ms: i64) -> (Caller, Call<'static>, Option<String>) {
    let (role, rank) = pop.role(rng);
    let (ip, endpoint) = pop.address(rng, acct);
    let new_key = format!("ASIA{}", rng.upper(16));
    let expiration = model::timefmt::format_millis(time_ms + 3_600_000);
    match rng.below(3) {
        0 => {
            let session = pop.person(rng);
            let (user, _) = pop.user(rng);
            let mut v = acct_rng(acct).fork(0x05E7 ^ rank);
            let identity = json!({"type": "IAMUser", "principalId": format!("AIDA{}", v.upper(17)),
                "arn": format!("arn:aws:iam::{}:user/{user}", acct.id), "accountId": acct.id, "accessKeyId": format!("AKIA{}", v.upper(16)), "userName": user});
            let call = Call::new(
                "sts.amazonaws.com",
                "AssumeRole",
                false,
                json!({"roleArn": role_arn(acct, &role), "roleSessionName": session, "durationSeconds": 3600}),
                json!({"credentials": {"accessKeyId": new_key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": expiration},
                       "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", role_id(rank, acct)), "arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", acct.id)}}),
            );
            (caller(identity, ip, pop.agent(rng)), call, endpoint)
        }
        1 => {
            let subject = format!("repo:{}/{}:ref:refs/heads/main", rng.pick(APPS), rng.pick(APPS));
            let session = pop.run(rng);
            let identity = json!({"type": "WebIdentityUser", "principalId": format!("arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com:sts.amazonaws.com:{subject}", acct.id),
                "userName": subject, "identityProvider": format!("arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com", acct.id)});
            let call = Call::new(
                "sts.amazonaws.com",
                "AssumeRoleWithWebIdentity",
                false,
                json!({"roleArn": role_arn(acct, &role), "roleSessionName": session, "durationSeconds": 3600}),
                json!({"credentials": {"accessKeyId": new_key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": expiration},
                       "subjectFromWebIdentityToken": subject, "provider": format!("arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com", acct.id),
                       "assumedRoleUser": {"arn": format!("arn:aws:sts::{}:assumed-role/{role}/{session}", acct.id)}}),
            );
            (caller(identity, ip, pop.agent(rng)), call, None)
        }
        _ => {
            let person = pop.person(rng);
            let identity = json!({"type": "SAMLUser", "principalId": format!("Xx6KpUPAuIHu2XH2ouVBvEKx1Kc=:{person}"),
                "userName": person, "identityProvider": "Xx6KpUPAuIHu2XH2ouVBvEKx1Kc="});
            let call = Call::new(
                "sts.amazonaws.com",
                "AssumeRoleWithSAML",
                false,
                json!({"sAMLAssertionID": format!("_{}", rng.hex(32)), "roleSessionName": person,
                       "principalArn": format!("arn:aws:iam::{}:saml-provider/Okta", acct.id), "roleArn": role_arn(acct, &role), "durationSeconds": 3600}),
                json!({"credentials": {"accessKeyId": new_key, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE", "expiration": expiration},
                       "subjectType": "persistent", "issuer": "http://www.okta.com/exk1example", "audience": "https://signin.aws.amazon.com/saml",
                       "assumedRoleUser": {"arn": format!("arn:aws:sts::{}:assumed-role/{role}/{person}", acct.id)}}),
            );
            (caller(identity, ip, pop.browser(rng)), call, None)
        }
    }
}

fn sign_in(rng: &mut Rng, pop: &Population, acct: &Account) -> (Caller, Call<'static>, Option<String>) {
    let (user, rank) = pop.user(rng);
    let mut v = acct_rng(acct).fork(0x05E7 ^ rank);
    let (ip, _) = pop.address(rng, acct);
    let identity = json!({"type": "IAMUser", "principalId": format!("AIDA{}", v.upper(17)),
        "arn": format!("arn:aws:iam::{}:user/{user}", acct.id), "accountId": acct.id, "userName": user});
    let call = record::console_login(!rng.chance(0.03), rng.chance(0.9));
    let c = Caller { identity, ip, user_agent: pop.browser(rng), console: true, service: false };
    (c, call, None)
}

/// A management call from the catalogue, with parameters naming the account's resources.
fn management_call(rng: &mut Rng, pop: &Population, acct: &Account, region: &str) -> Call<'static> {
    let (source, name, read_only) = CALLS[(pop.calls.draw(rng) - 1) as usize];
    let params = match source {
        "ec2.amazonaws.com" if name.contains("Instance") => {
            json!({"instancesSet": {"items": [{"instanceId": pop.instance(rng)}]}, "filterSet": {}})
        }
        "ec2.amazonaws.com" if name.contains("SecurityGroup") => {
            json!({"groupId": format!("sg-0{}", rng.hex(16)), "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": *rng.pick(&[22, 443, 3306, 5432, 8080]), "toPort": 443,
                   "ipRanges": {"items": [{"cidrIp": format!("{}.{}.0.0/16", rng.range(1, 223), rng.below(256))}]}}]}})
        }
        "ec2.amazonaws.com" => json!({"filterSet": {}, "maxResults": *rng.pick(&[5, 100, 1000])}),
        "s3.amazonaws.com" => {
            let bucket = pop.bucket(rng, acct);
            json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), *rng.pick(&["policy", "acl", "tagging", "encryption", "location"]): ""})
        }
        "iam.amazonaws.com" => {
            let (role, _) = pop.role(rng);
            json!({"roleName": role, "policyArn": format!("arn:aws:iam::aws:policy/{}", rng.pick(&["ReadOnlyAccess", "AmazonS3FullAccess", "AdministratorAccess", "SecurityAudit"]))})
        }
        "ssm.amazonaws.com" => {
            json!({"name": format!("/{}/{}/{}", rng.pick(APPS), rng.pick(&["prod", "staging", "dev"]), rng.pick(&["db/password", "api-key", "endpoint", "feature-flags"])), "withDecryption": true})
        }
        "lambda.amazonaws.com" => json!({"functionName": pop.function(rng)}),
        "sts.amazonaws.com" | "organizations.amazonaws.com" => Value::Null,
        _ => json!({"name": format!("{}-{}", rng.pick(APPS), rng.pick(&["prod", "staging", "dev"]))}),
    };
    Call::new(source, name, read_only, params, if read_only { Value::Null } else { json!({"requestId": rng.uuid()}) })
}

fn fail(rng: &mut Rng, call: &mut Call<'_>, caller: &Caller, acct: &Account) {
    call.error = Some(match (call.source, rng.below(6)) {
        ("ec2.amazonaws.com", _) => record::denied(call, caller, &acct.id),
        (_, 0) => ("ThrottlingException", "Rate exceeded".into()),
        (_, 1) => ("ResourceNotFoundException", format!("Requested resource not found: {}", rng.alnum(10))),
        _ => record::denied(call, caller, &acct.id),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laws_stay_in_range_and_favour_the_head() {
        let mut rng = Rng::new(3);
        for law in
            [Law { size: 1, s: 1.0 }, Law { size: 10, s: 1.0 }, Law { size: 1000, s: 0.6 }, Law { size: 1000, s: 1.2 }]
        {
            let mut counts = vec![0u32; law.size as usize + 1];
            for _ in 0..20_000 {
                let k = law.draw(&mut rng);
                assert!((1..=law.size).contains(&k));
                counts[k as usize] += 1;
            }
            if law.size >= 10 {
                assert!(
                    counts[1] > counts[law.size as usize] * 3,
                    "{law:?}: {} vs {}",
                    counts[1],
                    counts[law.size as usize]
                );
            }
        }
    }

    #[test]
    fn rank_values_are_pure_functions_of_seed_and_rank() {
        let pop = Population::new(Profile::Realistic, 9, 10_000);
        let a = user_agent(&mut pop.value_rng(DIM_AGENT, 17), 17);
        let b = user_agent(&mut pop.value_rng(DIM_AGENT, 17), 17);
        assert_eq!(a, b);
        assert_ne!(a, user_agent(&mut pop.value_rng(DIM_AGENT, 18), 18));
        let mut v = pop.value_rng(DIM_ADDRESS, 5);
        for _ in 0..1000 {
            let ip: std::net::Ipv4Addr = public_v4(&mut v).parse().unwrap();
            assert!(!ip.is_private() && !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified(), "{ip}");
            let v6: std::net::Ipv6Addr = public_v6(&mut v).parse().unwrap();
            assert!(!v6.is_loopback());
        }
    }
}
