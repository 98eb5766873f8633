//! `handoff contract check|docs` through the real binary: exit codes and files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

fn handoff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env_remove("HANDOFF_CONFIG")
        .output()
        .expect("the handoff binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn check_passes_both_examples() {
    for name in ["handoff.toml", "vendors.toml"] {
        let out = handoff(&["contract", "check", "--config", example(name).to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        assert!(text.contains("ownership.created"), "{text}");
        assert!(text.trim_end().ends_with("0 warnings, 0 errors"), "{text}");
    }
}

#[test]
fn check_fails_on_a_system_serve_would_refuse_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("vendors.toml")).unwrap();
    let no_token = dir.path().join("no_token.toml");
    std::fs::write(&no_token, text.replace(", token_secret = \"sim-token-secret\"", "")).unwrap();
    let out = handoff(&["contract", "check", "--config", no_token.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("error") && l.contains("systems.netsuite.credentials.token_secret")),
        "{text}"
    );
}

#[test]
fn check_fails_on_an_error_and_refuses_a_broken_contract() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("handoff.toml")).unwrap();

    let unowned = dir.path().join("unowned.toml");
    std::fs::write(&unowned, text.replace("paid = \"shop\"", "")).unwrap();
    let out = handoff(&["contract", "check", "--config", unowned.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error   ownership.paid: no owner"), "{}", stdout(&out));

    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, text.replace("paid = \"shop\"", "paid = \"bank\"")).unwrap();
    let out = handoff(&["contract", "check", "--config", unknown.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown.toml: key `ownership.paid`: no system named \"bank\""), "{err}");
}

