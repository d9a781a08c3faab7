//! Derived identity: who is behind a record, in one normalised form.
//!
//! CloudTrail describes the caller in `userIdentity`, whose shape depends on its `type`.
//! [`Actor::from_record`] turns every variant into the same handful of facts:
//!
//! * `principal` — one stable string per acting principal, used as the search/index key:
//!   - the caller's `arn` when there is one (for an assumed role that is
//!     `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, i.e. role + session name);
//!   - an assumed role without `arn` is rebuilt from the session issuer's role ARN and
//!     the session name in `principalId` (`<roleId>:<session>`);
//!   - `Root` without `arn`: `arn:<partition>:iam::<acct>:root`;
//!   - `AWSService` and AWS-internal callers: the service principal in `invokedBy`;
//!   - anything else: `<type>:<accountId>:<userName|principalId|userId>`, so a failed
//!     console login for an unknown user is `IAMUser:<acct>:HIDDEN_DUE_TO_SECURITY_REASONS`.
//! * `issuer` — the role (or IAM user / root, for `GetFederationToken`) that issued the
//!   temporary credentials: `sessionContext.sessionIssuer.arn`.
//! * `name` — the short name a person would say: IAM user name, role session name, the
//!   federated user's name, the service principal.
//! * `human` — the person behind a federated session, where the record tells it:
//!   `sourceIdentity`; the session name of an IAM Identity Center (`AWSReservedSSO_…`)
//!   role; the `onBehalfOf` Identity Center user; the `userName` of `SAMLUser` /
//!   `WebIdentityUser` calls; a session name that is an e-mail address (the usual SAML
//!   `RoleSessionName`); the user of a web-identity session.
//! * `access_key_id`, `mfa`, `console`.
//!
//! The function never fails: a record without `userIdentity` gets the principal `unknown`.

use crate::record::{Flag, Record, Str, UserIdentity};

/// What kind of principal acted (the `userIdentity.type`, as an open enum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    Root,
    IamUser,
    AssumedRole,
    Role,
    FederatedUser,
    Directory,
    AwsAccount,
    AwsService,
    IdentityCenterUser,
    SamlUser,
    WebIdentityUser,
    Unknown,
    /// A `type` this version does not know yet.
    Other(String),
    /// No `userIdentity.type` at all.
    Missing,
}

impl PrincipalKind {
    pub fn parse(kind: Option<&str>) -> Self {
        match kind {
            None => PrincipalKind::Missing,
            Some("Root") => PrincipalKind::Root,
            Some("IAMUser") => PrincipalKind::IamUser,
            Some("AssumedRole") => PrincipalKind::AssumedRole,
            Some("Role") => PrincipalKind::Role,
            Some("FederatedUser") => PrincipalKind::FederatedUser,
            Some("Directory") => PrincipalKind::Directory,
            Some("AWSAccount") => PrincipalKind::AwsAccount,
            Some("AWSService") => PrincipalKind::AwsService,
            Some("IdentityCenterUser") => PrincipalKind::IdentityCenterUser,
            Some("SAMLUser") => PrincipalKind::SamlUser,
            Some("WebIdentityUser") => PrincipalKind::WebIdentityUser,
            Some("Unknown") => PrincipalKind::Unknown,
            Some(other) => PrincipalKind::Other(other.to_string()),
        }
    }

    /// The spelling CloudTrail uses (`""` when the type was missing).
    pub fn as_str(&self) -> &str {
        match self {
            PrincipalKind::Root => "Root",
            PrincipalKind::IamUser => "IAMUser",
            PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Role => "Role",
            PrincipalKind::FederatedUser => "FederatedUser",
            PrincipalKind::Directory => "Directory",
            PrincipalKind::AwsAccount => "AWSAccount",
            PrincipalKind::AwsService => "AWSService",
            PrincipalKind::IdentityCenterUser => "IdentityCenterUser",
            PrincipalKind::SamlUser => "SAMLUser",
            PrincipalKind::WebIdentityUser => "WebIdentityUser",
            PrincipalKind::Unknown => "Unknown",
            PrincipalKind::Other(s) => s,
            PrincipalKind::Missing => "",
        }
    }
}

