//! Readers and the join on small hand-written exports: every format, gzip, bad rows, presets
//! and their header variants, inferred columns and value formats, overrides, and fuzzy matches
//! with their confidence.

use std::io::Write;
use std::path::{Path, PathBuf};

use handoff_model::Pattern;
use handoff_recon::{Columns, Input, Options, Outcome, Preset, reconcile};
use handoff_rules::Deadlines;

const AS_OF: &str = "2026-03-01T00:00:00Z";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn input(name: &str, path: PathBuf, preset: Preset, over: Columns) -> Input {
    Input::new(name, path, Some(preset), over)
}

fn run(inputs: &[Input]) -> Outcome {
    let options = Options { deadlines: Deadlines::default(), as_of: AS_OF.parse().unwrap(), threads: 2 };
    reconcile(inputs, &options, &|_| {}).unwrap()
}

fn patterns(o: &Outcome) -> Vec<(Pattern, Option<String>)> {
    let mut v: Vec<_> = o.findings.iter().map(|e| (e.pattern, e.order_ref.clone())).collect();
    v.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
    v
}

const SHOPIFY: &str = "\
Name,Email,Financial Status,Fulfillment Status,Fulfilled at,Currency,Total,Created at,Lineitem quantity,Lineitem name,Cancelled at
#1001,ada@example.com,paid,unfulfilled,,EUR,28.58,2026-01-15 10:23:45 +0100,1,Tote,
#1001,ada@example.com,,,,,,,2,Mug,
#1002,alan@example.com,paid,fulfilled,2026-01-16 09:00:00 +0100,EUR,10.00,2026-01-15 11:00:00 +0100,1,Tote,
#1003,grace@example.com,paid,unfulfilled,,EUR,99.00,2026-01-20 12:00:00 +0100,1,Lamp,
#1004,bad-date@example.com,paid,unfulfilled,,EUR,5.00,yesterday,1,Tote,
";

const NETSUITE: &str = "\
Document Number,Date Created,Last Modified,Status,External ID,Email,Currency,Amount (Transaction Total),Line Count
SO1,1/15/2026 9:30 am,1/15/2026 9:30 am,Pending Fulfillment,#1001,ada@example.com,EUR,28.58,2
SO2,1/15/2026 10:05 am,1/16/2026 8:00 am,Billed,,alan@example.com,EUR,10.00,1
";

const STRIPE: &str = "\
id,Created (UTC),Amount,Amount Refunded,Currency,Status,Customer Email,Captured,order_id (metadata)
ch_1,2026-01-15 09:24:00,28.58,0.00,eur,Paid,ada@example.com,true,#1001
ch_3,2026-01-20 11:00:30,99.00,0.00,eur,Paid,grace@example.com,true,
ch_9,2026-01-21 08:00:00,42.00,0.00,eur,Paid,nobody@example.net,true,
ch_f,2026-01-21 08:00:00,42.00,0.00,eur,Failed,nobody@example.net,false,
";

