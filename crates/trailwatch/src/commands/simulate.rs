//! `trailwatch simulate`.

use anyhow::{bail, Context};
use serde_json::json;
use sim::{Scenario, SimConfig};

use crate::cli::{parse_time, SimulateArgs};
use crate::output::Format;

pub fn scenarios(names: &[String]) -> anyhow::Result<Vec<Scenario>> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(Scenario::ALL);
            continue;
        }
        match Scenario::parse(name) {
            Some(s) => out.push(s),
            None => {
                let known: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                bail!("unknown scenario {name:?}; known: {}, all", known.join(", "))
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let mut config = SimConfig {
        accounts: args.accounts,
        regions: args.regions,
        hours: args.hours,
        events: args.events,
        seed: args.seed,
        scenarios: scenarios(&args.scenarios)?,
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
                   "scenarios": manifest.scenarios.iter().map(|s| s.name).collect::<Vec<_>>()})
        ),
        Format::Tsv => println!("{}\t{}", manifest.files.len(), manifest.records),
        Format::Table => println!(
            "wrote {} files, {} records ({} scenarios) to {}; manifest: {}",
            manifest.files.len(),
            manifest.records,
            manifest.scenarios.len(),
            args.out.display(),
            args.out.join("manifest.json").display()
        ),
    }
    Ok(())
}