/// How a federated session's human was authenticated, where the record says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Federation {
    /// IAM Identity Center (AWS SSO) permission-set role or Identity Center user.
    IdentityCenter,
    /// `AssumeRoleWithSAML` (a `SAMLUser` call).
    Saml,
    /// `AssumeRoleWithWebIdentity`, or a session carrying `webIdFederationData`.
    WebIdentity,
    /// `sts:SourceIdentity` set on the session.
    SourceIdentity,
}

impl Federation {
    pub fn as_str(self) -> &'static str {
        match self {
            Federation::IdentityCenter => "identity-center",
            Federation::Saml => "saml",
            Federation::WebIdentity => "web-identity",
            Federation::SourceIdentity => "source-identity",
        }
    }
}

/// The normalised "who" of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub principal: String,
    pub kind: PrincipalKind,
    /// The account that owns the principal (`userIdentity.accountId`).
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub session_name: Option<String>,
    pub issuer: Option<String>,
    pub access_key_id: Option<String>,
    pub human: Option<String>,
    pub federation: Option<Federation>,
    pub invoked_by: Option<String>,
    /// `Some(true)` when the session or sign-in used MFA, `Some(false)` when the record says
    /// it did not, `None` when the record does not say.
    pub mfa: Option<bool>,
    /// The call came from the AWS console (sign-in, console action, or console credentials).
    pub console: bool,
}

const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";

impl Actor {
    pub fn from_record(record: &Record<'_>) -> Actor {
        let console = is_console(record);
        let Some(ui) = record.user_identity.as_ref() else {
            return Actor {
                principal: "unknown".to_string(),
                kind: PrincipalKind::Missing,
                account_id: None,
                name: None,
                session_name: None,
                issuer: None,
                access_key_id: None,
                human: None,
                federation: None,
                invoked_by: None,
                mfa: None,
                console,
            };
        };
        let kind = PrincipalKind::parse(ui.kind.as_deref());
        let ctx = ui.session_context.as_ref();
        let issuer_ref = ctx.and_then(|c| c.session_issuer.as_ref());
        let issuer = issuer_ref.and_then(|i| non_empty(&i.arn)).map(str::to_string);
        let issuer_name = issuer_ref.and_then(|i| non_empty(&i.user_name));
        let session_name = session_name(&kind, ui);

        let principal = principal(&kind, ui, issuer.as_deref(), session_name.as_deref());
        let name = match kind {
            PrincipalKind::AssumedRole => session_name.clone(),
            PrincipalKind::AwsService => non_empty(&ui.invoked_by).map(str::to_string),
            PrincipalKind::FederatedUser => {
                session_name.clone().or_else(|| non_empty(&ui.user_name).map(str::to_string))
            }
            _ => non_empty(&ui.user_name).or_else(|| arn_resource_name(non_empty(&ui.arn)?)).map(str::to_string),
        };

        let (human, federation) = human(&kind, ui, issuer_name, session_name.as_deref());
        let mfa = mfa(record, ui);
        Actor {
            principal,
            kind,
            account_id: non_empty(&ui.account_id).map(str::to_string),
            name,
            session_name,
            issuer,
            access_key_id: non_empty(&ui.access_key_id).map(str::to_string),
            human,
            federation,
            invoked_by: non_empty(&ui.invoked_by).map(str::to_string),
            mfa,
            console,
        }
    }
}

