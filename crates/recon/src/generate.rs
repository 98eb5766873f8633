//! Realistic exports of a Shopify + Amazon + Stripe + NetSuite stack, in the vendors' current
//! layouts (Stripe's payments export with its current or legacy headers; a NetSuite saved search
//! with the column names a merchant chose and dates in the store's time zone; Amazon's promotion
//! discounts as negative numbers), with every failure pattern planted at known rates on every
//! channel, and the ground truth beside them. Seeded: the same seed writes the same bytes.
//!
//! Planted exceptions sit on orders placed at least [`SETTLED`] before the end, so that every
//! deadline has passed; the last minutes hold orders still in flight (no ERP record yet), which
//! are not exceptions.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use handoff_model::Pattern;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::truth::Truth;

/// Planted exceptions are on orders at least this old at the end.
const SETTLED: SignedDuration = SignedDuration::from_hours(96);
/// Orders placed this close to the end may not have reached the ERP yet.
const IN_FLIGHT: SignedDuration = SignedDuration::from_mins(10);
/// The store's time zone, in which the NetSuite saved searches show their dates.
pub const STORE_TIMEZONE: &str = "America/New_York";
/// The exports' lag: every planted exception is older than this, every order in flight younger.
pub const DEADLINE: &str = "48h";

/// Per order (Orphaned Payment: per order, as extra payments), in parts per 10,000.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rates {
    pub missing_order: u32,
    pub status_void: u32,
    pub duplicate_draft: u32,
    pub transform_mismatch: u32,
    pub rollback_gap: u32,
    pub orphaned_payment: u32,
    /// Payments that name no order, for an order that exists (fuzzy, clean).
    pub payment_without_reference: u32,
    /// ERP records that name no order, the order's only one (fuzzy, clean).
    pub erp_without_reference: u32,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            missing_order: 60,
            status_void: 60,
            duplicate_draft: 50,
            transform_mismatch: 50,
            rollback_gap: 50,
            orphaned_payment: 30,
            payment_without_reference: 200,
            erp_without_reference: 100,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub orders: u64,
    pub seed: u64,
    pub out: PathBuf,
    /// The export's end, and the time to reconcile as of.
    pub end: Timestamp,
    pub days: i64,
    pub gzip: bool,
    pub rates: Rates,
    /// Stripe's legacy payments export header (`Created (UTC)`) instead of the current one.
    pub stripe_legacy: bool,
}

impl Spec {
    pub fn new(orders: u64, seed: u64, out: PathBuf) -> Spec {
        Spec {
            orders,
            seed,
            out,
            end: "2026-07-01T00:00:00Z".parse().expect("a valid time"),
            days: 365,
            gzip: false,
            rates: Rates::default(),
            stripe_legacy: false,
        }
    }
}

/// What was written, also saved as `manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub orders: u64,
    pub seed: u64,
    pub as_of: Timestamp,
    /// What to reconcile with: the store's time zone and the exports' lag.
    pub timezone: String,
    pub deadline: String,
    pub files: Files,
    pub rows: Rows,
    pub planted: std::collections::BTreeMap<String, u64>,
    pub rates_per_10k: Rates,
}

