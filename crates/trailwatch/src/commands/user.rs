//! `trailwatch user add|list|token [create|list|revoke]`: dashboard users and API tokens in
//! the configured store.

use std::io::BufRead;

use anyhow::Context;
use serde_json::json;
use store::Role;

use super::{now_millis, open_store, Open};
use crate::cli::{
    TokenCommand, TokenCreateArgs, TokenListArgs, TokenRevokeArgs, UserAddArgs, UserListArgs, UserTokenArgs,
};
use crate::output::{table, Format};

pub fn add(args: UserAddArgs) -> anyhow::Result<()> {
    let name = args.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        anyhow::bail!("user name {:?}: 1 to 64 characters, no spaces or control characters", args.name);
    }
    let role = Role::parse(&args.role).context("role must be admin or viewer")?;
    let store = open_store(&args.store, Open::Create)?;
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
        let pw = line.trim_end_matches(['\n', '\r']).to_owned();
        web::auth::check_new_password(&pw).map_err(anyhow::Error::msg)?;
        (pw, false)
    } else {
        (web::auth::generate_password(), true)
    };
    let existing = store.state().user(name)?;
    let mut user = web::auth::new_user(name, role, &password, now_millis())?;
    if let Some(old) = &existing {
        user.created_at = old.created_at;
    }
    store.state().put_user(&user)?;
    let what = if existing.is_some() { "reset" } else { "created" };
    if generated {
        println!("user {name} ({}) {what}; password: {password}", role.as_str());
    } else {
        println!("user {name} ({}) {what}", role.as_str());
    }
    // Whoever knew the old password may have made tokens: a reset ends them with the sessions.
    if existing.is_some() {
        if args.keep_tokens {
            let kept = store.state().api_tokens(Some(name))?.len();
            if kept > 0 {
                eprintln!("kept {kept} API token(s) of {name} (--keep-tokens)");
            }
        } else {
            let revoked = store.state().revoke_api_tokens(name)?;
            if revoked > 0 {
                eprintln!("revoked {revoked} API token(s) of {name} (--keep-tokens keeps them)");
            }
        }
    }
    Ok(())
}

pub fn list(args: UserListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let users = store.state().users()?;
    let tokens = store.state().api_tokens(None)?;
    let time = model::timefmt::format_millis;
    match args.format {
        Format::Json | Format::Jsonl => {
            for u in &users {
                let n = tokens.iter().filter(|t| t.user == u.name).count();
                println!(
                    "{}",
                    json!({"name": u.name, "role": u.role.as_str(), "created": time(u.created_at), "updated": time(u.updated_at), "apiTokens": n})
                );
            }
        }
        _ => {
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let n = tokens.iter().filter(|t| t.user == u.name).count();
                    vec![u.name.clone(), u.role.as_str().into(), time(u.updated_at), n.to_string()]
                })
                .collect();
            print!("{}", table(&["user", "role", "updated", "api tokens"], &rows, 64));
        }
    }
    Ok(())
}

pub fn token(args: UserTokenArgs) -> anyhow::Result<()> {
    match args.command {
        None => create_token(args.create),
        Some(TokenCommand::Create(a)) => create_token(a),
        Some(TokenCommand::List(a)) => list_tokens(a),
        Some(TokenCommand::Revoke(a)) => revoke_tokens(a),
    }
}

fn create_token(args: TokenCreateArgs) -> anyhow::Result<()> {
    let user = args.user.context("which user? `trailwatch user token create USER`")?;
    let expires_at = web::auth::token_expiry(args.expires_in.as_deref(), now_millis())
        .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
    let store = open_store(&args.store, Open::Existing)?;
    if store.state().user(&user)?.is_none() {
        anyhow::bail!("no user {user:?}: create it with `trailwatch user add`");
    }
    let (token, id) = web::auth::create_api_token_until(&store, &user, &args.name, expires_at)?;
    let until = expires_at.map(|t| format!(", expires {}", model::timefmt::format_millis(t))).unwrap_or_default();
    eprintln!("API token #{id} for {user}{until} (shown once; send it as `Authorization: Bearer <token>`):");
    println!("{token}");
    Ok(())
}

fn list_tokens(args: TokenListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let tokens = store.state().api_tokens(args.user.as_deref())?;
    let now = now_millis();
    let time = model::timefmt::format_millis;
    let state = |t: &store::ApiToken| match t.expires_at {
        Some(e) if e <= now => "expired",
        _ => "active",
    };
    match args.format {
        Format::Json | Format::Jsonl => {
            for t in &tokens {
                println!(
                    "{}",
                    json!({"id": t.id, "user": t.user, "name": t.name, "created": time(t.created_at),
                        "lastUsed": t.last_used.map(time), "expires": t.expires_at.map(time), "state": state(t)})
                );
            }
        }
        _ => {
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        t.user.clone(),
                        t.name.clone(),
                        time(t.created_at),
                        t.last_used.map(time).unwrap_or_else(|| "never".into()),
                        t.expires_at.map(time).unwrap_or_else(|| "never".into()),
                        state(t).into(),
                    ]
                })
                .collect();
            print!("{}", table(&["id", "user", "name", "created", "last used", "expires", "state"], &rows, 64));
        }
    }
    Ok(())
}

fn revoke_tokens(args: TokenRevokeArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    match (args.id, &args.user) {
        (Some(id), _) => {
            if !store.state().delete_api_token(id)? {
                anyhow::bail!("no API token #{id} (see `trailwatch user token list`)");
            }
            println!("revoked API token #{id}");
        }
        (None, Some(user)) => {
            let n = store.state().revoke_api_tokens(user)?;
            println!("revoked {n} API token(s) of {user}");
        }
        (None, None) => anyhow::bail!("say which: a token id, or --user NAME"),
    }
    Ok(())
}