#[test]
fn csv_exports_join_by_reference_and_by_fuzzy_keys() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        input("storefront", write(dir.path(), "shop.csv", SHOPIFY), Preset::Shopify, Columns::default()),
        input("erp", write(dir.path(), "ns.csv", NETSUITE), Preset::Netsuite, Columns::default()),
        input("payments", write(dir.path(), "stripe.csv", STRIPE), Preset::Stripe, Columns::default()),
    ]);
    assert_eq!(o.rows, vec![("storefront".into(), 5), ("erp".into(), 2), ("payments".into(), 4)]);
    assert_eq!(o.skipped, 1, "the failed payment");
    // The bad date: counted, kept with file, line and reason; the run went on.
    assert_eq!(o.bad.count, 1);
    let bad = &o.bad.kept[0];
    assert!(bad.file.ends_with("shop.csv") && bad.line == 6, "{bad}");
    assert!(bad.reason.contains("unreadable date \"yesterday\""), "{bad}");
    // #1001: two lines, by reference; #1002's record names no order but matches by amount,
    // email and time, and its fulfillment shows in both; #1003 never reached the ERP, and its
    // payment (no reference) is the evidence; ch_9 belongs to no order at all.
    assert_eq!(patterns(&o), vec![(Pattern::MissingOrder, Some("#1003".into())), (Pattern::OrphanedPayment, None)]);
    let missing = &o.findings.iter().find(|e| e.pattern == Pattern::MissingOrder).unwrap();
    assert_eq!(missing.payment_id.as_deref(), Some("ch_3"));
    let orphan = &o.findings.iter().find(|e| e.pattern == Pattern::OrphanedPayment).unwrap();
    assert_eq!(orphan.payment_id.as_deref(), Some("ch_9"));
    assert_eq!(o.stats.erp_by_fuzzy, 1);
    assert_eq!(o.stats.payments_by_fuzzy, 1);
    let link = o.links.iter().find(|l| l.kind == "erp").unwrap();
    assert_eq!((link.id.as_str(), link.order_ref.as_str()), ("SO2", "#1002"));
    assert!(link.confidence > 0.9 && link.confidence < 1.0, "{}", link.confidence);
}

#[test]
fn quoted_fields_crlf_bom_and_blank_lines_keep_rows_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    // A spreadsheet's CSV: a byte order mark, CRLF line breaks, fields quoted where they hold a
    // comma, a quote or a line break, blank lines and a line of spaces between rows.
    let text = "\u{feff}Name,Email,Financial Status,Fulfillment Status,Fulfilled at,Currency,Total,Created at,Lineitem quantity,Lineitem name,Cancelled at\r\n\
        \"#1001\",\"ada@example.com\",paid,unfulfilled,,EUR,\"28.58\",2026-01-15 10:23:45 +0100,1,\"Tote, \"\"large\"\"\r\nblue\",\r\n\
        \r\n\
        \r\n\
        #1002,alan@example.com,paid,unfulfilled,,EUR,10.00,yesterday,1,Mug,\r\n\
        \x20\x20\r\n\
        #1003,grace@example.com,paid\r\n\
        \"#1004\",grace@example.com,paid,unfulfilled,,EUR,\"1,099.00\",2026-01-20 12:00:00 +0100,1,\"Lamp\",";
    let o = run(&[input("storefront", write(dir.path(), "shop.csv", text), Preset::Shopify, Columns::default())]);
    assert_eq!(o.rows, vec![("storefront".into(), 4)], "blank lines are no rows");
    let bad: Vec<(u64, &str)> = o.bad.kept.iter().map(|b| (b.line, b.reason.as_str())).collect();
    assert_eq!(o.bad.count, 2, "{bad:?}");
    assert_eq!(bad[0].0, 6, "the line after the quoted line break and the blank lines: {bad:?}");
    assert!(bad[0].1.contains("unreadable date \"yesterday\""), "{bad:?}");
    assert_eq!(bad[1], (8, "3 fields where the header has 11"));
    // Both good orders read whole, unquoted: never sent to the ERP.
    let missing: Vec<(String, String)> = o
        .findings
        .iter()
        .map(|e| (e.order_ref.clone().unwrap(), e.amount.as_ref().unwrap().amount.to_string()))
        .collect();
    assert_eq!(missing, vec![("#1001".into(), "28.58".into()), ("#1004".into(), "1099.00".into())]);
}