#[derive(Debug, Clone, Serialize)]
pub struct Files {
    pub storefront: PathBuf,
    pub marketplace: PathBuf,
    pub payments: PathBuf,
    pub erp: PathBuf,
    pub erp_fulfillments: PathBuf,
    pub ground_truth: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Rows {
    pub storefront: u64,
    pub marketplace: u64,
    pub payments: u64,
    pub erp: u64,
    pub erp_fulfillments: u64,
}

const SHOPIFY_COLUMNS: &[&str] = &[
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Billing Street",
    "Billing Address1",
    "Billing Address2",
    "Billing Company",
    "Billing City",
    "Billing Zip",
    "Billing Province",
    "Billing Country",
    "Billing Phone",
    "Shipping Name",
    "Shipping Street",
    "Shipping Address1",
    "Shipping Address2",
    "Shipping Company",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    "Notes",
    "Note Attributes",
    "Cancelled at",
    "Payment Method",
    "Payment Reference",
    "Refunded Amount",
    "Vendor",
    "Outstanding Balance",
    "Employee",
    "Location",
    "Device ID",
    "Id",
    "Tags",
    "Risk Level",
    "Source",
    "Lineitem discount",
    "Tax 1 Name",
    "Tax 1 Value",
    "Phone",
    "Receipt Number",
    "Duties",
    "Billing Province Name",
    "Shipping Province Name",
    "Payment ID",
    "Payment Terms Name",
    "Next Payment Due At",
    "Payment References",
];

const AMAZON_COLUMNS: &[&str] = &[
    "amazon-order-id",
    "merchant-order-id",
    "purchase-date",
    "last-updated-date",
    "order-status",
    "fulfillment-channel",
    "sales-channel",
    "order-channel",
    "url",
    "ship-service-level",
    "product-name",
    "sku",
    "asin",
    "item-status",
    "quantity",
    "currency",
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
    "ship-city",
    "ship-state",
    "ship-postal-code",
    "ship-country",
    "promotion-ids",
    "is-business-order",
    "purchase-order-number",
    "price-designation",
];

const STRIPE_COLUMNS: &[&str] = &[
    "id",
    "Description",
    "Seller Message",
    "Created date (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Converted Amount",
    "Converted Amount Refunded",
    "Fee",
    "Tax",
    "Converted Currency",
    "Mode",
    "Status",
    "Statement Descriptor",
    "Customer ID",
    "Customer Description",
    "Customer Email",
    "Captured",
    "Card ID",
    "Card Last4",
    "Card Brand",
    "Card Funding",
    "Card Exp Month",
    "Card Exp Year",
    "Card Name",
    "Card Address Country",
    "Card Issue Country",
    "Card Fingerprint",
    "Card CVC Status",
    "Disputed Amount",
    "Dispute Status",
    "Invoice ID",
    "Checkout Session ID",
    "PaymentIntent ID",
    "order_id (metadata)",
];

/// A merchant's sales order saved search: the reference in `PO/Check Number`, a bare `Date`.
const NETSUITE_COLUMNS: &[&str] = &[
    "Internal ID",
    "Document Number",
    "Date",
    "Status",
    "Name",
    "Email",
    "PO/Check Number",
    "Memo",
    "Currency",
    "Amount (Total)",
    "Fulfilled",
    "Lines",
    "Subsidiary",
];

const NETSUITE_FULFILLMENT_COLUMNS: &[&str] =
    &["Internal ID", "Document Number", "Date", "Date Created", "Created From", "Status", "Memo"];

const FIRST: &[&str] = &[
    "ada",
    "alan",
    "grace",
    "linus",
    "ken",
    "barbara",
    "edsger",
    "margaret",
    "donald",
    "frances",
    "john",
    "radia",
    "tim",
    "sophie",
    "dennis",
    "hedy",
    "claude",
    "katherine",
    "niklaus",
    "anita",
];
const LAST: &[&str] = &[
    "lovelace", "turing", "hopper", "torvalds", "thompson", "liskov", "dijkstra", "hamilton", "knuth", "allen",
    "backus", "perlman", "berners", "wilson", "ritchie", "lamarr", "shannon", "johnson", "wirth", "borg",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Berlin", "10115", "DE"),
    ("Hamburg", "20095", "DE"),
    ("Munich", "80331", "DE"),
    ("Paris", "75001", "FR"),
    ("Lyon", "69001", "FR"),
    ("Madrid", "28001", "ES"),
    ("Milan", "20121", "IT"),
    ("Vienna", "1010", "AT"),
    ("Amsterdam", "1011", "NL"),
    ("Dublin", "D01", "IE"),
];
const PRODUCTS: &[&str] = &[
    "Canvas Tote",
    "Wool Beanie",
    "Espresso Cups (2)",
    "Linen Apron",
    "Notebook A5",
    "Desk Lamp",
    "Travel Mug",
    "Leather Wallet",
    "Sunglasses",
    "Water Bottle",
];

fn stripe_columns(legacy: bool) -> Vec<&'static str> {
    let created = if legacy { "Created (UTC)" } else { "Created date (UTC)" };
    STRIPE_COLUMNS.iter().map(|&c| if c == "Created date (UTC)" { created } else { c }).collect()
}

fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

