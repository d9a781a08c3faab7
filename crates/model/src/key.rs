//! S3 object key layouts of CloudTrail log, Insights and digest files.
//!
//! ```text
//! [prefix/]AWSLogs/[o-orgid/]<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_YYYYMMDDTHHMMZ_<suffix>.json.gz
//! [prefix/]AWSLogs/[o-orgid/]<acct>/CloudTrail-Insight/<region>/YYYY/MM/DD/<acct>_CloudTrail-Insight_<region>_YYYYMMDDTHHMMZ_<suffix>.json.gz
//! [prefix/]AWSLogs/[o-orgid/]<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<homeRegion>_YYYYMMDDTHHMMSSZ.json.gz
//! ```
//!
//! [`TrailKey::parse`] accepts exactly these layouts and checks that the parts agree with each
//! other (the account and region in the directory and the file name, the date directories and
//! the file's timestamp). Anything else is a [`KeyError`] naming what is wrong, so callers can
//! tell "not ours, skip it" (no `AWSLogs/` layout at all) from "looks like ours but is not".

use std::fmt;

use crate::timefmt::{format_millis, from_civil, EpochMillis};

/// Which kind of CloudTrail file a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Log,
    Insight,
    Digest,
}

impl ObjectKind {
    fn dir(self) -> &'static str {
        match self {
            ObjectKind::Log => "CloudTrail",
            ObjectKind::Insight => "CloudTrail-Insight",
            ObjectKind::Digest => "CloudTrail-Digest",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Log => "log",
            ObjectKind::Insight => "insight",
            ObjectKind::Digest => "digest",
        }
    }
}

/// A parsed CloudTrail object key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailKey {
    /// The trail's S3 key prefix, without the trailing `/` (empty when none).
    pub prefix: String,
    pub org_id: Option<String>,
    pub account_id: String,
    pub kind: ObjectKind,
    pub region: String,
    /// Delivery time from the file name (minute precision for logs, seconds for digests).
    pub time: EpochMillis,
    /// Digests only: the trail name and the trail's home region.
    pub trail_name: Option<String>,
    pub home_region: Option<String>,
    /// Logs and Insights: the random suffix that makes the name unique.
    pub unique: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key {key:?} is not in a CloudTrail layout (no AWSLogs/ directory)")]
    NotCloudTrail { key: String },
    #[error("key {key:?} is not a CloudTrail log, Insights or digest key: {reason}")]
    Malformed { key: String, reason: String },
}

impl TrailKey {
    pub fn parse(key: &str) -> Result<TrailKey, KeyError> {
        let segments: Vec<&str> = key.split('/').collect();
        let mut first_error = None;
        for (i, _) in segments.iter().enumerate().filter(|(_, s)| **s == "AWSLogs") {
            match parse_from(&segments, i) {
                Ok(k) => return Ok(k),
                Err(reason) => {
                    first_error.get_or_insert(reason);
                }
            }
        }
        match first_error {
            None => Err(KeyError::NotCloudTrail { key: key.to_string() }),
            Some(reason) => Err(KeyError::Malformed { key: key.to_string(), reason }),
        }
    }

    /// The key this value was parsed from (or would be written at).
    pub fn to_key(&self) -> String {
        let (y, mo, d, h, mi, s) = crate::timefmt::civil(self.time).unwrap_or((1970, 1, 1, 0, 0, 0));
        let mut out = String::new();
        if !self.prefix.is_empty() {
            out.push_str(&self.prefix);
            out.push('/');
        }
        out.push_str("AWSLogs/");
        if let Some(org) = &self.org_id {
            out.push_str(org);
            out.push('/');
        }
        let acct = &self.account_id;
        let region = &self.region;
        let dir = self.kind.dir();
        out.push_str(&format!("{acct}/{dir}/{region}/{y:04}/{mo:02}/{d:02}/{acct}_{dir}_{region}_"));
        match self.kind {
            ObjectKind::Digest => out.push_str(&format!(
                "{}_{}_{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z.json.gz",
                self.trail_name.as_deref().unwrap_or(""),
                self.home_region.as_deref().unwrap_or(""),
            )),
            ObjectKind::Log | ObjectKind::Insight => out.push_str(&format!(
                "{y:04}{mo:02}{d:02}T{h:02}{mi:02}Z_{}.json.gz",
                self.unique.as_deref().unwrap_or("")
            )),
        }
        out
    }
}

impl fmt::Display for TrailKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_key())
    }
}