fn non_empty<'s>(v: &'s Option<Str<'_>>) -> Option<&'s str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Role session name for assumed roles, federated user name for `FederatedUser`.
fn session_name(kind: &PrincipalKind, ui: &UserIdentity<'_>) -> Option<String> {
    match kind {
        PrincipalKind::AssumedRole => {
            // arn:aws:sts::<acct>:assumed-role/<role>/<session>
            if let Some(rest) = non_empty(&ui.arn).and_then(|a| arn_resource(a)?.strip_prefix("assumed-role/")) {
                if let Some((_, session)) = rest.split_once('/') {
                    return Some(session.to_string());
                }
            }
            // principalId: <roleId>:<session>
            non_empty(&ui.principal_id)
                .and_then(|p| p.split_once(':'))
                .map(|(_, s)| s.to_string())
                .filter(|s| !s.is_empty())
        }
        PrincipalKind::FederatedUser => non_empty(&ui.arn)
            .and_then(|a| arn_resource(a)?.strip_prefix("federated-user/"))
            .map(str::to_string)
            .or_else(|| non_empty(&ui.principal_id).and_then(|p| p.split_once(':')).map(|(_, s)| s.to_string())),
        _ => None,
    }
}

fn principal(kind: &PrincipalKind, ui: &UserIdentity<'_>, issuer: Option<&str>, session: Option<&str>) -> String {
    if let Some(arn) = non_empty(&ui.arn) {
        return arn.to_string();
    }
    let account = non_empty(&ui.account_id);
    match kind {
        PrincipalKind::AssumedRole => {
            if let (Some(role_arn), Some(session)) = (issuer, session) {
                if let Some(assumed) = assumed_role_arn(role_arn, session) {
                    return assumed;
                }
            }
        }
        PrincipalKind::Root => {
            if let Some(account) = account {
                return format!("arn:aws:iam::{account}:root");
            }
        }
        _ => {}
    }
    if let Some(service) = non_empty(&ui.invoked_by) {
        if matches!(kind, PrincipalKind::AwsService | PrincipalKind::Missing) {
            return service.to_string();
        }
    }
    let who = non_empty(&ui.user_name)
        .or(non_empty(&ui.principal_id))
        .or(non_empty(&ui.user_id))
        .or_else(|| ui.on_behalf_of.as_ref().and_then(|o| non_empty(&o.user_id)))
        .or(non_empty(&ui.invoked_by));
    let kind_str = match kind {
        PrincipalKind::Missing => "Unknown",
        k => k.as_str(),
    };
    match (account, who) {
        (None, None) => "unknown".to_string(),
        (account, who) => format!("{kind_str}:{}:{}", account.unwrap_or(""), who.unwrap_or("")),
    }
}

/// `arn:aws:iam::123:role/path/Name` + `session` → `arn:aws:sts::123:assumed-role/Name/session`.
fn assumed_role_arn(role_arn: &str, session: &str) -> Option<String> {
    let mut parts = role_arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(_service), Some(_region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let role_name = resource.strip_prefix("role/")?.rsplit('/').next()?;
    Some(format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session}"))
}

/// The resource part of an ARN (after the fifth `:`).
fn arn_resource(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    parts.nth(4)
}

/// The last path segment of an ARN's resource (`user/path/alice` → `alice`).
fn arn_resource_name(arn: &str) -> Option<&str> {
    let resource = arn_resource(arn)?;
    if resource == "root" {
        return None;
    }
    resource.rsplit('/').next().filter(|s| !s.is_empty())
}

fn human(
    kind: &PrincipalKind,
    ui: &UserIdentity<'_>,
    issuer_name: Option<&str>,
    session: Option<&str>,
) -> (Option<String>, Option<Federation>) {
    let ctx = ui.session_context.as_ref();
    if let Some(source) = ctx.and_then(|c| non_empty(&c.source_identity)) {
        return (Some(source.to_string()), Some(Federation::SourceIdentity));
    }
    if let Some(user) = ui.on_behalf_of.as_ref().and_then(|o| non_empty(&o.user_id)) {
        return (Some(user.to_string()), Some(Federation::IdentityCenter));
    }
    match kind {
        PrincipalKind::SamlUser => return (non_empty(&ui.user_name).map(str::to_string), Some(Federation::Saml)),
        PrincipalKind::WebIdentityUser => {
            return (non_empty(&ui.user_name).map(str::to_string), Some(Federation::WebIdentity))
        }
        PrincipalKind::IdentityCenterUser => {
            let who = non_empty(&ui.user_name).or(non_empty(&ui.user_id));
            return (who.map(str::to_string), Some(Federation::IdentityCenter));
        }
        PrincipalKind::AssumedRole => {
            let web = ctx
                .and_then(|c| c.web_id_federation_data.as_ref())
                .and_then(|w| non_empty(&w.federated_provider))
                .is_some();
            if issuer_name.is_some_and(|n| n.starts_with(SSO_ROLE_PREFIX)) {
                return (session.map(str::to_string), Some(Federation::IdentityCenter));
            }
            if web {
                return (session.map(str::to_string), Some(Federation::WebIdentity));
            }
            if let Some(s) = session.filter(|s| looks_like_email(s)) {
                return (Some(s.to_string()), None);
            }
        }
        _ => {}
    }
    (None, None)
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.') && !domain.starts_with('.'),
        None => false,
    }
}