/// What the generator decided about one order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Plan {
    Clean,
    InFlight,
    Missing,
    /// The ERP shipped, the channel does not show it.
    VoidErpShipped,
    /// The channel shipped, the ERP record is still open.
    VoidChannelShipped,
    Duplicate {
        fuzzy: bool,
    },
    Mismatch(Mismatch),
    Rollback {
        erp_shipped: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mismatch {
    Total,
    Currency,
    Lines,
}

struct Line {
    sku: usize,
    quantity: i64,
    price: i64,
}

struct Out {
    w: csv::Writer<Box<dyn Write>>,
    rows: u64,
}

impl Out {
    fn create(path: &Path, columns: &[&str], tab: bool, gzip: bool) -> io::Result<Out> {
        let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let inner: Box<dyn Write> = match gzip {
            true => Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast())),
            false => Box::new(file),
        };
        let mut w = csv::WriterBuilder::new()
            .delimiter(if tab { b'\t' } else { b',' })
            .quote_style(if tab { csv::QuoteStyle::Never } else { csv::QuoteStyle::Necessary })
            .from_writer(inner);
        w.write_record(columns)?;
        Ok(Out { w, rows: 0 })
    }

    fn row(&mut self, fields: &[&str]) -> io::Result<()> {
        self.rows += 1;
        self.w.write_record(fields).map_err(io::Error::other)
    }

    fn finish(mut self) -> io::Result<u64> {
        self.w.flush()?;
        Ok(self.rows)
    }
}

struct Dates {
    shop: TimeZone,
    store: TimeZone,
}

impl Dates {
    fn shopify(&self, t: Timestamp) -> String {
        t.to_zoned(self.shop.clone()).strftime("%Y-%m-%d %H:%M:%S %z").to_string()
    }
    fn amazon(t: Timestamp) -> String {
        t.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    }
    fn stripe(t: Timestamp) -> String {
        t.strftime("%Y-%m-%d %H:%M:%S").to_string()
    }
    fn netsuite(&self, t: Timestamp) -> String {
        let z = t.to_zoned(self.store.clone());
        let (h, ampm) = match z.hour() {
            0 => (12, "am"),
            h @ 1..=11 => (h, "am"),
            12 => (12, "pm"),
            h => (h - 12, "pm"),
        };
        format!("{}/{}/{} {}:{:02} {ampm}", z.month(), z.day(), z.year(), h, z.minute())
    }
    fn netsuite_day(&self, t: Timestamp) -> String {
        let z = t.to_zoned(self.store.clone());
        format!("{}/{}/{}", z.month(), z.day(), z.year())
    }
}

struct Writers {
    shopify: Out,
    amazon: Out,
    stripe: Out,
    netsuite: Out,
    fulfillments: Out,
    truth: BufWriter<File>,
}

/// Writes the data set into `spec.out` and returns its manifest.
pub fn generate(spec: &Spec) -> io::Result<Manifest> {
    std::fs::create_dir_all(&spec.out)?;
    let gz = if spec.gzip { ".gz" } else { "" };
    let files = Files {
        storefront: spec.out.join(format!("shopify_orders.csv{gz}")),
        marketplace: spec.out.join(format!("amazon_orders.txt{gz}")),
        payments: spec.out.join(format!("stripe_payments.csv{gz}")),
        erp: spec.out.join(format!("netsuite_orders.csv{gz}")),
        erp_fulfillments: spec.out.join(format!("netsuite_fulfillments.csv{gz}")),
        ground_truth: spec.out.join("ground_truth.jsonl"),
    };
    let mut w = Writers {
        shopify: Out::create(&files.storefront, SHOPIFY_COLUMNS, false, spec.gzip)?,
        amazon: Out::create(&files.marketplace, AMAZON_COLUMNS, true, spec.gzip)?,
        stripe: Out::create(&files.payments, &stripe_columns(spec.stripe_legacy), false, spec.gzip)?,
        netsuite: Out::create(&files.erp, NETSUITE_COLUMNS, false, spec.gzip)?,
        fulfillments: Out::create(&files.erp_fulfillments, NETSUITE_FULFILLMENT_COLUMNS, false, spec.gzip)?,
        truth: BufWriter::new(File::create(&files.ground_truth)?),
    };
    let mut g = Generator {
        rng: ChaCha8Rng::seed_from_u64(spec.seed),
        spec: spec.clone(),
        dates: Dates {
            shop: TimeZone::get("Europe/Berlin").expect("a known zone"),
            store: TimeZone::get(STORE_TIMEZONE).expect("a known zone"),
        },
        shop_seq: 1000,
        so_seq: 100_000,
        if_seq: 500_000,
        internal_seq: 2_000_000,
        pay_seq: 0,
        planted: Default::default(),
        prices: (0..PRODUCTS.len() * 10).map(|i| 500 + ((i as i64 * 7919) % 19_500)).collect(),
    };
    let start = spec.end - SignedDuration::from_hours(24 * spec.days);
    let step = (spec.end.as_second() - start.as_second()) as f64 / spec.orders.max(1) as f64;
    for i in 0..spec.orders {
        let jitter = g.rng.random_range(0.0..step.max(1.0));
        let placed = Timestamp::from_second(start.as_second() + (i as f64 * step + jitter) as i64)
            .expect("within range")
            .min(spec.end - SignedDuration::from_secs(1));
        g.order(placed, &mut w)?;
        if g.rng.random_range(0..10_000) < spec.rates.orphaned_payment {
            g.orphan(placed, &mut w)?;
        }
    }
    w.truth.flush()?;
    let rows = Rows {
        storefront: w.shopify.finish()?,
        marketplace: w.amazon.finish()?,
        payments: w.stripe.finish()?,
        erp: w.netsuite.finish()?,
        erp_fulfillments: w.fulfillments.finish()?,
    };
    let manifest = Manifest {
        orders: spec.orders,
        seed: spec.seed,
        as_of: spec.end,
        timezone: STORE_TIMEZONE.to_owned(),
        deadline: DEADLINE.to_owned(),
        files,
        rows,
        planted: g.planted,
        rates_per_10k: spec.rates,
    };
    let mut m = BufWriter::new(File::create(spec.out.join("manifest.json"))?);
    serde_json::to_writer_pretty(&mut m, &manifest)?;
    m.flush()?;
    Ok(manifest)
}