fn parse_from(segments: &[&str], awslogs: usize) -> Result<TrailKey, String> {
    let prefix = segments[..awslogs].join("/");
    let mut rest = &segments[awslogs + 1..];
    let mut org_id = None;
    if let Some(first) = rest.first() {
        if first.starts_with("o-") {
            if !is_org_id(first) {
                return Err(format!(
                    "{first:?} is not an organization id (o- and 10 to 32 lowercase letters or digits)"
                ));
            }
            org_id = Some(first.to_string());
            rest = &rest[1..];
        }
    }
    let [account, dir, region, year, month, day, file] = rest else {
        return Err(format!(
            "expected <account>/<CloudTrail|CloudTrail-Digest|CloudTrail-Insight>/<region>/YYYY/MM/DD/<file> after AWSLogs/, found {} segments",
            rest.len()
        ));
    };
    if !is_account_id(account) {
        return Err(format!("{account:?} is not a 12-digit account id"));
    }
    let kind = match *dir {
        "CloudTrail" => ObjectKind::Log,
        "CloudTrail-Insight" => ObjectKind::Insight,
        "CloudTrail-Digest" => ObjectKind::Digest,
        other => return Err(format!("{other:?} is not a CloudTrail directory")),
    };
    if !is_region(region) {
        return Err(format!("{region:?} is not a region name"));
    }
    let (y, m, d) = (digits(year, 4)?, digits(month, 2)?, digits(day, 2)?);

    let name = file.strip_suffix(".json.gz").ok_or_else(|| format!("file name {file:?} does not end in .json.gz"))?;
    let head = format!("{account}_{}_{region}_", kind.dir());
    let tail = name.strip_prefix(&head).ok_or_else(|| {
        format!("file name {file:?} does not start with {head:?} (account and region must match the directories)")
    })?;

    let (time, trail_name, home_region, unique) = match kind {
        ObjectKind::Log | ObjectKind::Insight => {
            let (stamp, unique) =
                tail.split_once('_').ok_or_else(|| format!("file name {file:?} lacks the _<unique> suffix"))?;
            if unique.is_empty() || !unique.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("unique suffix {unique:?} is not alphanumeric"));
            }
            (stamp_millis(stamp, false)?, None, None, Some(unique.to_string()))
        }
        ObjectKind::Digest => {
            // <trail>_<homeRegion>_<stamp>; a trail name may itself contain underscores.
            let (before_stamp, stamp) =
                tail.rsplit_once('_').ok_or_else(|| format!("digest name {file:?} lacks a timestamp"))?;
            let (trail, home) = before_stamp
                .rsplit_once('_')
                .ok_or_else(|| format!("digest name {file:?} lacks <trail>_<home region>"))?;
            if trail.is_empty() {
                return Err(format!("digest name {file:?} has an empty trail name"));
            }
            if !is_region(home) {
                return Err(format!("{home:?} is not a home region name"));
            }
            (stamp_millis(stamp, true)?, Some(trail.to_string()), Some(home.to_string()), None)
        }
    };
    let (fy, fm, fd, ..) = crate::timefmt::civil(time).ok_or("timestamp out of range")?;
    if (fy as u32, u32::from(fm), u32::from(fd)) != (y, m, d) {
        return Err(format!(
            "date directories {year}/{month}/{day} do not match the file's timestamp {}",
            format_millis(time)
        ));
    }
    Ok(TrailKey {
        prefix,
        org_id,
        account_id: account.to_string(),
        kind,
        region: region.to_string(),
        time,
        trail_name,
        home_region,
        unique,
    })
}

/// `YYYYMMDDTHHMMZ` (logs) or `YYYYMMDDTHHMMSSZ` (digests).
fn stamp_millis(stamp: &str, with_seconds: bool) -> Result<EpochMillis, String> {
    let want = if with_seconds { "YYYYMMDDTHHMMSSZ" } else { "YYYYMMDDTHHMMZ" };
    let b = stamp.as_bytes();
    let ok_shape = b.len() == want.len()
        && b[8] == b'T'
        && b[b.len() - 1] == b'Z'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..b.len() - 1].iter().all(u8::is_ascii_digit);
    if !ok_shape {
        return Err(format!("timestamp {stamp:?} is not {want}"));
    }
    let n = |r: std::ops::Range<usize>| stamp[r].parse::<u32>().expect("checked digits");
    let seconds = if with_seconds { n(13..15) as u8 } else { 0 };
    from_civil(n(0..4) as i32, n(4..6) as u8, n(6..8) as u8, n(9..11) as u8, n(11..13) as u8, seconds)
        .ok_or_else(|| format!("timestamp {stamp:?} is not a valid UTC time"))
}

