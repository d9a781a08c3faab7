//! Secrets out of stored and logged error texts.
//!
//! A delivery error often names the URL it failed on (`error sending request for url
//! (https://hooks.slack.com/services/T0/B0/secret)`), and webhook and Slack URLs carry their
//! secret in the path or query. Error texts are stored (`lastError`), shown to viewers and
//! logged, so every URL in them keeps only its scheme, host and port:
//! `https://hooks.slack.com/…`. User information (`user:password@`) goes too.

/// `text` with every URL cut to `scheme://host[:port]`, followed by `/…` where a path, query
/// or fragment was removed.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme: letters, digits, `+`, `-`, `.` before "://", starting with a letter.
        let before = &rest[..i];
        let scheme_len =
            before.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')).count();
        let scheme_start = i - scheme_len;
        let scheme = &rest[scheme_start..i];
        if scheme.is_empty() || !scheme.starts_with(|c: char| c.is_ascii_alphabetic()) {
            out.push_str(&rest[..i + 3]);
            rest = &rest[i + 3..];
            continue;
        }
        out.push_str(&rest[..i + 3]);
        let after = &rest[i + 3..];
        let end = after.find(is_url_end).unwrap_or(after.len());
        let url = &after[..end];
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let authority = &url[..authority_end];
        // user:password@host → host
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        out.push_str(host);
        if authority_end < url.len() || host.len() < authority.len() {
            out.push_str("/…");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Where a URL written into prose ends.
fn is_url_end(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '}' | '`' | '\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_their_host() {
        assert_eq!(
            redact_urls("error sending request for url (https://hooks.slack.com/services/T0/B0/XyZsecret): timed out"),
            "error sending request for url (https://hooks.slack.com/…): timed out"
        );
        assert_eq!(redact_urls("POST http://127.0.0.1:9/hook?token=abc failed"), "POST http://127.0.0.1:9/… failed");
        assert_eq!(redact_urls("https://user:pa55@example.com"), "https://example.com/…");
        assert_eq!(redact_urls("see https://example.com for more"), "see https://example.com for more");
        assert_eq!(
            redact_urls("two: http://a.example/x and http://b.example/y"),
            "two: http://a.example/… and http://b.example/…"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(redact_urls("odd ://x/y and 9x://z/w"), "odd ://x/y and 9x://z/w");
        assert_eq!(redact_urls("ünïcode https://h.example/ä?b#c ok"), "ünïcode https://h.example/… ok");
    }

    proptest::proptest! {
        #[test]
        fn a_secret_in_a_path_never_survives(prefix in "[ -~]{0,20}", secret in "[A-Za-z0-9]{12,40}", tail in "[ -~]{0,20}") {
            let text = format!("{prefix} https://hooks.example.com/services/{secret} {tail}");
            let redacted = redact_urls(&text);
            proptest::prop_assert!(!redacted.contains(&secret) || prefix.contains(&secret) || tail.contains(&secret));
        }
    }
}