struct Generator {
    rng: ChaCha8Rng,
    spec: Spec,
    dates: Dates,
    shop_seq: u64,
    so_seq: u64,
    if_seq: u64,
    internal_seq: u64,
    pay_seq: u64,
    planted: std::collections::BTreeMap<String, u64>,
    prices: Vec<i64>,
}

struct Order {
    reference: String,
    shopify: bool,
    placed: Timestamp,
    email: String,
    name: (&'static str, &'static str),
    city: (&'static str, &'static str, &'static str),
    currency: &'static str,
    lines: Vec<Line>,
    subtotal: i64,
    shipping: i64,
    tax: i64,
    promotion: i64,
    total: i64,
}

impl Generator {
    fn plan(&mut self, placed: Timestamp) -> Plan {
        if placed > self.spec.end - IN_FLIGHT {
            return Plan::InFlight;
        }
        if placed > self.spec.end - SETTLED {
            return Plan::Clean;
        }
        let r = &self.spec.rates;
        let mut x = self.rng.random_range(0..10_000u32);
        for (rate, plan) in [
            (r.missing_order, 0),
            (r.status_void, 1),
            (r.duplicate_draft, 2),
            (r.transform_mismatch, 3),
            (r.rollback_gap, 4),
        ] {
            if x < rate {
                return match plan {
                    0 => Plan::Missing,
                    1 if self.rng.random_bool(0.5) => Plan::VoidErpShipped,
                    1 => Plan::VoidChannelShipped,
                    2 => Plan::Duplicate { fuzzy: self.rng.random_bool(0.4) },
                    3 => Plan::Mismatch(match self.rng.random_range(0..4) {
                        0 | 1 => Mismatch::Total,
                        2 => Mismatch::Currency,
                        _ => Mismatch::Lines,
                    }),
                    _ => Plan::Rollback { erp_shipped: self.rng.random_bool(0.3) },
                };
            }
            x -= rate;
        }
        Plan::Clean
    }

    fn truth(&mut self, w: &mut Writers, t: &Truth) -> io::Result<()> {
        if let Truth::Exception { pattern, .. } = t {
            *self.planted.entry(pattern.as_str().to_owned()).or_default() += 1;
        }
        serde_json::to_writer(&mut w.truth, t)?;
        w.truth.write_all(b"\n")
    }