#[test]
fn gzip_tsv_and_jsonl_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let amazon = "amazon-order-id\tpurchase-date\tlast-updated-date\torder-status\tcurrency\titem-price\titem-tax\tshipping-price\n\
        111-1\t2026-01-10T10:00:00+00:00\t2026-01-11T10:00:00+00:00\tShipped\tUSD\t10.00\t0.80\t4.90\n\
        111-1\t2026-01-10T10:00:00+00:00\t2026-01-11T10:00:00+00:00\tShipped\tUSD\t5.00\t0.40\t\n";
    let gz = dir.path().join("amazon.txt.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    enc.write_all(amazon.as_bytes()).unwrap();
    enc.finish().unwrap();
    // A JSONL ERP export with Odoo's column names: the record totals 21.10 and has 2 lines.
    let odoo = write(
        dir.path(),
        "odoo.jsonl",
        "{\"Order Reference\":\"S00001\",\"Customer Reference\":\"111-1\",\"Creation Date\":\"2026-01-10 10:05:00\",\
         \"Status\":\"Sales Order\",\"Delivery Status\":\"Not Delivered\",\"Total\":\"21.10\",\"Currency\":\"USD\"}\n\
         not json\n",
    );
    let o = run(&[
        input("marketplace", gz, Preset::Amazon, Columns::default()),
        input("erp", odoo, Preset::Odoo, Columns { format: Some(handoff_recon::Format::Jsonl), ..Columns::default() }),
    ]);
    assert_eq!(o.rows, vec![("marketplace".into(), 2), ("erp".into(), 2)]);
    assert_eq!(o.bad.count, 1);
    assert_eq!(o.bad.kept[0].line, 2);
    assert!(o.bad.kept[0].reason.starts_with("not a JSON object"), "{}", o.bad.kept[0]);
    // Amazon shipped, Odoo has not delivered: a Status Void, and the totals agree (21.10).
    assert_eq!(patterns(&o), vec![(Pattern::StatusVoid, Some("111-1".into()))]);
}

#[test]
fn columns_override_names_dates_and_decimal_commas() {
    let dir = tempfile::tempdir().unwrap();
    let shop = write(dir.path(), "shop.csv", SHOPIFY);
    let erp = write(
        dir.path(),
        "erp.csv",
        "Beleg;Erstellt;Bestellnr;Betrag;Waehrung;Status\nSO1;15.01.2026 09:30;1001;28,58;EUR;Offen\nSO2;15.01.2026 10:05;1002;10,00;EUR;Storniert\n",
    );
    let over: Columns = toml::from_str(
        r##"
        format = "csv"
        id = "Beleg"
        created_at = "Erstellt"
        reference = "Bestellnr"
        reference_prefix = "#"
        total = "Betrag"
        currency = "Waehrung"
        date_format = "%d.%m.%Y %H:%M"
        decimal = ","
        closed_status = "Status"
        closed_values = ["Storniert"]
        updated_at = "Erstellt"
        email = "Erstellt"
        lines = "Beleg"
        "##,
    )
    .unwrap();
    // The semicolon is not CSV's comma: everything lands in one column, and the reader says so.
    let refused = handoff_recon::reconcile(
        &[input("erp", erp.clone(), Preset::Netsuite, over.clone())],
        &Options { deadlines: Deadlines::default(), as_of: AS_OF.parse().unwrap(), threads: 1 },
        &|_| {},
    );
    let err = refused.expect_err("a missing column refuses the input").to_string();
    assert!(err.contains("\"Beleg\"") && err.contains("no such column"), "{err}");
    std::fs::write(&erp, std::fs::read_to_string(&erp).unwrap().replace(';', "\t")).unwrap();
    let over = Columns { format: Some(handoff_recon::Format::Tsv), lines: None, email: None, ..over };
    let o = run(&[
        input("storefront", shop, Preset::Shopify, Columns::default()),
        input("erp", erp, Preset::Netsuite, over),
    ]);
    // #1001 and #1002 reached the ERP (#1002 fulfilled in the shop, cancelled in the ERP:
    // nothing the rules care about); #1003 did not. The bad-date row #1004 is skipped.
    assert_eq!(patterns(&o), vec![(Pattern::MissingOrder, Some("#1003".into()))]);
}

