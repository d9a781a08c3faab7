//! `trailwatch setup`: the IAM policies and CloudFormation template for each account.

use anyhow::{bail, Context};
use serde_json::json;

use super::load_config;
use crate::cli::SetupArgs;
use crate::output::{terminal_safe, Format};

pub fn run(args: SetupArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config)?;
    let accounts: Vec<aws::AccountSpec> = match &args.account {
        Some(name) => vec![config.account(name)?.clone()],
        None => config.accounts.clone(),
    };
    if accounts.is_empty() {
        bail!("no [[accounts]] in {}: add one (name, account_id, bucket, queue_url) first", args.config.display());
    }
    let principal = match &args.principal {
        Some(p) => p.clone(),
        None => own_principal(&config.aws).context("finding trailwatch's own principal (pass --principal ARN)")?,
    };
    for spec in &accounts {
        let generated = spec.external_id.is_none();
        let external_id = spec.external_id.clone().unwrap_or_else(random_external_id);
        let input = aws::setup::SetupInput {
            principal: principal.clone(),
            external_id: external_id.clone(),
            trail_name: args.trail_name.clone(),
            kms_key_arn: args.kms_key_arn.clone(),
        };
        let docs = aws::setup::documents(spec, &input);
        if let Some(dir) = &args.out {
            let dir = dir.join(&spec.name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (file, doc) in [
                ("trust-policy.json", &docs.trust_policy),
                ("permission-policy.json", &docs.permission_policy),
                ("cloudformation.json", &docs.cloudformation),
            ] {
                let path = dir.join(file);
                std::fs::write(&path, serde_json::to_string_pretty(doc)? + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{}: wrote {}", terminal_safe(&spec.name), dir.display());
        } else if matches!(args.format, Format::Json | Format::Jsonl) {
            println!(
                "{}",
                json!({"account": spec.name, "principal": principal, "externalId": external_id,
                       "trustPolicy": docs.trust_policy, "permissionPolicy": docs.permission_policy,
                       "cloudFormation": docs.cloudformation})
            );
            continue;
        } else {
            let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
            println!("# account {} ({})", terminal_safe(&spec.name), spec.account_id);
            println!("\n## 1. Trust policy of the read-only role (trailwatch = {})\n", terminal_safe(&principal));
            println!("{}", pretty(&docs.trust_policy));
            println!("\n## 2. Permission policy of the role (read-only, the trail's prefix only)\n");
            println!("{}", pretty(&docs.permission_policy));
            println!("\n## 3. CloudFormation template: trail + bucket + topic + queue/DLQ + subscription + role\n");
            println!("{}", pretty(&docs.cloudformation));
        }
        if generated {
            println!(
                "\nnote: account {} has no external_id yet; this one was generated: add `external_id = \"{external_id}\"` to its [[accounts]] entry",
                terminal_safe(&spec.name)
            );
        }
        println!(
            "\nthen set role_arn, bucket, queue_url and topic_arn of [[accounts]] name = \"{}\" from the stack's outputs, and run `trailwatch doctor --config FILE`\n",
            terminal_safe(&spec.name)
        );
    }
    Ok(())
}

/// trailwatch's own principal: the caller identity, with an assumed-role session turned
/// into its role (a trust policy names roles, not sessions).
fn own_principal(settings: &aws::AwsSettings) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let base = aws::account::base_config(settings).await;
        let id = aws::account::caller_arn(&base).await?;
        Ok(role_of_session(&id))
    })
}

/// `arn:aws:sts::1:assumed-role/Name/session` → `arn:aws:iam::1:role/Name`; others unchanged.
fn role_of_session(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 && parts[2] == "sts" {
        if let Some(rest) = parts[5].strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or(rest);
            return format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]);
        }
    }
    arn.to_owned()
}

/// 32 hex characters from the OS's random source.
fn random_external_id() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_become_roles() {
        assert_eq!(
            role_of_session("arn:aws:sts::444455556666:assumed-role/trailwatch/i-0abc"),
            "arn:aws:iam::444455556666:role/trailwatch"
        );
        assert_eq!(role_of_session("arn:aws:iam::444455556666:user/tw"), "arn:aws:iam::444455556666:user/tw");
        assert_eq!(random_external_id().len(), 32);
        assert_ne!(random_external_id(), random_external_id());
    }
}