fn digits(s: &str, len: usize) -> Result<u32, String> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.parse().expect("checked digits"))
    } else {
        Err(format!("{s:?} is not a {len}-digit date directory"))
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-").is_some_and(|id| {
        (10..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// Region names: lowercase words joined by `-`, ending in a number (`us-east-1`, `us-gov-west-1`).
pub fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn log_key() {
        let k = TrailKey::parse(
            "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/15/123456789012_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json.gz",
        )
        .unwrap();
        assert_eq!(k.kind, ObjectKind::Log);
        assert_eq!(k.account_id, "123456789012");
        assert_eq!(k.region, "us-east-1");
        assert_eq!(format_millis(k.time), "2024-01-15T20:35:00Z");
        assert_eq!(k.unique.as_deref(), Some("ktqOC7inSW0L9lcP"));
        assert_eq!(k.prefix, "");
        assert_eq!(k.org_id, None);
    }

    #[test]
    fn organization_trail_with_prefix() {
        let key = "audit/logs/AWSLogs/o-aa111bb222/493859302102/CloudTrail/us-east-1/2020/11/01/493859302102_CloudTrail_us-east-1_20201101T0935Z_3dQHu710wemY6m0h.json.gz";
        let k = TrailKey::parse(key).unwrap();
        assert_eq!(k.prefix, "audit/logs");
        assert_eq!(k.org_id.as_deref(), Some("o-aa111bb222"));
        assert_eq!(k.account_id, "493859302102");
        assert_eq!(k.to_key(), key);
    }

    #[test]
    fn digest_key_with_underscored_trail_name() {
        let key = "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2024/03/01/111122223333_CloudTrail-Digest_eu-west-1_my_org_trail_us-east-1_20240301T010203Z.json.gz";
        let k = TrailKey::parse(key).unwrap();
        assert_eq!(k.kind, ObjectKind::Digest);
        assert_eq!(k.trail_name.as_deref(), Some("my_org_trail"));
        assert_eq!(k.home_region.as_deref(), Some("us-east-1"));
        assert_eq!(format_millis(k.time), "2024-03-01T01:02:03Z");
        assert_eq!(k.to_key(), key);
    }

    #[test]
    fn insight_key() {
        let key = "AWSLogs/111122223333/CloudTrail-Insight/us-west-2/2024/03/01/111122223333_CloudTrail-Insight_us-west-2_20240301T0105Z_abcdefABCDEF0123.json.gz";
        assert_eq!(TrailKey::parse(key).unwrap().kind, ObjectKind::Insight);
    }

    #[test]
    fn foreign_and_inconsistent_keys_are_rejected() {
        let cases = [
            ("manifest.json", "no AWSLogs"),
            ("AWSLogs/111122223333/CloudTrail/us-east-1/", "segments"),
            ("AWSLogs/111122223333/ConfigWritabilityCheckFile", "segments"),
            (
                "AWSLogs/11112222333/CloudTrail/us-east-1/2024/01/15/11112222333_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json.gz",
                "12-digit",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/999999999999_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json.gz",
                "must match",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/16/111122223333_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json.gz",
                "do not match",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json",
                ".json.gz",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T2595Z_ktqOC7inSW0L9lcP.json.gz",
                "valid UTC",
            ),
            (
                "AWSLogs/o-BAD/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T2035Z_x.json.gz",
                "organization id",
            ),
            (
                "AWSLogs/111122223333/Config/us-east-1/2024/01/15/111122223333_Config_us-east-1_20240115T2035Z_x.json.gz",
                "not a CloudTrail directory",
            ),
        ];
        for (key, want) in cases {
            let err = TrailKey::parse(key).unwrap_err().to_string();
            assert!(err.contains(want), "{key}: {err}");
        }
    }

    fn region() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("us-east-1".to_string()),
            Just("eu-central-2".to_string()),
            Just("us-gov-west-1".to_string()),
            Just("ap-southeast-4".to_string())
        ]
    }

    proptest! {
        #[test]
        fn keys_round_trip(
            prefix in "([a-z0-9-]{1,8}(/[a-z0-9-]{1,8}){0,2})?",
            org in proptest::option::of("o-[a-z0-9]{10,12}"),
            account in "[0-9]{12}",
            region in region(),
            home in region(),
            minutes in 0i64..60_000_000,
            seconds in 0i64..60,
            kind in prop_oneof![Just(ObjectKind::Log), Just(ObjectKind::Insight), Just(ObjectKind::Digest)],
            unique in "[A-Za-z0-9]{16}",
            trail in "[A-Za-z0-9_.-]{1,20}",
        ) {
            let digest = kind == ObjectKind::Digest;
            let k = TrailKey {
                prefix,
                org_id: org,
                account_id: account,
                kind,
                region,
                time: (minutes * 60 + if digest { seconds } else { 0 }) * 1000,
                trail_name: digest.then_some(trail),
                home_region: digest.then_some(home),
                unique: (!digest).then_some(unique),
            };
            prop_assert_eq!(TrailKey::parse(&k.to_key()).unwrap(), k);
        }

        #[test]
        fn any_key_parses_or_errors_without_panicking(key in "\\PC{0,200}") {
            let _ = TrailKey::parse(&key);
        }
    }
}