/// Runs inputs given as (name, file name, text), every preset inferred from the header.
fn run_inferred(files: &[(&str, &str, &str)], timezone: Option<&str>) -> Result<Outcome, handoff_recon::ReconError> {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Input> = files
        .iter()
        .map(|(name, file, text)| {
            let columns = Columns { timezone: timezone.map(str::to_owned), ..Columns::default() };
            Input::new(name, write(dir.path(), file, text), None, columns)
        })
        .collect();
    let options = Options { deadlines: Deadlines::default(), as_of: AS_OF.parse().unwrap(), threads: 1 };
    reconcile(&inputs, &options, &|_| {})
}

const STRIPE_CURRENT: &str = "\
id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,Customer Email,order_id (metadata)
ch_1,2026-01-15 09:24:00,28.58,0.00,eur,true,Paid,ada@example.com,#1001
ch_2,2026-01-16 09:24:00,12.00,0.00,eur,false,Canceled,ada@example.com,
";

const STRIPE_LEGACY: &str = "\
id,Created (UTC),Amount,Amount Refunded,Currency,Captured,Status,Customer Email,order_id (metadata)
ch_1,2026-01-15 09:24:00,28.58,0.00,eur,true,Paid,ada@example.com,#1001
ch_2,2026-01-16 09:24:00,12.00,0.00,eur,false,Canceled,ada@example.com,
";

#[test]
fn stripe_current_and_legacy_headers_read_alike() {
    for (variant, text) in [("Created date (UTC)", STRIPE_CURRENT), ("Created (UTC)", STRIPE_LEGACY)] {
        // A payment whose order no export holds: an Orphaned Payment, captured at 09:24 UTC
        // (the column's name says UTC, whatever --timezone says).
        let o = run_inferred(&[("payments", "stripe.csv", text)], Some("America/New_York")).unwrap();
        assert_eq!(o.skipped, 1, "{variant}: the uncaptured payment");
        assert_eq!(o.findings.len(), 1, "{variant}: {:?}", o.findings);
        let f = &o.findings[0];
        assert_eq!((f.pattern, f.payment_id.as_deref()), (Pattern::OrphanedPayment, Some("ch_1")), "{variant}");
        assert_eq!(f.due_at, "2026-01-15T09:39:00Z".parse().unwrap(), "{variant}: 15 minutes after the capture");
        assert!(o.layouts[0].contains(&format!("`{variant}`")), "{}", o.layouts[0]);
        assert!(o.layouts[0].contains("UTC, as its name says"), "{}", o.layouts[0]);
    }
}

const SHOP_FOR_ERP: &str = "\
Name,Email,Financial Status,Fulfillment Status,Fulfilled at,Currency,Total,Created at,Lineitem quantity,Cancelled at,Refunded Amount
#1001,ada@example.com,paid,unfulfilled,,USD,1234.50,2026-01-15 10:23:45 -0500,1,,0.00
#1001,ada@example.com,,,,,,,1,,
#1002,alan@example.com,paid,fulfilled,2026-01-17 09:00:00 -0500,USD,10.00,2026-01-15 11:00:00 -0500,1,,0.00
";

