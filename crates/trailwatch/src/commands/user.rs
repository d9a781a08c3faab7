//! `trailwatch user add|list|token`: dashboard users and API tokens in the configured store.

use std::io::BufRead;

use anyhow::Context;
use serde_json::json;
use store::Role;

use super::{now_millis, open_store, Open};
use crate::cli::{UserAddArgs, UserListArgs, UserTokenArgs};
use crate::output::{table, Format};

/// The shortest password accepted from stdin (generated ones are 20 characters).
const MIN_PASSWORD: usize = 12;

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
        if pw.chars().count() < MIN_PASSWORD {
            anyhow::bail!("the password must have at least {MIN_PASSWORD} characters");
        }
        (pw, false)
    } else {
        (web::auth::generate_password(), true)
    };
    let existing = store.user(name)?;
    let mut user = web::auth::new_user(name, role, &password, now_millis())?;
    if let Some(old) = &existing {
        user.created_at = old.created_at;
    }
    store.put_user(&user)?;
    let what = if existing.is_some() { "reset" } else { "created" };
    if generated {
        println!("user {name} ({}) {what}; password: {password}", role.as_str());
    } else {
        println!("user {name} ({}) {what}", role.as_str());
    }
    Ok(())
}

pub fn list(args: UserListArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let users = store.users()?;
    let tokens = store.api_tokens(None)?;
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
    let store = open_store(&args.store, Open::Existing)?;
    if store.user(&args.user)?.is_none() {
        anyhow::bail!("no user {:?}: create it with `trailwatch user add`", args.user);
    }
    let (token, id) = web::create_api_token(&*store, &args.user, &args.name)?;
    eprintln!("API token #{id} for {} (shown once; send it as `Authorization: Bearer <token>`):", args.user);
    println!("{token}");
    Ok(())
}
