//! `handoff reconcile` through the real binary on generated exports: every planted exception
//! found, no false positive on an exact-reference match, the fuzzy precision stated, and every
//! report format written.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn handoff(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff")).args(args).output().expect("the handoff binary runs");
    assert!(out.status.success(), "handoff {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn generate(dir: &Path, orders: u64, gzip: bool) -> Value {
    let out = dir.to_str().unwrap();
    let mut args = vec!["reconcile", "generate", "--orders", &orders.to_string(), "--seed", "11", "--out", out]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    if gzip {
        args.push("--gzip".into());
    }
    handoff(&args.iter().map(String::as_str).collect::<Vec<_>>());
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

fn reconcile(m: &Value, extra: &[&str]) -> Output {
    let f = &m["files"];
    let file = |k: &str| f[k].as_str().unwrap().to_owned();
    let as_of = m["as_of"].as_str().unwrap().to_owned();
    let mut args: Vec<String> = vec![
        "reconcile".into(),
        "--storefront".into(),
        file("storefront"),
        "--marketplace".into(),
        file("marketplace"),
        "--payments".into(),
        file("payments"),
        "--erp".into(),
        file("erp"),
        "--erp-fulfillments".into(),
        file("erp_fulfillments"),
        "--as-of".into(),
        as_of,
        "--truth".into(),
        file("ground_truth"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    handoff(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

const PATTERNS: [&str; 6] =
    ["missing_order", "status_void", "duplicate_draft", "transform_mismatch", "orphaned_payment", "rollback_gap"];

#[test]
fn finds_every_planted_exception_and_states_fuzzy_precision() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 6000, false);
    let report = dir.path().join("report.json");
    let out = reconcile(&m, &["--format", "json", "--output", report.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fuzzy-match precision: links"), "{text}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let score = &doc["score"];
    for p in PATTERNS {
        let row = &score["by_pattern"][p];
        assert!(row["planted"].as_u64().unwrap() > 0, "{p} planted: {text}");
        assert_eq!(row["found"], row["planted"], "{p}: {text}");
        assert_eq!(row["recall"].as_f64(), Some(1.0), "{p}: {text}");
    }
    assert_eq!(score["false_positives_reference"], 0, "{text}");
    let precision = score["fuzzy_link_precision"].as_f64().expect("fuzzy links were made");
    assert!(precision > 0.9, "{text}");
    assert!(score["fuzzy_finding_precision"].as_f64().is_some(), "{text}");

    // One record per exception with the fields a person or a script acts on.
    let exceptions = doc["exceptions"].as_array().unwrap();
    assert!(!exceptions.is_empty());
    for e in exceptions {
        let pattern = e["pattern"].as_str().unwrap();
        assert!(PATTERNS.contains(&pattern), "{e}");
        assert!(e["evidence"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        assert!(e["action"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
        assert!(e["erp_ids"].is_array(), "{e}");
        match pattern {
            "orphaned_payment" => assert!(e["payment_id"].as_str().is_some_and(|p| p.starts_with("ch_")), "{e}"),
            _ => assert!(e["order_ref"].as_str().is_some(), "{e}"),
        }
        if pattern == "duplicate_draft" {
            assert!(e["erp_ids"].as_array().unwrap().len() >= 2, "{e}");
        }
    }
    assert!(
        exceptions.iter().any(|e| e["pattern"] == "missing_order" && e["payment_id"].is_string()),
        "a paid missing order names its payment"
    );
}

#[test]
fn gzip_exports_and_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 1500, true);
    assert!(m["files"]["erp"].as_str().unwrap().ends_with(".csv.gz"));
    let jsonl = reconcile(&m, &["--format", "jsonl"]);
    let lines: Vec<Value> =
        String::from_utf8_lossy(&jsonl.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let summary = String::from_utf8_lossy(&jsonl.stderr);
    assert!(summary.contains("recall 100.00%"), "{summary}");

    let csv = reconcile(&m, &["--format", "csv"]);
    let csv = String::from_utf8_lossy(&csv.stdout);
    assert!(csv.starts_with("pattern,order_ref,channel,payment_id,erp_ids"), "{csv}");
    assert_eq!(csv.lines().count(), lines.len() + 1);

    let html = dir.path().join("report.html");
    reconcile(&m, &["--format", "html", "--output", html.to_str().unwrap()]);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("Patterns over time") && page.contains("Blast radius"));
    assert!(!page.contains("<script"), "no JavaScript");
}

#[test]
fn a_bad_row_is_reported_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 500, false);
    let erp = m["files"]["erp"].as_str().unwrap();
    let mut text = std::fs::read_to_string(erp).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("9999999,SO999999,1/1/2026,not a date,1/1/2026 1:00 am,Billed,#1,,x@example.com,EUR,1.00,1,,\n");
    std::fs::write(erp, text).unwrap();
    let out = reconcile(&m, &[]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("bad rows: 1"), "{summary}");
    assert!(summary.contains(&format!("{erp}:{line}: unreadable date \"not a date\"")), "{summary}");
    assert!(summary.contains("recall 100.00%"), "{summary}");
}
