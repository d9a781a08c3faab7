//! The CloudTrail record, typed.
//!
//! [`Record`] borrows from the record's JSON text: string fields are [`Str`] (borrowed
//! unless the JSON string contains escapes) and the free-form service payloads
//! (`requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails`, …)
//! are `&RawValue`, i.e. validated JSON kept as text. Parsing one therefore costs one pass
//! over the record and a handful of small allocations at most.
//!
//! Unknown fields are ignored here on purpose: the original record text is always stored
//! verbatim next to the extracted columns (see `ParsedEvent::raw`), so nothing is dropped.
//! [`Record::unknown_fields`] lists them when someone wants to know.
//!
//! Field types follow the CloudTrail record-contents reference. Where real producers are
//! known to disagree on a type (`readOnly`, `managementEvent`, `sessionCredentialFromConsole`
//! and `mfaAuthenticated` appear both as JSON booleans and as the strings `"true"`/`"false"`)
//! the field is a [`Flag`], which accepts either. Everything else is strict: an `eventName`
//! that is a number is not a CloudTrail record and is reported as such.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A JSON string borrowed from the input when it has no escapes, owned otherwise.
///
/// serde only borrows a `Cow<str>` that is a field by itself, not one inside an `Option`,
/// so the optional string fields of [`Record`] use this instead.
#[derive(Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Every top-level field the CloudTrail record-contents reference documents.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    #[serde(borrow)]
    pub event_version: Option<Str<'a>>,
    #[serde(borrow)]
    pub user_identity: Option<UserIdentity<'a>>,
    #[serde(borrow)]
    pub event_time: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_source: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_name: Option<Str<'a>>,
    #[serde(borrow)]
    pub aws_region: Option<Str<'a>>,
    /// An IPv4/IPv6 address, a service DNS name (`ec2.amazonaws.com`) or `AWS Internal`.
    #[serde(borrow, rename = "sourceIPAddress")]
    pub source_ip_address: Option<Str<'a>>,
    #[serde(borrow)]
    pub user_agent: Option<Str<'a>>,
    #[serde(borrow)]
    pub error_code: Option<Str<'a>>,
    #[serde(borrow)]
    pub error_message: Option<Str<'a>>,
    #[serde(borrow)]
    pub request_parameters: Option<&'a RawValue>,
    #[serde(borrow)]
    pub response_elements: Option<&'a RawValue>,
    #[serde(borrow)]
    pub additional_event_data: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestID")]
    pub request_id: Option<Str<'a>>,
    #[serde(borrow, rename = "eventID")]
    pub event_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub api_version: Option<Str<'a>>,
    pub read_only: Option<Flag>,
    pub management_event: Option<Flag>,
    #[serde(borrow)]
    pub event_category: Option<Str<'a>>,
    /// Entries that are not objects are dropped from this typed view (the raw JSON keeps them).
    #[serde(borrow, default, deserialize_with = "lenient_resources")]
    pub resources: Option<Vec<Resource<'a>>>,
    #[serde(borrow)]
    pub recipient_account_id: Option<Str<'a>>,
    #[serde(borrow, rename = "sharedEventID")]
    pub shared_event_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub service_event_details: Option<&'a RawValue>,
    #[serde(borrow)]
    pub vpc_endpoint_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub vpc_endpoint_account_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub tls_details: Option<TlsDetails<'a>>,
    pub session_credential_from_console: Option<Flag>,
    #[serde(borrow)]
    pub edge_device_details: Option<&'a RawValue>,
    #[serde(borrow)]
    pub addendum: Option<&'a RawValue>,
    #[serde(borrow)]
    pub insight_details: Option<InsightDetails<'a>>,
    #[serde(borrow)]
    pub annotation: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_context: Option<&'a RawValue>,
}

/// The top-level keys [`Record`] knows, in the order of the reference.
pub const KNOWN_FIELDS: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "eventType",
    "apiVersion",
    "readOnly",
    "managementEvent",
    "eventCategory",
    "resources",
    "recipientAccountId",
    "sharedEventID",
    "serviceEventDetails",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "tlsDetails",
    "sessionCredentialFromConsole",
    "edgeDeviceDetails",
    "addendum",
    "insightDetails",
    "annotation",
    "eventContext",
];