    fn order(&mut self, placed: Timestamp, w: &mut Writers) -> io::Result<()> {
        let shopify = self.rng.random_bool(0.7);
        let plan = match self.plan(placed) {
            // Only an order with an email can be told apart from others of the same amount: an
            // Amazon report carries none, so its drafts without a reference are not planted.
            Plan::Duplicate { .. } if !shopify => Plan::Duplicate { fuzzy: false },
            plan => plan,
        };
        let customer = self.rng.random_range(0..(self.spec.orders / 3).max(1000));
        let name = (FIRST[(customer % 20) as usize], LAST[(customer / 20 % 20) as usize]);
        let email = format!("{}.{}{}@example.com", name.0, name.1, customer);
        let city = CITIES[self.rng.random_range(0..CITIES.len())];
        let n = self.rng.random_range(1..=4);
        let lines: Vec<Line> = (0..n)
            .map(|_| {
                let sku = self.rng.random_range(0..self.prices.len());
                Line { sku, quantity: self.rng.random_range(1..=3), price: self.prices[sku] }
            })
            .collect();
        let subtotal: i64 = lines.iter().map(|l| l.price * l.quantity).sum();
        let shipping = if subtotal > 5000 { 0 } else { 490 };
        let (currency, tax) = match shopify {
            true if self.rng.random_bool(0.8) => ("EUR", (subtotal + shipping) * 19 / 100),
            true => ("USD", (subtotal + shipping) * 8 / 100),
            false => ("USD", lines.iter().map(|l| l.price * l.quantity * 8 / 100).sum::<i64>() + shipping * 8 / 100),
        };
        // Amazon's report writes a promotion discount as a negative number.
        let promotion = match shopify {
            false if self.rng.random_bool(0.1) => subtotal / 10,
            _ => 0,
        };
        let reference = if shopify {
            self.shop_seq += 1;
            format!("#{}", self.shop_seq)
        } else {
            format!(
                "{:03}-{:07}-{:07}",
                self.rng.random_range(100..1000),
                self.rng.random_range(0..10_000_000),
                self.rng.random_range(0..10_000_000)
            )
        };
        let o = Order {
            reference,
            shopify,
            placed,
            email,
            name,
            city,
            currency,
            total: subtotal + shipping + tax - promotion,
            promotion,
            lines,
            subtotal,
            shipping,
            tax,
        };
        let settled = placed < self.spec.end - SETTLED;
        let secs = |rng: &mut ChaCha8Rng, lo: i64, hi: i64| SignedDuration::from_secs(rng.random_range(lo..hi));
        // What each side shows.
        let cancelled_clean = settled && plan == Plan::Clean && self.rng.random_bool(0.03);
        let cancelled = cancelled_clean || matches!(plan, Plan::Rollback { .. });
        let closed_at = cancelled.then(|| placed + secs(&mut self.rng, 600, 86_400));
        // A Shopify order is cancelled, or refunded in full without a cancellation.
        let refund_only = o.shopify && cancelled && self.rng.random_bool(0.5);
        let ships = settled && !cancelled && self.rng.random_bool(0.9);
        let shipped_at = placed + secs(&mut self.rng, 3_600, 172_800);
        let (channel_shipped, erp_shipped) = match plan {
            Plan::VoidErpShipped => (false, true),
            Plan::VoidChannelShipped => (true, false),
            Plan::Duplicate { .. } => (false, false),
            Plan::Rollback { erp_shipped } => (false, erp_shipped),
            _ => (ships, ships),
        };
        // A cancellation that reached nobody in time is a Rollback Gap; a clean one closed both
        // sides (some before the ERP ever had the order).
        let reaches_erp = match plan {
            Plan::Missing => false,
            Plan::InFlight => self.rng.random_bool(0.5),
            _ => !(cancelled_clean && self.rng.random_bool(0.2)),
        };
        let paid_by_reference = self.rng.random_range(0..10_000u32) >= self.spec.rates.payment_without_reference;
        let paid_at = placed + secs(&mut self.rng, 1, 60);
        let payment = match o.shopify {
            true => Some(self.payment(&o, paid_at, paid_by_reference, cancelled, w)?),
            false => None,
        };
        if o.shopify {
            self.shopify(&o, channel_shipped.then_some(shipped_at), closed_at, refund_only, payment.as_deref(), w)?;
        } else {
            self.amazon(&o, channel_shipped.then_some(shipped_at), closed_at, w)?;
        }
        if let (Some(p), false) = (&payment, paid_by_reference) {
            let link = Truth::Link { link: "payment".into(), id: p.clone(), order_ref: o.reference.clone() };
            self.truth(w, &link)?;
        }
        let mut erp_ids = Vec::new();
        if reaches_erp {
            let by_reference = !(o.shopify
                && plan == Plan::Clean
                && self.rng.random_range(0..10_000) < self.spec.rates.erp_without_reference);
            let created = placed + secs(&mut self.rng, 5, 300);
            let state = match (erp_shipped, cancelled && !matches!(plan, Plan::Rollback { .. })) {
                (_, true) => "Cancelled",
                (true, _) => "Billed",
                _ => "Pending Fulfillment",
            };
            let mismatch = match plan {
                Plan::Mismatch(m) => Some(m),
                _ => None,
            };
            let id = self.erp(&o, created, (state, erp_shipped), by_reference, mismatch, w)?;
            if erp_shipped {
                let at = shipped_at + secs(&mut self.rng, 0, 600);
                self.fulfillment(&id, at, w)?;
            }
            if !by_reference {
                let link = Truth::Link { link: "erp".into(), id: id.clone(), order_ref: o.reference.clone() };
                self.truth(w, &link)?;
            }
            erp_ids.push(id);
            if let Plan::Duplicate { fuzzy } = plan {
                let created = placed + secs(&mut self.rng, 600, 86_400);
                let draft = self.erp(&o, created, ("Pending Approval", false), !fuzzy, None, w)?;
                if fuzzy {
                    let link = Truth::Link { link: "erp".into(), id: draft.clone(), order_ref: o.reference.clone() };
                    self.truth(w, &link)?;
                }
                erp_ids.push(draft);
            }
        }
        let pattern = match plan {
            Plan::Clean | Plan::InFlight => return Ok(()),
            Plan::Missing => Pattern::MissingOrder,
            Plan::VoidErpShipped | Plan::VoidChannelShipped => Pattern::StatusVoid,
            Plan::Duplicate { .. } => Pattern::DuplicateDraft,
            Plan::Mismatch(_) => Pattern::TransformMismatch,
            Plan::Rollback { .. } => Pattern::RollbackGap,
        };
        let fuzzy = matches!(plan, Plan::Duplicate { fuzzy: true });
        self.truth(
            w,
            &Truth::Exception {
                pattern,
                order_ref: Some(o.reference.clone()),
                payment_id: payment.filter(|_| pattern == Pattern::MissingOrder),
                erp_ids,
                matched_by: if fuzzy { "fuzzy" } else { "reference" }.into(),
                channel: Some(if o.shopify { "shopify" } else { "amazon" }.into()),
            },
        )
    }