#[test]
fn netsuite_classic_and_merchant_saved_searches_read_alike() {
    // NetSuite's own names, a time in each date; then a merchant's search: the reference in
    // PO/Check Number, a bare M/D/YYYY date in the store's zone, Amount (Total) with thousands
    // separators, Fulfilled as Yes/No. Both say the same: #1001 is open with two lines and
    // totals 1,234.50; #1002 was shipped in the shop and is still open in the ERP.
    let classic = "\
Document Number,Date Created,Last Modified,Status,External ID,Email,Currency,Amount (Transaction Total),Line Count
SO1,1/15/2026 10:30 am,1/15/2026 10:30 am,Pending Fulfillment,#1001,ada@example.com,USD,1234.50,2
SO2,1/15/2026 11:05 am,1/16/2026 8:00 am,Pending Fulfillment,#1002,alan@example.com,USD,10.00,1
";
    let merchant = "\
Internal ID,Document Number,Date,Status,PO/Check Number,Memo,Email,Currency,Amount (Total),Fulfilled,Lines
11,SO1,1/15/2026,Pending Fulfillment,#1001,Shopify order,ada@example.com,USD,\"1,234.50\",No,2
12,SO2,1/15/2026,Pending Fulfillment,#1002,Shopify order,alan@example.com,USD,10.00,No,1
13,SO3,12/30/2025,Pending Fulfillment,,Shopify order,old@example.com,USD,5.00,No,1
";
    for (variant, erp) in [("classic", classic), ("merchant", merchant)] {
        let o =
            run_inferred(&[("storefront", "shop.csv", SHOP_FOR_ERP), ("erp", "ns.csv", erp)], Some("America/New_York"))
                .unwrap_or_else(|e| panic!("{variant}: {e}"));
        assert_eq!(o.bad.count, 0, "{variant}: {:?}", o.bad.kept);
        assert_eq!(patterns(&o), vec![(Pattern::StatusVoid, Some("#1002".into()))], "{variant}: {:?}", o.findings);
    }
    let o = run_inferred(&[("erp", "ns.csv", merchant)], Some("America/New_York")).unwrap();
    let layout = &o.layouts[0];
    for expected in [
        "`PO/Check Number`",
        "`Amount (Total)`",
        "yes/no values",
        "dates M/D/YYYY (decided by \"1/15/2026\")",
        "America/New_York",
        "thousands comma",
    ] {
        assert!(layout.contains(expected), "{expected}: {layout}");
    }
}

#[test]
fn a_bare_date_in_the_store_zone_is_that_days_end() {
    // 1/15/2026 in New York ends at 2026-0116T04:59:59Z; an order placed 23:30 New York time
    // the same day (04:30Z the next day) is matched to the record by amount and email.
    let shop = "\
Name,Email,Financial Status,Fulfillment Status,Currency,Total,Created at
#1001,ada@example.com,paid,unfulfilled,USD,10.00,2026-01-16 04:30:00 +0000
";
    let erp = "\
Document Number,Date,Status,PO/Check Number,Email,Currency,Amount (Total),Fulfilled
SO1,1/15/2026,Pending Fulfillment,,ada@example.com,USD,10.00,No
";
    let o =
        run_inferred(&[("storefront", "shop.csv", shop), ("erp", "ns.csv", erp)], Some("America/New_York")).unwrap();
    assert_eq!(o.stats.erp_by_fuzzy, 1, "{:?}", o.findings);
    assert!(o.findings.is_empty(), "{:?}", o.findings);
}

#[test]
fn an_ambiguous_date_column_stops_the_run() {
    let erp = "\
Document Number,Date,Status,External ID,Currency,Amount (Total)
SO1,1/5/2026,Pending Fulfillment,#1001,USD,10.00
SO2,2/3/2026,Pending Fulfillment,#1002,USD,10.00
";
    let err = run_inferred(&[("erp", "ns.csv", erp)], None).expect_err("no value tells M/D from D/M").to_string();
    assert!(err.contains("input erp"), "{err}");
    assert!(err.contains("column \"Date\""), "{err}");
    assert!(err.contains("ambiguous") && err.contains("\"1/5/2026\""), "{err}");
    assert!(err.contains("date_format"), "{err}");
    // A value further down decides it: day first.
    let mut decided = erp.to_owned();
    for i in 0..3000 {
        decided.push_str(&format!("SO{i}x,1/1/2026,Pending Fulfillment,#x{i},USD,1.00\n"));
    }
    decided.push_str("SO9,25/3/2026,Pending Fulfillment,#1009,USD,10.00\n");
    let o = run_inferred(&[("erp", "ns.csv", &decided)], None).unwrap();
    assert!(
        o.layouts[0].contains("dates D/M/YYYY (decided by \"25/3/2026\", past the first rows)"),
        "{}",
        o.layouts[0]
    );
}

