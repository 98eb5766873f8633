//! Readers and the join on small hand-written exports: every format, gzip, bad rows, presets
//! and overrides, and fuzzy matches with their confidence.

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
    Input { name: name.into(), path, role: preset.role(), columns: Columns::resolve(preset, over) }
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
    assert!(err.contains("has no column \"Beleg\""), "{err}");
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
