//! `trailwatch simulate`.

use anyhow::{bail, Context};
use serde_json::json;
use sim::{Scenario, SimConfig, Tamper};

use crate::cli::{parse_time, SimulateArgs};
use crate::output::Format;

/// Event scenarios and tamper scenarios named on the command line.
pub fn scenarios(names: &[String]) -> anyhow::Result<(Vec<Scenario>, Vec<Tamper>)> {
    let mut events = Vec::new();
    let mut tampers = Vec::new();
    for name in names {
        if name == "all" {
            events.extend(Scenario::ALL);
        } else if name == "all-tamper" {
            tampers.extend(Tamper::ALL);
        } else if let Some(s) = Scenario::parse(name) {
            events.push(s);
        } else if let Some(t) = Tamper::parse(name) {
            tampers.push(t);
        } else {
            let known: Vec<&str> =
                Scenario::ALL.iter().map(|s| s.name()).chain(Tamper::ALL.iter().map(|t| t.name())).collect();
            bail!("unknown scenario {name:?}; known: {}, all, all-tamper", known.join(", "))
        }
    }
    events.sort();
    events.dedup();
    tampers.sort();
    tampers.dedup();
    Ok((events, tampers))
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let (scenarios, tampers) = scenarios(&args.scenarios)?;
    if !tampers.is_empty() && !args.digests {
        bail!("tamper scenarios alter digest chains: add --digests");
    }
    let mut config = SimConfig {
        accounts: args.accounts,
        regions: args.regions,
        hours: args.hours,
        events: args.events,
        seed: args.seed,
        scenarios,
        tampers,
        digests: args.digests,
        bucket: args.bucket,
        profile: args.profile,
        threads: args.threads,
        organization_id: args.organization_id,
        prefix: args.prefix.map(|p| p.trim_matches('/').to_string()).filter(|p| !p.is_empty()),
        ..Default::default()
    };
    if let Some(start) = &args.start {
        config.start = parse_time(start, super::now_millis(), false)?;
    }
    let manifest =
        sim::simulate(&config, &args.out).with_context(|| format!("simulating into {}", args.out.display()))?;
    match args.format {
        Format::Json | Format::Jsonl => println!(
            "{}",
            json!({"files": manifest.files.len(), "records": manifest.records,
                   "scenarios": manifest.scenarios.iter().map(|s| s.name).collect::<Vec<_>>(),
                   "digests": manifest.digests.as_ref().map(|d| d.digests.len()),
                   "tampers": manifest.digests.as_ref().map(|d| d.tampers.iter().map(|t| t.name).collect::<Vec<_>>())})
        ),
        Format::Tsv => println!("{}\t{}", manifest.files.len(), manifest.records),
        Format::Table => {
            println!(
                "wrote {} files, {} records ({} scenarios) to {}; manifest: {}",
                manifest.files.len(),
                manifest.records,
                manifest.scenarios.len(),
                args.out.display(),
                args.out.join("manifest.json").display()
            );
            if let Some(d) = &manifest.digests {
                println!(
                    "digests: {} (signed with a generated key, public keys in {}){}",
                    d.digests.len(),
                    args.out.join(&d.keys_file).display(),
                    if d.tampers.is_empty() {
                        String::new()
                    } else {
                        format!("; tampered: {}", d.tampers.iter().map(|t| t.name).collect::<Vec<_>>().join(", "))
                    }
                );
            }
        }
    }
    Ok(())
}