#[test]
fn docs_writes_markdown_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let config = example("vendors.toml");
    let md = dir.path().join("contract.md");
    let out = handoff(&["contract", "docs", "--config", config.to_str().unwrap(), "--output", md.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.starts_with("# Handoff contract: vendors.toml"), "{md}");
    assert!(md.contains("## Ownership by stage") && md.contains("netsuite-to-amazon"), "{md}");

    let html = dir.path().join("contract.html");
    let out = handoff(&[
        "contract",
        "docs",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "html",
        "--output",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(html).unwrap();
    // The mappings: version, the target's required fields, the field-by-field table.
    assert!(html.contains("netsuite/sales_order@2") && html.contains("salesOrder requires"));
    // Odoo's snapshot: only what a draft must carry (Odoo fills `name`, `date_order`, ...).
    let odoo_requires = html.split("sale.order requires").nth(1).and_then(|rest| rest.split("</tr>").next());
    assert_eq!(
        odoo_requires.map(|row| row.contains("partner_id") && !row.contains("date_order")),
        Some(true),
        "{html}"
    );
    assert!(html.contains("item.items[].amount") && html.contains("command.order.lines[].net_amount"));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("shop-to-odoo"), "{html}");

    let out = handoff(&["contract", "docs", "--config", example("handoff.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("orders-to-erp: shop → erp"));
}

/// A refreshed NetSuite salesOrder snapshot that newly requires a field the mapping does not
/// write is reported before any traffic meets it; the mapping's golden cases are checked too.
#[test]
fn check_reports_a_newly_required_target_field_the_mapping_does_not_produce() {
    let dir = tempfile::tempdir().unwrap();
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mappings/netsuite/sales_order");
    let to = dir.path().join("mappings/netsuite/sales_order");
    std::fs::create_dir_all(to.join("v1.cases")).unwrap();
    std::fs::copy(from.join("v1.jq"), to.join("v1.jq")).unwrap();
    for case in std::fs::read_dir(from.join("v1.cases")).unwrap() {
        let case = case.unwrap().path();
        std::fs::copy(&case, to.join("v1.cases").join(case.file_name().unwrap())).unwrap();
    }
    let previous = std::fs::read_to_string(from.join("schema.json")).unwrap();
    std::fs::write(to.join("schema.previous.json"), &previous).unwrap();
    let mut refreshed: serde_json::Value = serde_json::from_str(&previous).unwrap();
    refreshed["fields"]["department"] = serde_json::json!({"required": true, "type": "object", "lookup": "department"});
    std::fs::write(to.join("schema.json"), refreshed.to_string()).unwrap();
    let contract = std::fs::read_to_string(example("vendors.toml"))
        .unwrap()
        .replace("[hub]\n", "[hub]\nmappings = \"mappings\"\n");
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, contract).unwrap();

    let out = handoff(&["contract", "check", "--config", config.to_str().unwrap()]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("netsuite/sales_order@1 passes its 2 golden cases"), "{text}");
    assert!(
        text.contains(
            "the refreshed sales_order snapshot newly requires department; netsuite/sales_order@1 does not produce it"
        ),
        "{text}"
    );
}

#[test]
fn idempotency_keys_on_a_connector_that_ignores_them_is_refused_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("vendors.toml")).unwrap();
    assert!(text.contains("idempotency_keys = false"), "the example sets it on Odoo");
    let claims = dir.path().join("claims.toml");
    std::fs::write(&claims, text.replace("idempotency_keys = false", "idempotency_keys = true")).unwrap();

    let out = handoff(&["contract", "check", "--config", claims.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "refused, not a finding among others");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `systems.odoo.idempotency_keys`: the odoo connector ignores it"), "{err}");
    assert!(err.contains("reads the record back by external reference before every send"), "{err}");

    let data = dir.path().join("data");
    let out = handoff(&["serve", "--config", claims.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(!out.status.success(), "serve refuses what check refuses");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("systems.odoo.idempotency_keys"), "{err}");

    // NetSuite upserts by external id whatever the contract says: `false` would be ignored too.
    let netsuite = dir.path().join("netsuite.toml");
    let text = text.replace("connector = \"netsuite\"", "connector = \"netsuite\"\nidempotency_keys = false");
    std::fs::write(&netsuite, text).unwrap();
    let out = handoff(&["contract", "check", "--config", netsuite.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key `systems.netsuite.idempotency_keys`: the netsuite connector upserts"), "{err}");
}

/// The contract's word on each connector and what its target does are one answer.
#[test]
fn each_targets_idempotency_is_what_the_contract_says_of_its_connector() {
    for name in ["handoff.toml", "vendors.toml"] {
        let contract = handoff_contract::Contract::load(&example(name)).unwrap();
        for (system_name, system) in &contract.systems {
            let Some(target) = handoff_connectors::target(system_name, system).unwrap() else { continue };
            assert_eq!(
                target.honours_idempotency_keys(),
                system.honours_idempotency_keys(),
                "{name}: systems.{system_name} ({})",
                system.connector.as_str()
            );
        }
    }
}

/// `--data-dir`, then `HANDOFF_DATA_DIR`, then the contract's `[hub] data_dir` (relative to the
/// contract), then `handoff-data`: as `doctor` reports the store it looked in.
#[test]
fn the_data_directory_is_the_flag_else_the_environment_else_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example("handoff.toml")).unwrap();
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, text.replacen("[hub]", "[hub]\ndata_dir = \"hub-store\"", 1)).unwrap();
    let looked_in = |flag: Option<&str>, env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_handoff"));
        command.args(["doctor", "--format", "json", "--config", config.to_str().unwrap()]);
        command.env_remove("HANDOFF_CONFIG").env_remove("HANDOFF_DATA_DIR");
        if let Some(flag) = flag {
            command.args(["--data-dir", flag]);
        }
        if let Some(env) = env {
            command.env("HANDOFF_DATA_DIR", env);
        }
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        PathBuf::from(report["data_dir"].as_str().unwrap())
    };
    assert_eq!(looked_in(None, None), dir.path().join("hub-store"), "the contract's, next to it");
    assert_eq!(looked_in(None, Some("from-env")), PathBuf::from("from-env"));
    assert_eq!(looked_in(Some("from-flag"), Some("from-env")), PathBuf::from("from-flag"));
    std::fs::write(&config, &text).unwrap();
    assert_eq!(looked_in(None, None), PathBuf::from("handoff-data"), "no one says");
}
