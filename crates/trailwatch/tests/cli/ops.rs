//! Operations: upgrading a store written by the previous release, refusing a newer schema,
//! retention from the command line, and a backup taken during ingest that restores to a
//! store answering like the original did at that instant.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{output, run, run_json, s, simulate, tsv_ids};

fn fixture(dir: &Path) -> PathBuf {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-schema-v6.db.gz");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(gz).unwrap()).read_to_end(&mut bytes).unwrap();
    let path = dir.join("old.db");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn search_tsv(db: &Path, extra: &[&str]) -> String {
    let mut args = vec!["search", "--db", s(db), "--limit", "0", "--format", "tsv"];
    args.extend_from_slice(extra);
    run(&args)
}

/// (rule title, count, event id) of every alert: what detection made of the data.
fn alert_summary(db: &Path) -> BTreeSet<(String, u64, String)> {
    let alerts = run_json(&["alerts", "list", "--db", s(db), "--limit", "0", "--format", "json"]);
    alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["rule"].as_str().unwrap().to_string(),
                a["count"].as_u64().unwrap(),
                a["group"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_store_of_the_previous_schema_upgrades_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let old = fixture(dir.path());
    // The tree the fixture was ingested from (tests/fixtures/README.md), kept beside it:
    // the simulator's output may change between releases, the fixture's source must not.
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-schema-v6.tree.tar.gz");
    let status = std::process::Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&tree).status().unwrap();
    assert!(status.success(), "unpacking {}", archive.display());
    let fresh = dir.path().join("fresh.db");
    run(&["ingest", "--local", s(&tree), "--db", s(&fresh), "--format", "json"]);

    // Every event with every column; events of the same second may be in either order
    // (arrival breaks ties, and parse threads finish in any order).
    let lines = |tsv: String| -> Vec<String> {
        let mut l: Vec<String> = tsv.lines().map(String::from).collect();
        assert!(l.windows(2).all(|w| w[0][..20] >= w[1][..20]), "newest first");
        l.sort();
        l
    };
    let upgraded = lines(search_tsv(&old, &[]));
    assert_eq!(upgraded.len(), 613);
    assert!(upgraded == lines(search_tsv(&fresh, &[])), "the upgraded store answers as a fresh ingest");
    for filter in [["--event-name", "StopLogging"], ["--principal", "*root"], ["--region", "us-east-1"]] {
        assert!(lines(search_tsv(&old, &filter)) == lines(search_tsv(&fresh, &filter)), "{filter:?}");
    }
    assert_eq!(alert_summary(&old), alert_summary(&fresh));
    let version = |db: &Path| -> i64 {
        rusqlite::Connection::open(db).unwrap().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(version(&old), version(&fresh), "migrated to the current schema");
    let users = run(&["user", "list", "--db", s(&old), "--format", "tsv"]);
    assert!(users.contains("viewer1"), "{users}");
    // Re-ingesting the tree adds nothing (the ledger survived), retention and new writes work.
    let again = run_json(&["ingest", "--local", s(&tree), "--db", s(&old), "--format", "json"]);
    assert_eq!(again["new"], 0, "{again}");
    let more = simulate(dir.path(), "more", &["--accounts", "1", "--hours", "1", "--events", "100", "--seed", "8"]);
    let added = run_json(&["ingest", "--local", s(&more), "--db", s(&old), "--format", "json"]);
    assert!(added["new"].as_u64().unwrap() > 50, "{added}");
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    rusqlite::Connection::open(&db).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let before = std::fs::read(&db).unwrap();
    for args in [vec!["search", "--db", s(&db)], vec!["ingest", "--local", s(dir.path()), "--db", s(&db)]] {
        let out = output(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("schema version 99 is newer"), "{err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file is untouched");
}

#[test]
fn retention_from_the_command_line_keeps_alerted_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let alerts_before = alert_summary(&db);
    let alerted: BTreeSet<String> = run_json(&["alerts", "list", "--db", s(&db), "--limit", "0", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| {
            let id = a["id"].as_i64().unwrap().to_string();
            let shown = run_json(&["alerts", "show", &id, "--db", s(&db), "--format", "json"]);
            shown["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect();
    assert!(!alerted.is_empty());
    // The fixture's events are from 2026-01-05: an age policy far longer keeps them all.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let age_days = (now - 1_767_571_200) / 86_400; // 2026-01-05T00:00Z
    let keep_all = (age_days + 30).to_string();
    let r = run_json(&["retention", "--db", s(&db), "--days", &keep_all, "--format", "json"]);
    assert_eq!(r["events_deleted"], 0, "{r}");
    let expire_all = (age_days - 2).max(1).to_string();
    let r = run_json(&["retention", "--db", s(&db), "--days", &expire_all, "--format", "json"]);
    assert_eq!(r["events_deleted"].as_u64().unwrap() as usize, 613 - alerted.len(), "{r}");
    let left: BTreeSet<String> = tsv_ids(&search_tsv(&db, &[])).into_iter().collect();
    assert_eq!(left, alerted, "only what alerts refer to stays");
    assert_eq!(alert_summary(&db), alerts_before, "alerts unchanged");
    let bad = output(&["retention", "--db", s(&db), "--category", "Logs=3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Logs is not one of"));
}

#[test]
fn a_backup_taken_beside_ingest_restores_to_the_store_at_that_instant() {
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(dir.path(), "tree", &["--accounts", "2", "--hours", "12", "--events", "60000", "--seed", "3"]);
    let db = dir.path().join("live.db");
    let mut ingest = crate::util::bin()
        .args(["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until ingest has committed something, then back up while it goes on.
    let started = Instant::now();
    loop {
        let out = output(&["search", "--db", s(&db), "--limit", "1", "--format", "tsv"]);
        if out.status.success() && !out.stdout.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "ingest committed nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let backup = dir.path().join("backup.db");
    let b = run_json(&["backup", "--db", s(&db), "--to", s(&backup), "--format", "json"]);
    // Whether ingest was still running depends on this machine's speed; the store test
    // `backup::a_backup_while_objects_commit_is_one_instant` makes sure of it in-process.
    assert!(ingest.wait().unwrap().success());
    assert!(output(&["backup", "--db", s(&db), "--to", s(&backup)]).status.code() == Some(2), "never overwrites");

    let restored = dir.path().join("restored.db");
    run(&["restore", "--from", s(&backup), "--db", s(&restored)]);
    let at_backup: Vec<String> = tsv_ids(&search_tsv(&restored, &[]));
    let final_ids: Vec<String> = tsv_ids(&search_tsv(&db, &[]));
    assert_eq!(at_backup.len() as u64, b["events"].as_u64().unwrap());
    assert!(!at_backup.is_empty() && at_backup.len() <= final_ids.len(), "{} of {}", at_backup.len(), final_ids.len());

    // The backup holds whole objects: each file's records are all there or none are.
    let mut by_file: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for path in test_support::files_under(&tree) {
        if path.to_string_lossy().ends_with(".json.gz") && !path.to_string_lossy().contains("Digest") {
            let (events, _) = model::read_all_events(std::fs::File::open(&path).unwrap()).unwrap();
            by_file.insert(path, events.into_iter().map(|e| e.event_id).collect());
        }
    }
    let present: BTreeSet<&String> = at_backup.iter().collect();
    for (file, ids) in &by_file {
        let n = ids.iter().filter(|id| present.contains(id)).count();
        assert!(n == 0 || n == ids.len(), "{}: {n} of {} records in the backup", file.display(), ids.len());
    }
    // Search equality with the original at that instant: the original's answers restricted
    // to what had arrived are the restored store's answers, for every filter.
    let restrict = |tsv: String| -> Vec<String> {
        tsv.lines().filter(|l| present.contains(&l.split('\t').nth(1).unwrap().to_string())).map(String::from).collect()
    };
    for filter in [
        &[][..],
        &["--event-name", "AssumeRole"],
        &["--region", "eu-west-1"],
        &["--errors"],
        &["--principal", "*alice*"],
    ] {
        let original: Vec<String> = restrict(search_tsv(&db, filter));
        let got: Vec<String> = search_tsv(&restored, filter).lines().map(String::from).collect();
        assert_eq!(got, original, "{filter:?}");
    }
    // Restoring over a store with events needs --force.
    let out = output(&["restore", "--from", s(&backup), "--db", s(&db)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    run(&["restore", "--from", s(&backup), "--db", s(&db), "--force"]);
    assert_eq!(tsv_ids(&search_tsv(&db, &[])), at_backup);
    // A file that is not a store is refused before anything is replaced.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database at all, just some bytes").unwrap();
    let out = output(&["restore", "--from", s(&junk), "--db", s(&db), "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(tsv_ids(&search_tsv(&db, &[])), at_backup, "unchanged");
}

#[test]
fn ingest_filters_drop_what_they_match_before_storage() {
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(dir.path(), "tree", &["--accounts", "2", "--hours", "2", "--events", "3000", "--seed", "11"]);
    let db = dir.path().join("filtered.db");
    let config = dir.path().join("trailwatch.toml");
    std::fs::write(
        &config,
        format!(
            r#"[store]
path = "{}"

[[ingest.filters]]
name = "keep-kms-writes"
action = "keep"
event_source = "kms.amazonaws.com"
read_only = false

[[ingest.filters]]
name = "noisy-kms"
event_source = "kms.amazonaws.com"
event_name = ["Decrypt", "GenerateDataKey*"]

[[ingest.filters]]
name = "app-reads"
principal = "arn:aws:sts::*:assumed-role/app-server/*"
read_only = true
"#,
            s(&db)
        ),
    )
    .unwrap();
    let records = crate::util::records_in(&tree);
    // The reference: the same rules written out plainly over every record.
    let dropped = |e: &model::ParsedEvent| -> bool {
        let kms = e.event_source.as_deref() == Some("kms.amazonaws.com");
        if kms && e.read_only == Some(false) {
            return false;
        }
        if kms && matches!(e.event_name.as_deref(), Some(n) if n == "Decrypt" || n.starts_with("GenerateDataKey")) {
            return true;
        }
        e.actor.principal.starts_with("arn:aws:sts::")
            && e.actor.principal.contains(":assumed-role/app-server/")
            && e.read_only == Some(true)
    };
    let expected: BTreeSet<String> = records.values().filter(|e| !dropped(e)).map(|e| e.event_id.clone()).collect();
    let n_dropped = records.len() - expected.len();
    assert!(n_dropped > 100 && expected.len() > 100, "the data exercises the filters: {n_dropped} dropped");
    let report = run_json(&["ingest", "--local", s(&tree), "--config", s(&config), "--format", "json"]);
    assert_eq!(report["filtered"].as_u64().unwrap() as usize, n_dropped, "{report}");
    assert_eq!(report["new"].as_u64().unwrap() as usize, expected.len(), "{report}");
    assert_eq!(report["records"].as_u64().unwrap() as usize, records.len(), "{report}");
    let stored: BTreeSet<String> = tsv_ids(&search_tsv(&db, &[])).into_iter().collect();
    assert_eq!(stored, expected);
    // Without --config (a bare --db) nothing is filtered and the contract's keys are as always.
    let plain = dir.path().join("plain.db");
    let report = run_json(&["ingest", "--local", s(&tree), "--db", s(&plain), "--format", "json"]);
    assert!(report.get("filtered").is_none(), "{report}");
    assert_eq!(report["new"].as_u64().unwrap() as usize, records.len());
    // A bad filter names its key.
    std::fs::write(&config, "[[ingest.filters]]\naction = \"skip\"\nevent_name = \"X\"\n").unwrap();
    let out = output(&["ingest", "--local", s(&tree), "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.filters[0].action"));
}

#[test]
fn exports_as_json_lines_and_ocsf() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // JSON Lines: exactly what `search --format jsonl` prints, for the same filters.
    for filter in [&[][..], &["--region", "us-east-1", "--errors"]] {
        let mut args = vec!["export", "events", "--db", s(&db)];
        args.extend_from_slice(filter);
        let mut search = vec!["search", "--db", s(&db), "--limit", "0", "--format", "jsonl"];
        search.extend_from_slice(filter);
        assert_eq!(run(&args), run(&search), "{filter:?}");
    }
    // OCSF to a file: one API Activity per event, the same events in the same order.
    let out = dir.path().join("events.ocsf.jsonl");
    run(&["export", "events", "--db", s(&db), "--format", "ocsf", "--out", s(&out)]);
    let ids = tsv_ids(&search_tsv(&db, &[]));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), ids.len());
    for (l, id) in lines.iter().zip(&ids) {
        assert_eq!((l["class_uid"].as_u64(), l["metadata"]["uid"].as_str()), (Some(6003), Some(id.as_str())));
        assert_eq!(l["type_uid"].as_u64().unwrap(), 600300 + l["activity_id"].as_u64().unwrap());
    }
    assert!(!dir.path().join("events.ocsf.partial").exists());
    // Alerts: Detection Findings naming the events each alert holds.
    let findings: Vec<serde_json::Value> = run(&["export", "alerts", "--db", s(&db), "--format", "ocsf"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alerts = run_json(&["alerts", "list", "--db", s(&db), "--limit", "0", "--format", "json"]);
    assert_eq!(findings.len(), alerts.as_array().unwrap().len());
    for f in &findings {
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["type_uid"].as_u64().unwrap(), 200400 + f["activity_id"].as_u64().unwrap());
        assert!(f["finding_info"]["uid"].is_string() && f["finding_info"]["title"].is_string());
        assert!((1..=5).contains(&f["severity_id"].as_u64().unwrap()), "{f}");
        assert!(f["metadata"]["product"]["vendor_name"].is_string() && f["metadata"]["version"].is_string());
        let id = f["finding_info"]["uid"].as_str().unwrap().trim_start_matches("trailwatch-alert-").to_string();
        let shown = run_json(&["alerts", "show", &id, "--db", s(&db), "--format", "json"]);
        let related: Vec<&str> = f["finding_info"]["related_events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uid"].as_str().unwrap())
            .collect();
        let events: Vec<&str> = shown["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        assert_eq!(related, events);
    }
    let jsonl = run(&["export", "alerts", "--db", s(&db), "--state", "open"]);
    assert!(jsonl.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["state"] == "open"));
}

#[test]
fn completions_man_pages_and_config_tools_come_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run(&["completions", "bash"]);
    for word in ["retention", "backup", "export", "--event-name", "--log-format"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    assert!(run(&["completions", "zsh"]).contains("#compdef trailwatch"));
    assert!(run(&["completions", "fish"]).contains("complete -c trailwatch"));
    let man = dir.path().join("man1");
    run(&["man", "--out", s(&man)]);
    for page in ["trailwatch.1", "trailwatch-serve.1", "trailwatch-export-events.1", "trailwatch-retention.1"] {
        let text = std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not roff");
    }
    assert!(run(&["man"]).contains(".TH trailwatch 1"));
    // The JSON Schema and the reference describe the same keys.
    let schema = run_json(&["config", "schema"]);
    let reference = run(&["config", "reference"]);
    for section in schema["properties"].as_object().unwrap().keys() {
        assert!(reference.contains(&format!("[{section}]")), "reference lacks {section}");
    }
    // config check: valid files summarised, invalid ones named.
    let config = dir.path().join("t.toml");
    std::fs::write(&config, "[retention]\ndays = 30\n").unwrap();
    assert!(run(&["config", "check", "--config", s(&config)]).contains("valid"));
    std::fs::write(&config, "[retention]\ndayz = 30\n").unwrap();
    let out = output(&["config", "check", "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dayz"));
    // The example configuration shipped with the repository is valid.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../trailwatch.example.toml");
    assert!(run(&["config", "check", "--config", s(&example)]).contains("valid"));
}

/// The store and its backups hold password hashes and every event: owner-only, whatever the
/// umask (CLI processes inherit a 022 one here), and a store left readable by an older
/// version is tightened.
#[test]
fn the_store_its_directory_and_backups_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(dir.path(), "bucket", &["--accounts", "1", "--hours", "1", "--events", "200"]);
    let data = dir.path().join("data").join("nested");
    let db = data.join("trail.db");
    // Under a umask that would give 0644 files and 0755 directories.
    let run022 = |args: &[&str]| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_trailwatch"))
            .args(args)
            .env("TRAILWATCH_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run022(&["ingest", "--local", s(&tree), "--db", s(&db)]);
    assert_eq!(mode(&db), 0o600, "store file");
    assert_eq!(mode(&data), 0o700, "the directory created for it");
    assert_eq!(mode(&dir.path().join("data")), 0o700, "and its new parent");
    let wal = dir.path().join("data/nested/trail.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "WAL file");
    }
    let backup = dir.path().join("backup.db");
    run022(&["backup", "--db", s(&db), "--to", s(&backup)]);
    assert_eq!(mode(&backup), 0o600, "backup file");
    let export = dir.path().join("events.jsonl");
    run022(&["export", "events", "--db", s(&db), "--out", s(&export)]);
    assert_eq!(mode(&export), 0o600, "exported events");
    // A store an older version left at 0644 is tightened on the next open.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    run022(&["search", "--db", s(&db), "--limit", "1"]);
    assert_eq!(mode(&db), 0o600, "tightened on open");
}

/// API tokens from the command line: create with an expiry, list with last use, revoke; a
/// password reset revokes the user's tokens unless told to keep them.
#[test]
fn api_tokens_are_listed_expire_and_end_with_a_password_reset() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run(&["user", "add", "alice", "--role", "viewer", "--db", s(&db)]);
    let token = |extra: &[&str]| {
        let mut args = vec!["user", "token", "alice", "--db", s(&db)];
        args.extend_from_slice(extra);
        run(&args).trim().to_owned()
    };
    let forever = token(&["--name", "scrape"]);
    let month = token(&["--name", "ci", "--expires-in", "30d"]);
    assert!(forever.starts_with("tw_") && month.starts_with("tw_") && forever != month);
    assert_eq!(output(&["user", "token", "alice", "--expires-in", "soon", "--db", s(&db)]).status.code(), Some(2));
    let listed = |db: &Path| -> Vec<serde_json::Value> {
        run(&["user", "token", "list", "--db", s(db), "--format", "jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let tokens = listed(&db);
    assert_eq!(tokens.len(), 2);
    let ci = tokens.iter().find(|t| t["name"] == "ci").unwrap();
    assert!(ci["expires"].is_string() && ci["state"] == "active" && ci["lastUsed"].is_null(), "{ci}");
    assert!(tokens.iter().find(|t| t["name"] == "scrape").unwrap()["expires"].is_null());
    // Revoke one by id.
    let id = ci["id"].as_i64().unwrap().to_string();
    run(&["user", "token", "revoke", &id, "--db", s(&db)]);
    assert_eq!(listed(&db).len(), 1);
    assert_eq!(output(&["user", "token", "revoke", &id, "--db", s(&db)]).status.code(), Some(2), "gone");
    // A reset with --keep-tokens keeps them; a plain reset revokes them.
    let reset = |extra: &[&str]| {
        let mut args = vec!["user", "add", "alice", "--role", "viewer", "--password-stdin", "--db", s(&db)];
        args.extend_from_slice(extra);
        let mut child = crate::util::bin()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"a long enough password\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(reset(&["--keep-tokens"]).contains("kept 1"));
    assert_eq!(listed(&db).len(), 1);
    assert!(reset(&[]).contains("revoked 1"));
    assert!(listed(&db).is_empty());
    // Revoke every token of a user at once.
    token(&[]);
    token(&[]);
    assert!(run(&["user", "token", "revoke", "--user", "alice", "--db", s(&db)]).contains("revoked 2"));
    // `user token create` is the explicit form.
    assert!(run(&["user", "token", "create", "alice", "--db", s(&db)]).trim().starts_with("tw_"));
}

#[test]
fn demo_refuses_a_short_admin_password_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = output(&["demo", "--admin-password", "short", "--no-serve", "--data-dir", s(&data)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    assert!(!data.exists(), "nothing was simulated");
}
