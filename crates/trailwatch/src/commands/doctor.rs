//! `trailwatch doctor --config FILE`: each account's integration, checked end to end.

use serde_json::json;

use super::{load_config, now_millis, Findings};
use crate::cli::DoctorArgs;
use crate::output::{terminal_safe, Format};

pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config)?;
    let accounts: Vec<aws::AccountSpec> = match &args.account {
        Some(name) => vec![config.account(name)?.clone()],
        None => config.accounts.clone(),
    };
    if accounts.is_empty() {
        anyhow::bail!("no [[accounts]] in {}: nothing to check", args.config.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let results = runtime.block_on(aws::doctor::doctor_all(&config.aws, &accounts, now_millis()));
    let failed: usize =
        results.iter().flat_map(|(_, checks)| checks).filter(|c| c.state == aws::doctor::CheckState::Fail).count();
    match args.format {
        Format::Json | Format::Jsonl => {
            let accounts: Vec<_> = results
                .iter()
                .map(|(spec, checks)| {
                    let checks: Vec<_> = checks
                        .iter()
                        .map(|c| json!({"check": c.name, "state": c.state.label(), "detail": c.detail, "fix": c.fix}))
                        .collect();
                    json!({"account": spec.name, "checks": checks})
                })
                .collect();
            println!("{}", json!({"ok": failed == 0, "accounts": accounts}));
        }
        _ => {
            for (spec, checks) in &results {
                println!("account {} ({})", terminal_safe(&spec.name), spec.account_id);
                for c in checks {
                    let mark = match c.state {
                        aws::doctor::CheckState::Pass => "[ok]  ",
                        aws::doctor::CheckState::Warn => "[warn]",
                        aws::doctor::CheckState::Fail => "[FAIL]",
                        aws::doctor::CheckState::Skip => "[skip]",
                    };
                    println!("  {mark} {}: {}", c.name, terminal_safe(&c.detail));
                    if let Some(fix) = &c.fix {
                        println!("         fix: {}", terminal_safe(fix));
                    }
                }
            }
            println!(
                "{}",
                if failed == 0 { "all checks passed".to_owned() } else { format!("{failed} checks failed") }
            );
        }
    }
    if failed > 0 {
        return Err(Findings(failed).into());
    }
    Ok(())
}
