//! The page frame and small rendering helpers.
//!
//! Every value from a record is attacker-controlled. maud escapes everything interpolated
//! with `(…)`; nothing here uses `PreEscaped` on record data. Links to record values are
//! always our own paths (`/principals/…`, `/events?…`) with the value percent-encoded, so a
//! value can never become a `javascript:` URL or leave its attribute.

use maud::{html, Markup, Render, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::auth::CurrentUser;

/// Characters left as they are in a path segment or query value: unreserved only.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub fn url_component(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Characters that change how the text around them is shown, or are not shown at all:
/// bidirectional controls (U+202E turns `gnp.exe` into `exe.png`), zero-width and other
/// format characters, and control characters other than newline and tab.
pub fn is_hidden(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
        || (c.is_control() && c != '\n' && c != '\t')
}

/// Record text as it is shown: HTML-escaped, and each hidden character ([`is_hidden`])
/// replaced by a visible `U+XXXX` marker, so that what is on the screen is what is in the
/// record.
pub struct Shown<'a>(pub &'a str);

impl Render for Shown<'_> {
    fn render_to(&self, buffer: &mut String) {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let mut rest = self.0;
        while let Some(i) = rest.find(is_hidden) {
            let c = rest[i..].chars().next().expect("found");
            let _ = maud::Escaper::new(buffer).write_str(&rest[..i]);
            buffer.push_str(&format!(
                "<span class=\"hidden-char\" title=\"an invisible character in the record\">U+{:04X}</span>",
                c as u32
            ));
            rest = &rest[i + c.len_utf8()..];
        }
        let _ = maud::Escaper::new(buffer).write_str(rest);
    }
}

/// Shorthand for [`Shown`] on anything string-like.
pub fn t<S: AsRef<str> + ?Sized>(s: &S) -> Shown<'_> {
    Shown(s.as_ref())
}

/// The longest tooltip a clipped value carries (the detail pages show all of it).
const TOOLTIP_MAX: usize = 4096;

/// Attacker-chosen text in a list: at most `max` characters are shown, then `…`, with the
/// value (up to 4 KiB) in the tooltip. A 12 kB user name must not fill the events list or
/// squeeze the columns beside it; the event and alert pages show the whole value.
pub fn clip(text: &str, max: usize) -> Markup {
    match clipped(text, max) {
        None => html! { (t(text)) },
        Some(_) => html! { span.clipped title=(tooltip(text)) { (clip_text(text, max)) } },
    }
}

/// The first `max` characters of `text` when it is longer.
fn clipped(text: &str, max: usize) -> Option<&str> {
    text.char_indices().nth(max).map(|(i, _)| &text[..i])
}

/// `text`, or its first `max` characters and `…`, as shown text (no element of its own: for
/// links that carry the tooltip themselves).
fn clip_text(text: &str, max: usize) -> Markup {
    match clipped(text, max) {
        Some(shown) => html! { (t(shown)) "…" },
        None => html! { (t(text)) },
    }
}

/// `path?k=v&…` with each value percent-encoded.
pub fn query_href(path: &str, pairs: &[(&str, String)]) -> String {
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", url_component(v))).collect();
    format!("{path}?{}", query.join("&"))
}

fn tooltip(text: &str) -> &str {
    text.char_indices().nth(TOOLTIP_MAX).map_or(text, |(i, _)| &text[..i])
}

/// The dashboard's sections, in navigation order: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/events", "Events"),
    ("/alerts", "Alerts"),
    ("/integrity", "Integrity"),
    ("/accounts", "Accounts"),
    ("/rules", "Rules"),
];

/// The `<head>` of every page; `script` adds the dashboard's one script file.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · trailwatch" }
            link rel="stylesheet" href="/static/style.css";
            link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
            @if script { script src="/static/app.js" defer {} }
        }
    }
}

/// A full page: header with navigation and the user, then `body`.
pub fn page(title: &str, active: &str, user: &CurrentUser, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, true))
            body {
                header.top {
                    a.brand href="/" { span.mark {} "trailwatch" }
                    nav {
                        @for (path, label) in NAV {
                            a.active[*path == active] href=(path) { (label) }
                        }
                    }
                    div.who {
                        span { (user.name) " " span.muted { "(" (user.role.as_str()) ")" } }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf.as_deref().unwrap_or(""));
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `2026-11-25 14:03:12` (UTC; the title attribute says so).
pub fn time(ms: i64) -> Markup {
    let text = model::timefmt::format_millis(ms);
    let short = text.trim_end_matches('Z').replacen('T', " ", 1);
    let short = short.split('.').next().unwrap_or(&short).to_owned();
    html! { span title=(text) { (short) } }
}

pub fn time_opt(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => time(ms),
        None => html! { span.muted { "never" } },
    }
}

/// "3 min ago", "2 h ago", "5 d ago".
pub fn ago(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// A byte count for people: 1.2 GB, 830 MB, 12 KB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 || v >= 100.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 0.1 {
        "<0.1%".into()
    } else {
        format!("{p:.1}%")
    }
}