impl<'a> Record<'a> {
    /// Parses one record from its JSON text.
    pub fn from_json(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Top-level keys of `text` that [`Record`] does not model (kept in the raw JSON).
    pub fn unknown_fields(text: &str) -> Result<Vec<String>, serde_json::Error> {
        let map: std::collections::BTreeMap<String, IgnoredAny> = serde_json::from_str(text)?;
        Ok(map.into_keys().filter(|k| !KNOWN_FIELDS.contains(&k.as_str())).collect())
    }

    /// `true` for Insights records (`eventType` `AwsCloudTrailInsight`).
    pub fn is_insight(&self) -> bool {
        self.event_type.as_deref() == Some("AwsCloudTrailInsight") || self.insight_details.is_some()
    }
}

/// The `userIdentity` element, in all its variants (`type` is an open set: `Root`, `IAMUser`,
/// `AssumedRole`, `Role`, `FederatedUser`, `Directory`, `AWSAccount`, `AWSService`,
/// `IdentityCenterUser`, `SAMLUser`, `WebIdentityUser`, `Unknown`, …).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub principal_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub arn: Option<Str<'a>>,
    #[serde(borrow)]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub access_key_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub user_name: Option<Str<'a>>,
    #[serde(borrow)]
    pub invoked_by: Option<Str<'a>>,
    #[serde(borrow)]
    pub session_context: Option<SessionContext<'a>>,
    /// SAML and web identity federation: the IdP (`saml:namequalifier`, OIDC issuer).
    #[serde(borrow)]
    pub identity_provider: Option<Str<'a>>,
    #[serde(borrow)]
    pub credential_id: Option<Str<'a>>,
    /// `IdentityCenterUser`.
    #[serde(borrow)]
    pub user_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub identity_store_arn: Option<Str<'a>>,
    /// The IAM Identity Center user an identity-enhanced session acts for.
    #[serde(borrow)]
    pub on_behalf_of: Option<OnBehalfOf<'a>>,
    #[serde(borrow)]
    pub in_scope_of: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext<'a> {
    /// May be an empty object (`{}`) when the credentials are not temporary.
    #[serde(borrow)]
    pub session_issuer: Option<SessionIssuer<'a>>,
    #[serde(borrow)]
    pub web_id_federation_data: Option<WebIdFederationData<'a>>,
    #[serde(borrow)]
    pub attributes: Option<SessionAttributes<'a>>,
    /// Set with `sts:SourceIdentity`; persists through role chaining.
    #[serde(borrow)]
    pub source_identity: Option<Str<'a>>,
    #[serde(borrow)]
    pub ec2_role_delivery: Option<Str<'a>>,
    pub assumed_root: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Str<'a>>,
    #[serde(borrow)]
    pub principal_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub arn: Option<Str<'a>>,
    #[serde(borrow)]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub user_name: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdFederationData<'a> {
    #[serde(borrow)]
    pub federated_provider: Option<Str<'a>>,
    #[serde(borrow)]
    pub attributes: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes<'a> {
    /// ISO 8601, basic or extended notation.
    #[serde(borrow)]
    pub creation_date: Option<Str<'a>>,
    /// The string `"true"` or `"false"` in real records.
    pub mfa_authenticated: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf<'a> {
    #[serde(borrow)]
    pub user_id: Option<Str<'a>>,
    #[serde(borrow)]
    pub identity_store_arn: Option<Str<'a>>,
}

/// An entry of `resources`. The reference spells the key `ARN`; S3 list calls use `ARNPrefix`.
#[derive(Debug, Default, Deserialize)]
pub struct Resource<'a> {
    #[serde(borrow, rename = "ARN", alias = "arn")]
    pub arn: Option<Str<'a>>,
    #[serde(borrow, rename = "ARNPrefix")]
    pub arn_prefix: Option<Str<'a>>,
    #[serde(borrow, rename = "accountId")]
    pub account_id: Option<Str<'a>>,
    #[serde(borrow, rename = "type")]
    pub kind: Option<Str<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails<'a> {
    #[serde(borrow)]
    pub tls_version: Option<Str<'a>>,
    #[serde(borrow)]
    pub cipher_suite: Option<Str<'a>>,
    #[serde(borrow)]
    pub client_provided_host_header: Option<Str<'a>>,
}

