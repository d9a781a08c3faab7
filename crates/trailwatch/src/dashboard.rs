//! The dashboard as `serve` and `demo` start it: site information, the first admin, and the
//! listener (plain HTTP, or HTTPS with `[web] tls_cert`/`tls_key`).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;

use crate::config::WebConfig;

/// What the dashboard shows besides the store.
pub fn site_info(
    accounts: Vec<aws::AccountSpec>,
    aws: aws::AwsSettings,
    rules: &detect::RuleSet,
    rule_errors: &[detect::LoadError],
    extra_names: HashMap<String, String>,
    web: &WebConfig,
) -> web::SiteInfo {
    let mut account_names = extra_names;
    for a in &accounts {
        account_names.insert(a.account_id.clone(), a.name.clone());
    }
    let (rules, rule_errors) = crate::detection::rule_infos(rules, rule_errors);
    web::SiteInfo {
        accounts,
        aws,
        account_names,
        rules,
        rule_errors,
        secure_cookies: web.secure_cookies,
        trust_proxy: web.trust_proxy,
        retention: None,
        forwarders: Vec::new(),
    }
}

/// With no user in the store yet, creates `admin` and prints its password (once).
pub fn ensure_admin(store: &dyn store::Store, password: Option<&str>) -> anyhow::Result<()> {
    if let Some(pw) = web::ensure_first_admin(store, password).context("creating the first dashboard user")? {
        if password.is_some() {
            eprintln!("trailwatch: created dashboard user admin with the given password");
        } else {
            eprintln!("trailwatch: created dashboard user admin; password (shown once): {pw}");
        }
    }
    Ok(())
}

/// Binds the dashboard's address (before anything slow starts, so a taken port fails fast).
pub async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen} (web.listen)"))
}

/// Serves the dashboard until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: web::WebState,
    tls: Option<&(PathBuf, PathBuf)>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match tls {
        Some((cert, key)) => {
            let acceptor = web::tls::acceptor(cert, key).context("web.tls_cert / web.tls_key")?;
            web::tls::serve(listener, acceptor, state, shutdown).await?;
        }
        None => web::serve(listener, state, shutdown).await?,
    }
    Ok(())
}

/// The URL people open.
pub fn url(listen: &str, tls: bool) -> String {
    format!("{}://{listen}", if tls { "https" } else { "http" })
}