pub fn principal_href(principal: &str) -> String {
    format!("/principals/{}", url_component(principal))
}

pub fn resource_href(resource: &str) -> String {
    format!("/resources/{}", url_component(resource))
}

pub fn event_href(event_id: &str) -> String {
    format!("/events/{}", url_component(event_id))
}

/// `/events?name=value`.
pub fn search_href(name: &str, value: &str) -> String {
    format!("/events?{name}={}", url_component(value))
}

/// A principal as people read it: `role/session` for an assumed role, the user name for an
/// IAM user, `root` for an account's root; anything else as it is. The account is shown
/// beside it elsewhere, and the full ARN is the link's title.
pub fn principal_short(principal: &str) -> &str {
    let Some(rest) = principal.strip_prefix("arn:") else { return principal };
    // arn:partition:service:region:account:resource
    let resource = rest.splitn(5, ':').nth(4).unwrap_or(rest);
    if let Some(r) = resource.strip_prefix("assumed-role/") {
        return r;
    }
    if let Some(u) = resource.strip_prefix("user/") {
        return u;
    }
    if resource == "root" {
        return "root";
    }
    principal
}

/// Characters of a principal shown in lists.
pub const PRINCIPAL_SHOWN: usize = 64;

pub fn principal_link(principal: &str) -> Markup {
    let short = principal_short(principal);
    html! {
        a.wrap href=(principal_href(principal)) title=(tooltip(principal)) { (clip_text(short, PRINCIPAL_SHOWN)) }
    }
}

/// The account of an ARN (`arn:partition:service:region:ACCOUNT:resource`), if it has one.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")?.split(':').nth(3).filter(|a| !a.is_empty())
}

pub fn ip_link(ip: Option<&str>) -> Markup {
    match ip {
        Some(ip) => html! {
            a.wrap href=(search_href("source_ip", ip)) title=[clipped(ip, 48).map(|_| tooltip(ip))] { (clip_text(ip, 48)) }
        },
        None => html! { span.muted { "–" } },
    }
}

/// A level or state as a coloured badge (the class is chosen from a fixed list).
pub fn badge(text: &str) -> Markup {
    let class = match text {
        "critical" | "high" | "medium" | "low" | "informational" | "ok" | "warn" | "bad" | "active" | "wired"
        | "open" | "acknowledged" | "resolved" | "error" | "idle" => text,
        _ => "unknown",
    };
    html! { span class={ "badge " (class) } { (text) } }
}

/// A KPI card.
pub fn kpi(label: &str, value: &str, class: &str, note: Option<&str>) -> Markup {
    html! {
        div.card.kpi {
            div.label { (label) }
            div class={ "value " (class) } { (value) }
            @if let Some(n) = note { div.note { (n) } }
        }
    }
}

/// The login page (its own frame: no navigation).
pub fn login_page(csrf: &str, next: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in", false))
            body.login {
                form.login-box method="post" action="/login" {
                    h1 { span.mark {} "trailwatch" }
                    p.muted { "CloudTrail monitoring, on your own machine." }
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="username" { "User" }
                    input type="text" id="username" name="username" autocomplete="username" required autofocus;
                    label for="password" { "Password" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Log in" }
                    @if let Some(e) = error { p.error role="alert" { (e) } }
                }
            }
        }
    }
}

/// A page that says what went wrong, inside the frame.
pub fn message_page(title: &str, user: &CurrentUser, text: &str) -> Markup {
    page(title, "", user, html! { h1 { (title) } p { (text) } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_links() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(0, 0), "–");
        assert_eq!(principal_href("arn:aws:iam::1:user/a b"), "/principals/arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%20b");
        assert_eq!(search_href("source_ip", "javascript:alert(1)"), "/events?source_ip=javascript%3Aalert%281%29");
        assert_eq!(principal_short("arn:aws:sts::1:assumed-role/Admin/bob@example.com"), "Admin/bob@example.com");
        assert_eq!(principal_short("arn:aws:iam::1:user/path/alice"), "path/alice");
        assert_eq!(principal_short("arn:aws:iam::1:root"), "root");
        assert_eq!(principal_short("ec2.amazonaws.com"), "ec2.amazonaws.com");
        assert_eq!(principal_short("arn:broken"), "arn:broken");
    }

    #[test]
    fn hidden_characters_become_visible() {
        let s = html! { (t("admin\u{202E}gnp.exe\u{200B}<b>")) }.into_string();
        assert_eq!(
            s,
            "admin<span class=\"hidden-char\" title=\"an invisible character in the record\">U+202E</span>gnp.exe\
             <span class=\"hidden-char\" title=\"an invisible character in the record\">U+200B</span>&lt;b&gt;"
        );
        assert_eq!(html! { (t("plain & simple")) }.into_string(), "plain &amp; simple");
    }

    #[test]
    fn record_text_is_escaped() {
        let m = principal_link("\"><img src=x onerror=alert(1)>");
        let s = m.into_string();
        assert!(!s.contains("<img"), "{s}");
        assert!(s.contains("&lt;img"), "{s}");
    }
}