/// `insightDetails` of an Insights record.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightDetails<'a> {
    /// `Start` or `End`.
    #[serde(borrow)]
    pub state: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_source: Option<Str<'a>>,
    #[serde(borrow)]
    pub event_name: Option<Str<'a>>,
    /// `ApiCallRateInsight` or `ApiErrorRateInsight`.
    #[serde(borrow)]
    pub insight_type: Option<Str<'a>>,
    #[serde(borrow)]
    pub error_code: Option<Str<'a>>,
    #[serde(borrow)]
    pub insight_context: Option<&'a RawValue>,
}

/// `resources` as a list of objects; other entries (some exporters write Python reprs as
/// strings) are skipped instead of failing the whole record.
fn lenient_resources<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Resource<'a>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry<'a> {
        #[serde(borrow)]
        Object(Resource<'a>),
        Other(IgnoredAny),
    }
    let entries: Option<Vec<Entry<'a>>> = Option::deserialize(deserializer)?;
    Ok(entries.map(|v| {
        v.into_iter()
            .filter_map(|e| match e {
                Entry::Object(r) => Some(r),
                Entry::Other(_) => None,
            })
            .collect()
    }))
}

/// A boolean that real producers write either as a JSON boolean or as a string.
///
/// `true`/`"true"` and `false`/`"false"` (any letter case) map to `True`/`False`; any other
/// value (another string, a number, an object) is kept as `Other` rather than failing the
/// whole record, because the raw JSON still holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    True,
    False,
    Other,
}

impl Flag {
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Flag::True => Some(true),
            Flag::False => Some(false),
            Flag::Other => None,
        }
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FlagVisitor;
        impl<'de> Visitor<'de> for FlagVisitor {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or a \"true\"/\"false\" string")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(if v { Flag::True } else { Flag::False })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Flag, E> {
                Ok(if v.eq_ignore_ascii_case("true") {
                    Flag::True
                } else if v.eq_ignore_ascii_case("false") {
                    Flag::False
                } else {
                    Flag::Other
                })
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Flag, E> {
                Ok(Flag::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Flag, E> {
                Ok(Flag::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Flag, E> {
                Ok(Flag::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Flag, E> {
                Ok(Flag::Other)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Flag, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Flag::Other)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Flag, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Flag::Other)
            }
        }
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_accept_booleans_and_strings() {
        #[derive(Deserialize)]
        struct T {
            a: Flag,
            b: Flag,
            c: Flag,
            d: Flag,
        }
        let t: T = serde_json::from_str(r#"{"a":true,"b":"false","c":"TRUE","d":"maybe"}"#).unwrap();
        assert_eq!(t.a, Flag::True);
        assert_eq!(t.b, Flag::False);
        assert_eq!(t.c, Flag::True);
        assert_eq!(t.d, Flag::Other);
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = r#"{"eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","errorMessage":"a \"quoted\" word"}"#;
        let r = Record::from_json(text).unwrap();
        assert!(matches!(r.event_name, Some(Str(Cow::Borrowed("StopLogging")))));
        assert!(matches!(r.error_message, Some(Str(Cow::Owned(_)))));
        assert_eq!(r.error_message.as_deref(), Some("a \"quoted\" word"));
    }

    #[test]
    fn wrong_core_types_are_errors() {
        let err = Record::from_json(r#"{"eventName":42}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn unknown_fields_are_listed() {
        let unknown = Record::unknown_fields(r#"{"eventName":"X","p_row_id":"1","newField":{}}"#).unwrap();
        assert_eq!(unknown, vec!["newField".to_string(), "p_row_id".to_string()]);
    }

    #[test]
    fn payloads_stay_raw_json() {
        let r = Record::from_json(r#"{"requestParameters":{"a":[1,2]},"responseElements":null}"#).unwrap();
        assert_eq!(r.request_parameters.unwrap().get(), r#"{"a":[1,2]}"#);
        assert!(r.response_elements.is_none());
    }
}