    fn payment_id(&mut self) -> String {
        self.pay_seq += 1;
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..14).map(|_| ALNUM[self.rng.random_range(0..ALNUM.len())] as char).collect();
        format!("ch_3P{:08}{tail}", self.pay_seq)
    }

    /// A Stripe charge for a Shopify order; its id.
    fn payment(
        &mut self,
        o: &Order,
        at: Timestamp,
        by_reference: bool,
        refunded: bool,
        w: &mut Writers,
    ) -> io::Result<String> {
        let id = self.payment_id();
        let amount = cents(o.total);
        let customer = format!("cus_{:010}", self.rng.random_range(0..10_000_000_000u64));
        let intent = format!("pi_3P{:08}", self.pay_seq);
        let reference = if by_reference { o.reference.as_str() } else { "" };
        let (status, refunded_amount) = if refunded { ("Refunded", amount.as_str()) } else { ("Paid", "0.00") };
        let fee = cents(o.total * 14 / 1000 + 25);
        w.stripe.row(&[
            &id,
            &format!("Shopify order {}", o.reference),
            "Payment complete.",
            &Dates::stripe(at),
            &amount,
            refunded_amount,
            &o.currency.to_ascii_lowercase(),
            &amount,
            refunded_amount,
            &fee,
            "0.00",
            &o.currency.to_ascii_lowercase(),
            "Live",
            status,
            "HANDOFF SHOP",
            &customer,
            &format!("{} {}", o.name.0, o.name.1),
            &o.email,
            "true",
            &format!("card_{:08}", self.pay_seq),
            &format!("{:04}", self.rng.random_range(0..10_000)),
            "Visa",
            "credit",
            &self.rng.random_range(1..=12).to_string(),
            &self.rng.random_range(2027..=2031).to_string(),
            &format!("{} {}", o.name.0, o.name.1),
            o.city.2,
            o.city.2,
            &format!("fp{:012}", self.rng.random_range(0..1_000_000_000_000u64)),
            "pass",
            "",
            "",
            "",
            &format!("cs_live_{:010}", self.pay_seq),
            &intent,
            reference,
        ])?;
        Ok(id)
    }