#[test]
fn a_missing_or_ambiguous_column_names_the_candidates() {
    let erp = "Document Number,When,External ID\nSO1,2026-01-05,#1001\n";
    let err = run_inferred(&[("erp", "ns.csv", erp)], None).unwrap_err().to_string();
    assert!(
        err.contains("no created column") && err.contains("\"Date Created\"") && err.contains("\"Transaction Date\""),
        "{err}"
    );
    assert!(err.contains("the file has Document Number, When, External ID"), "{err}");
    let erp = "Document Number,Date,Transaction Date,External ID\nSO1,2026-01-05,2026-01-06,#1001\n";
    let err = run_inferred(&[("erp", "ns.csv", erp)], None).unwrap_err().to_string();
    assert!(err.contains("ambiguous") && err.contains("\"Date\" and \"Transaction Date\""), "{err}");
    // A column of the same name with no values gives way to one with values.
    let erp = "Document Number,Date Created,Date,External ID\nSO1,,2026-01-05,#1001\n";
    let o = run_inferred(&[("erp", "ns.csv", erp)], None).unwrap();
    assert!(o.layouts[0].contains("\"Date Created\" has no values"), "{}", o.layouts[0]);
}

const AMAZON_HEAD: &str = "amazon-order-id\tpurchase-date\tlast-updated-date\torder-status\tcurrency\titem-price\titem-tax\tshipping-price\titem-promotion-discount\n";

#[test]
fn amazon_cancellations_and_negative_discounts() {
    // 111-1 was cancelled at Amazon and is still open in the ERP: a Rollback Gap, whichever
    // spelling. 111-2 carries a promotion written as a negative number: 10.00 + 0.80 - 2.00.
    let amazon = format!(
        "{AMAZON_HEAD}\
         111-1\t2026-01-10T10:00:00+00:00\t2026-01-10T12:00:00+00:00\tCancelled\tUSD\t10.00\t0.80\t\t0.00\n\
         111-2\t2026-01-10T10:00:00+00:00\t2026-01-10T10:05:00+00:00\tUnshipped\tUSD\t10.00\t0.80\t\t-2.00\n\
         111-3\t2026-01-10T10:00:00+00:00\t2026-01-10T12:00:00+00:00\tCanceled\tUSD\t5.00\t0.40\t\t0.00\n"
    );
    let erp = "\
Document Number,Date Created,Status,External ID,Currency,Amount (Transaction Total)
SO1,2026-01-10 10:05,Pending Fulfillment,111-1,USD,10.80
SO2,2026-01-10 10:05,Pending Fulfillment,111-2,USD,8.80
SO3,2026-01-10 10:05,Pending Fulfillment,111-3,USD,5.40
";
    let o = run_inferred(&[("marketplace", "amazon.txt", &amazon), ("erp", "ns.csv", erp)], None).unwrap();
    assert_eq!(
        patterns(&o),
        vec![(Pattern::RollbackGap, Some("111-1".into())), (Pattern::RollbackGap, Some("111-3".into()))],
        "{:?}",
        o.findings
    );
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    // The same discount written positive on one row of a report whose others are negative:
    // still subtracted, and the report is flagged with counts and the line.
    let mixed = format!(
        "{AMAZON_HEAD}\
         111-2\t2026-01-10T10:00:00+00:00\t2026-01-10T10:05:00+00:00\tUnshipped\tUSD\t10.00\t0.80\t\t2.00\n\
         111-4\t2026-01-10T10:00:00+00:00\t2026-01-10T10:05:00+00:00\tUnshipped\tUSD\t10.00\t0.80\t\t-1.00\n\
         111-5\t2026-01-10T10:00:00+00:00\t2026-01-10T10:05:00+00:00\tUnshipped\tUSD\t10.00\t0.80\t\t-1.00\n"
    );
    let o = run_inferred(&[("marketplace", "amazon.txt", &mixed), ("erp", "ns.csv", erp)], None).unwrap();
    assert!(!o.findings.iter().any(|f| f.pattern == Pattern::TransformMismatch), "{:?}", o.findings);
    assert_eq!(o.warnings.len(), 1, "{:?}", o.warnings);
    assert!(
        o.warnings[0].starts_with("marketplace: 1 discounts are positive where 2 are negative (lines 2)"),
        "{}",
        o.warnings[0]
    );
}

