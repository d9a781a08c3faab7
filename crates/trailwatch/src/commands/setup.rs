//! `trailwatch setup`: the IAM policies and CloudFormation template for each account.

use anyhow::{bail, Context};
use serde_json::json;

use aws::setup::KmsSetup;

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
    if args.kms_key_arn.is_some() && accounts.len() > 1 {
        bail!("--kms-key-arn names one account's key: pass --account NAME with it");
    }
    let kms = match (&args.kms_key_arn, args.create_kms_key) {
        (Some(arn), _) => KmsSetup::Existing(arn.clone()),
        (None, true) => KmsSetup::Create,
        (None, false) => KmsSetup::None,
    };
    let input_for = |external_id: String| aws::setup::SetupInput {
        principal: principal.clone(),
        external_id,
        trail_name: args.trail_name.clone(),
        kms: kms.clone(),
        role_name: args.role_name.clone(),
    };
    // The other half of every trust policy: trailwatch's own identity may assume each role
    // (and publish to the alert topics).
    let roles: Vec<String> =
        accounts.iter().map(|spec| aws::setup::role_arn(spec, &input_for(String::new()))).collect();
    let alert_topics: Vec<String> = config
        .sinks
        .iter()
        .filter_map(|s| match &s.target {
            crate::config::SinkTarget::Sns { topic_arn, .. } => Some(topic_arn.clone()),
            _ => None,
        })
        .collect();
    let caller = aws::setup::caller_policy(&roles, &alert_topics);
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("caller-policy.json");
        std::fs::write(&path, pretty(&caller) + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    for spec in &accounts {
        let generated = spec.external_id.is_none();
        let external_id = spec.external_id.clone().unwrap_or_else(random_external_id);
        let input = input_for(external_id.clone());
        let docs = aws::setup::documents(spec, &input);
        if let Some(dir) = &args.out {
            let dir = dir.join(&spec.name);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut files = vec![
                ("trust-policy.json", &docs.trust_policy),
                ("permission-policy.json", &docs.permission_policy),
                ("cloudformation.json", &docs.cloudformation),
            ];
            if let Some(k) = &docs.key_policy_statements {
                files.push(("key-policy-statements.json", k));
            }
            for (file, doc) in files {
                let path = dir.join(file);
                std::fs::write(&path, pretty(doc) + "\n").with_context(|| format!("writing {}", path.display()))?;
            }
            println!("{}: wrote {}", terminal_safe(&spec.name), dir.display());
        } else if matches!(args.format, Format::Json | Format::Jsonl) {
            println!(
                "{}",
                json!({"account": spec.name, "principal": principal, "externalId": external_id, "roleArn": docs.role_arn,
                       "trustPolicy": docs.trust_policy, "permissionPolicy": docs.permission_policy,
                       "cloudFormation": docs.cloudformation, "keyPolicyStatements": docs.key_policy_statements,
                       "callerPolicy": caller, "notes": docs.notes})
            );
            continue;
        } else {
            println!("# account {} ({})", terminal_safe(&spec.name), spec.account_id);
            println!(
                "\n## 1. Trust policy of the read-only role {} (trailwatch = {})\n",
                docs.role_arn,
                terminal_safe(&principal)
            );
            println!("{}", pretty(&docs.trust_policy));
            println!("\n## 2. Permission policy of the role (read-only, the trail's own path only)\n");
            println!("{}", pretty(&docs.permission_policy));
            let mut section = 3;
            if let Some(k) = &docs.key_policy_statements {
                println!("\n## {section}. Statements to add to the KMS key's policy\n");
                println!("{}", pretty(k));
                section += 1;
            }
            println!(
                "\n## {section}. CloudFormation template: trail + bucket + topic + queue/DLQ + subscription + role\n"
            );
            println!("{}", pretty(&docs.cloudformation));
        }
        for note in &docs.notes {
            println!("\nnote: {}", terminal_safe(note));
        }
        if generated {
            println!(
                "\nnote: account {} has no external_id yet; this one was generated: add `external_id = \"{external_id}\"` to its [[accounts]] entry",
                terminal_safe(&spec.name)
            );
        }
        println!(
            "\nthen set role_arn, bucket, queue_url and topic_arn of [[accounts]] name = \"{}\" from the stack's outputs, and run `trailwatch doctor --config {}`\n",
            terminal_safe(&spec.name),
            args.config.display()
        );
    }
    if args.out.is_none() && !matches!(args.format, Format::Json | Format::Jsonl) {
        println!("# trailwatch's own identity ({}): attach this policy to it\n", terminal_safe(&principal));
        println!("{}", pretty(&caller));
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
        Ok(aws::account::role_of_session(&id))
    })
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
    fn external_ids_are_random() {
        assert_eq!(random_external_id().len(), 32);
        assert_ne!(random_external_id(), random_external_id());
    }
}