fn mfa(record: &Record<'_>, ui: &UserIdentity<'_>) -> Option<bool> {
    // A console sign-in states MFA use in additionalEventData.MFAUsed ("Yes"/"No").
    if record.event_name.as_deref() == Some("ConsoleLogin") {
        if let Some(used) = record.additional_event_data.and_then(|raw| mfa_used(raw.get())) {
            return Some(used);
        }
    }
    ui.session_context
        .as_ref()
        .and_then(|c| c.attributes.as_ref())
        .and_then(|a| a.mfa_authenticated)
        .and_then(Flag::as_bool)
}

fn mfa_used(additional_event_data: &str) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct Additional<'a> {
        #[serde(rename = "MFAUsed", borrow)]
        mfa_used: Option<Str<'a>>,
    }
    let parsed: Additional<'_> = serde_json::from_str(additional_event_data).ok()?;
    match parsed.mfa_used.as_deref()? {
        v if v.eq_ignore_ascii_case("yes") => Some(true),
        v if v.eq_ignore_ascii_case("no") => Some(false),
        _ => None,
    }
}

fn is_console(record: &Record<'_>) -> bool {
    if record.session_credential_from_console == Some(Flag::True) {
        return true;
    }
    if matches!(record.event_type.as_deref(), Some("AwsConsoleSignIn" | "AwsConsoleAction")) {
        return true;
    }
    matches!(record.user_agent.as_deref(), Some(ua) if ua.eq_ignore_ascii_case("console.amazonaws.com")
        || ua.eq_ignore_ascii_case("signin.amazonaws.com"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(json: &str) -> Actor {
        Actor::from_record(&Record::from_json(json).unwrap())
    }

    #[test]
    fn assumed_role_is_role_plus_session() {
        let a = actor(
            r#"{"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:alice@example.com",
            "arn":"arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com","accountId":"111122223333",
            "accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE",
            "arn":"arn:aws:iam::111122223333:role/ops/Admin","accountId":"111122223333","userName":"Admin"},
            "attributes":{"creationDate":"2024-01-01T00:00:00Z","mfaAuthenticated":"true"}}}}"#,
        );
        assert_eq!(a.principal, "arn:aws:sts::111122223333:assumed-role/Admin/alice@example.com");
        assert_eq!(a.issuer.as_deref(), Some("arn:aws:iam::111122223333:role/ops/Admin"));
        assert_eq!(a.session_name.as_deref(), Some("alice@example.com"));
        assert_eq!(a.human.as_deref(), Some("alice@example.com"));
        assert_eq!(a.access_key_id.as_deref(), Some("ASIAEXAMPLE"));
        assert_eq!(a.mfa, Some(true));
        assert!(!a.console);
    }

    #[test]
    fn assumed_role_without_arn_is_rebuilt_from_issuer() {
        let a = actor(
            r#"{"userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:build-42","accountId":"111122223333",
            "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/ci/Deployer","userName":"Deployer"}}}}"#,
        );
        assert_eq!(a.principal, "arn:aws:sts::111122223333:assumed-role/Deployer/build-42");
        assert_eq!(a.name.as_deref(), Some("build-42"));
        assert_eq!(a.human, None);
    }

    #[test]
    fn sso_session_names_the_human() {
        let a = actor(
            r#"{"userIdentity":{"type":"AssumedRole","principalId":"AROA:jdoe",
            "arn":"arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_0123456789abcdef/jdoe",
            "sessionContext":{"sessionIssuer":{"type":"Role","userName":"AWSReservedSSO_ReadOnly_0123456789abcdef",
            "arn":"arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_ReadOnly_0123456789abcdef"}}}}"#,
        );
        assert_eq!(a.human.as_deref(), Some("jdoe"));
        assert_eq!(a.federation, Some(Federation::IdentityCenter));
    }

    #[test]
    fn source_identity_wins() {
        let a = actor(
            r#"{"userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/R/s",
            "sessionContext":{"sourceIdentity":"bob","sessionIssuer":{"userName":"R"}}}}"#,
        );
        assert_eq!(a.human.as_deref(), Some("bob"));
        assert_eq!(a.federation, Some(Federation::SourceIdentity));
    }

    #[test]
    fn root_without_arn() {
        let a = actor(r#"{"userIdentity":{"type":"Root","accountId":"111122223333","principalId":"111122223333"}}"#);
        assert_eq!(a.principal, "arn:aws:iam::111122223333:root");
        assert_eq!(a.kind, PrincipalKind::Root);
    }

    #[test]
    fn service_and_internal_callers() {
        let a = actor(r#"{"userIdentity":{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"}}"#);
        assert_eq!(a.principal, "cloudtrail.amazonaws.com");
        assert_eq!(a.name.as_deref(), Some("cloudtrail.amazonaws.com"));
        let a = actor(r#"{"userIdentity":{"accountId":"111122223333","invokedBy":"AWS Internal"}}"#);
        assert_eq!(a.principal, "AWS Internal");
        let a = actor(r#"{"eventName":"X"}"#);
        assert_eq!(a.principal, "unknown");
    }

    #[test]
    fn failed_login_for_unknown_user() {
        let a = actor(
            r#"{"eventName":"ConsoleLogin","eventType":"AwsConsoleSignIn","userIdentity":{"type":"IAMUser","principalId":"",
            "accountId":"111122223333","accessKeyId":"","userName":"HIDDEN_DUE_TO_SECURITY_REASONS"},
            "additionalEventData":{"MFAUsed":"No","LoginTo":"https://console.aws.amazon.com/"}}"#,
        );
        assert_eq!(a.principal, "IAMUser:111122223333:HIDDEN_DUE_TO_SECURITY_REASONS");
        assert_eq!(a.access_key_id, None);
        assert_eq!(a.mfa, Some(false));
        assert!(a.console);
    }

    #[test]
    fn federated_user_and_web_identity() {
        let a = actor(
            r#"{"userIdentity":{"type":"FederatedUser","principalId":"111122223333:carol",
            "arn":"arn:aws:sts::111122223333:federated-user/carol","sessionContext":{"sessionIssuer":{"type":"IAMUser",
            "arn":"arn:aws:iam::111122223333:user/broker","userName":"broker"}}}}"#,
        );
        assert_eq!(a.name.as_deref(), Some("carol"));
        assert_eq!(a.issuer.as_deref(), Some("arn:aws:iam::111122223333:user/broker"));
        let a = actor(
            r#"{"userIdentity":{"type":"WebIdentityUser","principalId":"accounts.google.com:app:user-id",
            "userName":"user-id","identityProvider":"accounts.google.com"}}"#,
        );
        assert_eq!(a.principal, "WebIdentityUser::user-id");
        assert_eq!(a.human.as_deref(), Some("user-id"));
        assert_eq!(a.federation, Some(Federation::WebIdentity));
    }

    #[test]
    fn identity_center_user() {
        let a = actor(
            r#"{"userIdentity":{"type":"IdentityCenterUser","accountId":"111122223333","onBehalfOf":{"userId":"u-1",
            "identityStoreArn":"arn:aws:identitystore::111122223333:identitystore/d-1"},"credentialId":"c"}}"#,
        );
        assert_eq!(a.principal, "IdentityCenterUser:111122223333:u-1");
        assert_eq!(a.human.as_deref(), Some("u-1"));
    }
}