    /// A payment for a checkout that never became an order.
    fn orphan(&mut self, near: Timestamp, w: &mut Writers) -> io::Result<()> {
        if near > self.spec.end - SETTLED {
            return Ok(());
        }
        let id = self.payment_id();
        let k = self.pay_seq;
        let amount = cents(self.rng.random_range(1_000..40_000));
        // Half name a checkout's order number that no order got, half name nothing.
        let reference = match self.rng.random_bool(0.5) {
            true => format!("#{}", 90_000_000 + k),
            false => String::new(),
        };
        let email = format!("checkout{k}@example.net");
        w.stripe.row(&[
            &id,
            "Checkout",
            "Payment complete.",
            &Dates::stripe(near + SignedDuration::from_secs(30)),
            &amount,
            "0.00",
            "eur",
            &amount,
            "0.00",
            "0.55",
            "0.00",
            "eur",
            "Live",
            "Paid",
            "HANDOFF SHOP",
            &format!("cus_{k:010}"),
            "",
            &email,
            "true",
            &format!("card_{k:08}"),
            "4242",
            "Visa",
            "credit",
            "4",
            "2029",
            "",
            "DE",
            "DE",
            "",
            "pass",
            "",
            "",
            "",
            &format!("cs_live_{k:010}"),
            &format!("pi_3P{k:08}"),
            &reference,
        ])?;
        self.truth(
            w,
            &Truth::Exception {
                pattern: Pattern::OrphanedPayment,
                order_ref: None,
                payment_id: Some(id),
                erp_ids: vec![],
                matched_by: "reference".into(),
                channel: None,
            },
        )
    }

    fn shopify(
        &mut self,
        o: &Order,
        shipped: Option<Timestamp>,
        closed: Option<Timestamp>,
        refund_only: bool,
        payment: Option<&str>,
        w: &mut Writers,
    ) -> io::Result<()> {
        let created = self.dates.shopify(o.placed);
        let paid = self.dates.shopify(o.placed + SignedDuration::from_secs(30));
        let fulfilled_at = shipped.map(|t| self.dates.shopify(t)).unwrap_or_default();
        let cancelled_at = closed.filter(|_| !refund_only).map(|t| self.dates.shopify(t)).unwrap_or_default();
        let financial = if closed.is_some() { "refunded" } else { "paid" };
        let fulfillment = if shipped.is_some() { "fulfilled" } else { "unfulfilled" };
        let full_name = format!("{} {}", o.name.0, o.name.1);
        let street = format!("{} Main Street", 1 + o.total % 200);
        let id = (5_000_000_000u64 + self.shop_seq).to_string();
        let refunded = if closed.is_some() { cents(o.total) } else { "0.00".into() };
        for (i, line) in o.lines.iter().enumerate() {
            let first = i == 0;
            let product = PRODUCTS[line.sku % PRODUCTS.len()];
            let sku = format!("SKU-{:04}", line.sku);
            let quantity = line.quantity.to_string();
            let price = cents(line.price);
            let pick = |s: &str| if first { s.to_owned() } else { String::new() };
            let line_status = if shipped.is_some() { "fulfilled" } else { "pending" };
            w.shopify.row(&[
                &o.reference,
                &o.email,
                &pick(financial),
                &pick(&paid),
                &pick(fulfillment),
                &pick(&fulfilled_at),
                &pick("no"),
                &pick(o.currency),
                &pick(&cents(o.subtotal)),
                &pick(&cents(o.shipping)),
                &pick(&cents(o.tax)),
                &pick(&cents(o.total)),
                "",
                &pick("0.00"),
                &pick("Standard"),
                &pick(&created),
                &quantity,
                product,
                &price,
                "",
                &sku,
                "true",
                "true",
                line_status,
                &pick(&full_name),
                &pick(&street),
                &pick(&street),
                "",
                "",
                &pick(o.city.0),
                &pick(o.city.1),
                "",
                &pick(o.city.2),
                "",
                &pick(&full_name),
                &pick(&street),
                &pick(&street),
                "",
                "",
                &pick(o.city.0),
                &pick(o.city.1),
                "",
                &pick(o.city.2),
                "",
                "",
                "",
                &pick(&cancelled_at),
                &pick("Stripe"),
                &pick(payment.unwrap_or_default()),
                &pick(&refunded),
                "Handoff Goods",
                &pick("0.00"),
                "",
                "",
                "",
                &pick(&id),
                "",
                &pick("Low"),
                &pick("web"),
                "0.00",
                &pick("VAT"),
                &pick(&cents(o.tax)),
                "",
                "",
                "",
                "",
                "",
                &pick(payment.unwrap_or_default()),
                "",
                "",
                &pick(payment.unwrap_or_default()),
            ])?;
        }
        Ok(())
    }