#[test]
fn a_refund_in_full_is_a_refund_on_every_channel() {
    // Shopify: #1001 refunded in full without a cancellation, still open in the ERP: a Rollback
    // Gap; #1002 refunded in part: nothing.
    let shop = "\
Name,Email,Financial Status,Fulfillment Status,Currency,Total,Created at,Cancelled at,Refunded Amount
#1001,ada@example.com,refunded,unfulfilled,EUR,20.00,2026-01-15 10:00:00 +0100,,20.00
#1002,alan@example.com,partially_refunded,unfulfilled,EUR,20.00,2026-01-15 10:00:00 +0100,,5.00
";
    let erp = "\
Document Number,Date Created,Status,External ID,Currency,Amount (Transaction Total)
SO1,2026-01-15 10:05,Pending Fulfillment,#1001,EUR,20.00
SO2,2026-01-15 10:05,Pending Fulfillment,#1002,EUR,20.00
";
    let o = run_inferred(&[("storefront", "shop.csv", shop), ("erp", "ns.csv", erp)], None).unwrap();
    assert_eq!(patterns(&o), vec![(Pattern::RollbackGap, Some("#1001".into()))], "{:?}", o.findings);
    // Stripe: a payment refunded in full is no money held; one refunded in part still is.
    let stripe = "\
id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Status,order_id (metadata)
ch_1,2026-01-15 09:24:00,28.58,28.58,eur,true,Paid,#9
ch_2,2026-01-15 09:24:00,28.58,8.58,eur,true,Paid,#8
";
    let o = run_inferred(&[("payments", "stripe.csv", stripe)], None).unwrap();
    let ids: Vec<_> = o.findings.iter().map(|f| f.payment_id.clone()).collect();
    assert_eq!(ids, vec![Some("ch_2".into())]);
}

#[test]
fn odoo_is_recognised_by_its_header() {
    let odoo = "\
Order Reference,Customer Reference,Creation Date,Status,Delivery Status,Total,Currency
S00001,#1001,2026-01-15 10:05:00,Sales Order,Not Delivered,28.58,EUR
S00002,#1001,2026-01-15 11:05:00,Quotation,Not Delivered,28.58,EUR
";
    let o = run_inferred(&[("erp", "odoo.csv", odoo)], None).unwrap();
    assert!(o.layouts[0].contains("preset odoo"), "{}", o.layouts[0]);
    assert_eq!(patterns(&o), vec![(Pattern::DuplicateDraft, Some("#1001".into()))]);
}

#[test]
fn a_semicolon_export_with_decimal_commas_is_read_without_columns() {
    let erp = "\
Document Number;Date Created;Status;External ID;Currency;Amount (Transaction Total)
SO1;15.01.2026 09:30;Pending Fulfillment;#1001;EUR;1.234,50
SO2;15.01.2026 09:35;Pending Fulfillment;#1001;EUR;1.234,50
";
    let o = run_inferred(&[("erp", "ns.csv", erp)], Some("Europe/Berlin")).unwrap();
    let layout = &o.layouts[0];
    assert!(layout.contains("separated by ';'") && layout.contains("decimal comma, thousands point"), "{layout}");
    assert!(layout.contains("dates D/M/YYYY (decided by \"15.01.2026 09:30\")"), "{layout}");
    let dup = &o.findings[0];
    assert_eq!(dup.pattern, Pattern::DuplicateDraft);
    assert_eq!(dup.due_at, "2026-01-15T08:35:00Z".parse().unwrap());
}
