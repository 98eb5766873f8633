//! `handoff reconcile` through the real binary on generated exports in the vendors' current
//! formats, with no columns file (only `--timezone` and `--deadline`): every planted exception
//! found on every channel, no false positive on an exact-reference match, the fuzzy precision
//! stated, every report format written; `--explain`, both Stripe headers, and the clear stop of
//! an ambiguous date column.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn handoff(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff")).args(args).output().expect("the handoff binary runs");
    assert!(out.status.success(), "handoff {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn generate(dir: &Path, orders: u64, extra: &[&str]) -> Value {
    let out = dir.to_str().unwrap();
    let mut args = vec!["reconcile", "generate", "--orders", &orders.to_string(), "--seed", "11", "--out", out]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
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
        "--timezone".into(),
        m["timezone"].as_str().unwrap().to_owned(),
        "--deadline".into(),
        m["deadline"].as_str().unwrap().to_owned(),
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
    let m = generate(dir.path(), 6000, &[]);
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
    // Every pattern planted on both channels (an Orphaned Payment has none), every one found.
    let by_channel = score["by_channel"].as_object().unwrap();
    for p in PATTERNS {
        let channels: &[&str] = if p == "orphaned_payment" { &["none"] } else { &["shopify", "amazon"] };
        for c in channels {
            let row = &by_channel[&format!("{p}/{c}")];
            assert!(row["planted"].as_u64().unwrap() > 0, "{p}/{c}: {text}");
            assert_eq!(row["recall"].as_f64(), Some(1.0), "{p}/{c}: {text}");
        }
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
    let m = generate(dir.path(), 1500, &["--gzip", "--stripe-headers", "legacy"]);
    assert!(m["files"]["erp"].as_str().unwrap().ends_with(".csv.gz"));
    let jsonl = reconcile(&m, &["--format", "jsonl"]);
    let lines: Vec<Value> =
        String::from_utf8_lossy(&jsonl.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    let summary = String::from_utf8_lossy(&jsonl.stderr);
    assert!(summary.contains("recall 100.00%"), "{summary}");
    assert!(summary.contains("`Created (UTC)`") && summary.contains("Stripe's legacy payments export"), "{summary}");

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
    let m = generate(dir.path(), 500, &[]);
    let erp = m["files"]["erp"].as_str().unwrap();
    let mut text = std::fs::read_to_string(erp).unwrap();
    let line = text.lines().count() + 1;
    text.push_str("9999999,SO999999,not a date,Billed,x,x@example.com,#1,,EUR,1.00,Yes,1,\n");
    std::fs::write(erp, text).unwrap();
    let out = reconcile(&m, &[]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("bad rows: 1"), "{summary}");
    assert!(summary.contains(&format!("{erp}:{line}: unreadable date \"not a date\"")), "{summary}");
    assert!(summary.contains("recall 100.00%"), "{summary}");
}

#[test]
fn explain_names_each_column_and_why_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let m = generate(dir.path(), 300, &[]);
    let out = reconcile(&m, &["--explain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "payments (",
        "`Created date (UTC)`",
        "Stripe's payments export; dates YYYY-MM-DD; UTC, as its name says",
        "`PO/Check Number`",
        "`Amount (Total)`",
        "`Fulfilled`",
        "yes/no values",
        "dates M/D/YYYY",
        "America/New_York",
        "`item-promotion-discount`",
        "deadlines: missing_order and transform_mismatch 48h",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert!(!text.contains("against the ground truth"), "--explain does not run: {text}");
}

#[test]
fn an_ambiguous_date_column_stops_the_run_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let erp = dir.path().join("erp.csv");
    std::fs::write(&erp, "Document Number,Date,External ID,Amount (Total),Currency\nSO1,1/5/2026,#1,1.00,EUR\nSO2,2/3/2026,#2,1.00,EUR\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["reconcile", "--erp", erp.to_str().unwrap(), "--deadline", "missing_order=48h,status_void=3d"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("input erp: column \"Date\": its dates are ambiguous: \"1/5/2026\" could be M/D/YYYY or D/M/YYYY"),
        "{err}"
    );
    assert!(err.contains("[erp] date_format = \"%m/%d/%Y\""), "{err}");
    let bad = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["reconcile", "--erp", erp.to_str().unwrap(), "--deadline", "duplicate_draft=1h"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Duplicate Draft has no deadline"), "{bad:?}");
}