    fn amazon(
        &mut self,
        o: &Order,
        shipped: Option<Timestamp>,
        closed: Option<Timestamp>,
        w: &mut Writers,
    ) -> io::Result<()> {
        let purchased = Dates::amazon(o.placed);
        let (status, updated) = match (shipped, closed) {
            (_, Some(c)) => ("Cancelled", c),
            (Some(s), None) => ("Shipped", s),
            (None, None) => ("Unshipped", o.placed + SignedDuration::from_mins(5)),
        };
        let updated = Dates::amazon(updated);
        let item_status = if closed.is_some() { "Cancelled" } else { status };
        for (i, line) in o.lines.iter().enumerate() {
            let price = line.price * line.quantity;
            let shipping = if i == 0 { o.shipping } else { 0 };
            w.amazon.row(&[
                &o.reference,
                &o.reference,
                &purchased,
                &updated,
                status,
                "Merchant",
                "Amazon.com",
                "",
                "",
                "Standard",
                PRODUCTS[line.sku % PRODUCTS.len()],
                &format!("SKU-{:04}", line.sku),
                &format!("B0{:08}", line.sku * 7919),
                item_status,
                &line.quantity.to_string(),
                o.currency,
                &cents(price),
                &cents(price * 8 / 100),
                &cents(shipping),
                &cents(shipping * 8 / 100),
                "",
                "",
                &cents(if i == 0 { -o.promotion } else { 0 }),
                "0.00",
                o.city.0,
                "",
                o.city.1,
                "US",
                "",
                "false",
                "",
                "",
            ])?;
        }
        Ok(())
    }

    /// A NetSuite sales order in the merchant's saved search; its document number.
    fn erp(
        &mut self,
        o: &Order,
        created: Timestamp,
        (status, fulfilled): (&str, bool),
        by_reference: bool,
        mismatch: Option<Mismatch>,
        w: &mut Writers,
    ) -> io::Result<String> {
        self.so_seq += 1;
        self.internal_seq += 1;
        let id = format!("SO{}", self.so_seq);
        let (mut total, mut currency, mut lines) = (o.total, o.currency, o.lines.len());
        match mismatch {
            Some(Mismatch::Total) => total -= o.tax,
            Some(Mismatch::Currency) => currency = if currency == "EUR" { "USD" } else { "EUR" },
            Some(Mismatch::Lines) => lines += 1,
            None => {}
        }
        let email = match o.shopify {
            true => o.email.clone(),
            false => format!("{:x}@marketplace.amazon.com", self.rng.random_range(0..u64::MAX)),
        };
        w.netsuite.row(&[
            &self.internal_seq.to_string(),
            &id,
            &self.dates.netsuite_day(created),
            status,
            &format!("{} {}", o.name.0, o.name.1),
            &email,
            if by_reference { &o.reference } else { "" },
            if o.shopify { "Shopify order" } else { "Amazon order" },
            currency,
            &cents(total),
            if fulfilled { "Yes" } else { "No" },
            &lines.to_string(),
            "Handoff Goods Ltd",
        ])?;
        Ok(id)
    }

    fn fulfillment(&mut self, so: &str, at: Timestamp, w: &mut Writers) -> io::Result<()> {
        self.if_seq += 1;
        self.internal_seq += 1;
        w.fulfillments.row(&[
            &self.internal_seq.to_string(),
            &format!("IF{}", self.if_seq),
            &self.dates.netsuite_day(at),
            &self.dates.netsuite(at),
            &format!("Sales Order #{so}"),
            "Shipped",
            "",
        ])
    }
}
