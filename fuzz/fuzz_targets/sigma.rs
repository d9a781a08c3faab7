//! A Sigma rule and a record, both arbitrary (split at the first NUL byte): loading never
//! panics, and a loaded rule judges the record's text (`RuleSet::scan`: index, text
//! prefilter, projection) exactly as it judges the fully parsed record.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(split) = data.iter().position(|b| *b == 0) else { return };
    let (Ok(rule), Ok(record)) = (std::str::from_utf8(&data[..split]), std::str::from_utf8(&data[split + 1..])) else {
        return;
    };
    let Ok(set) = detect::RuleSet::from_yaml_text(rule, "fuzz.yml") else { return };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(record) else { return };
    let brute: Vec<usize> = (0..set.rules.len()).filter(|i| set.rules[*i].matches(&value)).collect();
    let scan = set.scan(record, value["eventName"].as_str(), value["eventSource"].as_str());
    assert_eq!(scan.rules.to_vec(), brute, "rule {rule:?} record {record}");
});
