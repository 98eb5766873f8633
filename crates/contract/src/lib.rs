//! The contract, `handoff.toml`: the systems, the flows between them and, for each flow, its
//! proof of receipt, deadline, retry policy and dead-letter rule. Parsed and validated once at
//! start-up; a bad contract is refused with the file, the key and what is wrong.

pub mod check;
pub mod data_dir;
pub mod docs;
mod ingress;
pub mod limits;
mod ownership;
mod retention;
pub mod schedule;
mod secret;
mod validate;
pub mod words;

pub use ingress::{HttpLimits, JsonLimits};
pub use ownership::{Owner, Ownership, Stage};
pub use retention::{Cutoffs, MIN_DEDUP_DAYS, Retention};
pub use secrecy::{ExposeSecret, SecretString};
pub use secret::Credentials;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use handoff_model::{CommandKind, EventKind};
use jiff::SignedDuration;
use serde::Deserialize;

/// Largest contract file read; a real one is a few kilobytes.
const MAX_CONTRACT_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    #[serde(default)]
    pub hub: Hub,
    pub systems: BTreeMap<String, System>,
    #[serde(default)]
    pub flows: BTreeMap<String, Flow>,
    /// Which system owns the order record at each stage (see [`Owner`]).
    #[serde(default)]
    pub ownership: Ownership,
    /// What the hub may do by itself about each failure pattern (see [`AutoResolve`]).
    #[serde(default)]
    pub auto_resolve: AutoResolve,
    /// How long stored data is kept (see [`Retention`]).
    #[serde(default)]
    pub retention: Retention,
    /// `handoff reconcile`'s columns per input (`[reconcile.erp]` ...), read by that command.
    #[serde(default)]
    pub reconcile: BTreeMap<String, toml::Table>,
}

/// Auto-resolve policies: for each pattern, the action the hub takes by itself when the rule
/// fires; absent means a person decides. Money never moves by itself: an orphaned payment's
/// refund always waits for a person's approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoResolve {
    #[serde(default)]
    pub missing_order: Option<AutoAction>,
    #[serde(default)]
    pub status_void: Option<AutoAction>,
    #[serde(default)]
    pub rollback_gap: Option<AutoAction>,
    #[serde(default)]
    pub duplicate_draft: Option<AutoAction>,
    #[serde(default)]
    pub orphaned_payment: Option<AutoAction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoAction {
    /// Create the missing ERP order from the channel's event.
    CreateErpOrder,
    /// Send the ERP's fulfillment to the channel again.
    SendFulfillment,
    /// Send the channel's cancellation to the ERP again.
    SendCancellation,
    /// Cancel the duplicate ERP drafts, keeping the first.
    CancelDuplicates,
    /// Refund the payment: refused by validation, listed so the refusal can say why.
    Refund,
}

impl AutoAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoAction::CreateErpOrder => "create-erp-order",
            AutoAction::SendFulfillment => "send-fulfillment",
            AutoAction::SendCancellation => "send-cancellation",
            AutoAction::CancelDuplicates => "cancel-duplicates",
            AutoAction::Refund => "refund",
        }
    }
}

impl AutoResolve {
    /// The policy for a pattern, if the contract sets one.
    pub fn for_pattern(&self, pattern: handoff_model::Pattern) -> Option<AutoAction> {
        use handoff_model::Pattern::*;
        match pattern {
            MissingOrder => self.missing_order,
            StatusVoid => self.status_void,
            RollbackGap => self.rollback_gap,
            DuplicateDraft => self.duplicate_draft,
            OrphanedPayment => self.orphaned_payment,
            TransformMismatch | DeadDelivery => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hub {
    /// Address `handoff serve` listens on.
    pub listen: String,
    /// Largest webhook body accepted; larger ones get 413 and store nothing.
    pub max_event_bytes: usize,
    /// Commands in flight at once across all targets.
    pub max_in_flight: usize,
    /// A mappings directory (`<target>/<resource>/v<N>.jq`, relative to the contract file) used
    /// instead of the mappings shipped with Handoff.
    pub mappings: Option<PathBuf>,
    /// Where the embedded store lives (relative to the contract file), unless `--data-dir` or
    /// `HANDOFF_DATA_DIR` says otherwise; `handoff-data` when no one says.
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://...`) several hub processes share, instead of the
    /// embedded store in `data_dir`; see [`data_dir::resolve_store`].
    pub store: Option<String>,
    /// Connections, time-outs, header sizes, rates and memory of the HTTP face.
    pub limits: HttpLimits,
    /// Depth, string, array and object sizes of a webhook's JSON.
    pub json: JsonLimits,
    /// A separate address for the console, `/api/v1` and `/metrics`; when set, `listen` serves
    /// only webhooks, `/health` and `/ready` (the address the internet reaches).
    pub admin_listen: Option<String>,
    /// Whether the console's cookies carry `Secure` (sent by browsers only over TLS, i.e. a
    /// proxy terminating TLS in front of the hub). Unset: yes, unless the console listens on a
    /// loopback address.
    pub secure_cookies: Option<bool>,
}

impl Hub {
    /// Where the console and the API listen: `admin_listen`, else `listen`.
    pub fn console_listen(&self) -> &str {
        self.admin_listen.as_deref().unwrap_or(&self.listen)
    }

    /// Whether the console's cookies carry `Secure` (see [`Hub::secure_cookies`]).
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| !is_loopback(self.console_listen()))
    }
}

/// Whether `host:port` names a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
fn is_loopback(addr: &str) -> bool {
    if let Ok(a) = addr.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    addr.rsplit_once(':').is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost"))
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            listen: "127.0.0.1:8080".into(),
            max_event_bytes: 256 * 1024,
            max_in_flight: 256,
            mappings: None,
            data_dir: None,
            store: None,
            limits: HttpLimits::default(),
            json: JsonLimits::default(),
            admin_listen: None,
            secure_cookies: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Storefront,
    Marketplace,
    Channel,
    Payment,
    Erp,
    Wms,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storefront => "storefront",
            Role::Marketplace => "marketplace",
            Role::Channel => "channel",
            Role::Payment => "payment",
            Role::Erp => "erp",
            Role::Wms => "wms",
        }
    }

    /// Whether orders are created here: an order's channel is the system that created it.
    pub fn is_channel(self) -> bool {
        matches!(self, Role::Storefront | Role::Marketplace | Role::Channel)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectorKind {
    HttpJson,
    Shopify,
    Woocommerce,
    Stripe,
    Amazon,
    Ebay,
    Netsuite,
    Odoo,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::HttpJson => "http-json",
            ConnectorKind::Shopify => "shopify",
            ConnectorKind::Woocommerce => "woocommerce",
            ConnectorKind::Stripe => "stripe",
            ConnectorKind::Amazon => "amazon",
            ConnectorKind::Ebay => "ebay",
            ConnectorKind::Netsuite => "netsuite",
            ConnectorKind::Odoo => "odoo",
        }
    }

    /// The commands a system of this kind takes: ERPs take orders; storefronts and
    /// marketplaces take the signals that travel back (fulfillments, cancels, refunds).
    pub fn accepts(self, kind: CommandKind) -> bool {
        use CommandKind::*;
        match self {
            ConnectorKind::HttpJson => true,
            ConnectorKind::Netsuite | ConnectorKind::Odoo => matches!(kind, CreateOrder | UpdateOrder | CancelOrder),
            ConnectorKind::Shopify => matches!(kind, CreateFulfillment | CancelOrder | CreateRefund),
            ConnectorKind::Amazon | ConnectorKind::Ebay => matches!(kind, CreateFulfillment),
            ConnectorKind::Woocommerce | ConnectorKind::Stripe => false,
        }
    }

    /// Whether the system's webhooks are signed with a shared secret the contract must give.
    /// (Amazon notifications arrive through a queue; eBay signs with its own public keys;
    /// NetSuite and Odoo are polled.)
    pub fn requires_secret(self) -> bool {
        matches!(self, ConnectorKind::Shopify | ConnectorKind::Woocommerce | ConnectorKind::Stripe)
    }

    /// Whether the connector's target deduplicates a resend whatever the contract says: `None`
    /// when the contract says (`http-json`, Handoff's own protocol in front of a merchant's
    /// system); NetSuite upserts by external id; the others send no key a target deduplicates
    /// on, and read back by external reference before every send. Each connector's
    /// `Target::honours_idempotency_keys` answers the same (a test holds them together).
    pub fn idempotency_keys(self) -> Option<bool> {
        match self {
            ConnectorKind::HttpJson => None,
            ConnectorKind::Netsuite => Some(true),
            ConnectorKind::Shopify
            | ConnectorKind::Woocommerce
            | ConnectorKind::Stripe
            | ConnectorKind::Amazon
            | ConnectorKind::Ebay
            | ConnectorKind::Odoo => Some(false),
        }
    }

    /// Whether the system tells Handoff of its changes by webhook. Those that do not (Amazon's
    /// notifications need a queue; NetSuite and Odoo have none) are heard only by polling.
    pub fn sends_webhooks(self) -> bool {
        !matches!(self, ConnectorKind::Amazon | ConnectorKind::Netsuite | ConnectorKind::Odoo)
    }
}

/// How a system is polled for changes its webhooks may have missed (or that it never sends).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollSettings {
    /// Time between two polls once caught up.
    pub every: SignedDuration,
    /// How far before the last seen change each poll starts again: clocks differ and writes
    /// commit late, and a change seen twice is deduplicated anyway.
    pub lookback: SignedDuration,
    /// Records asked for per page.
    pub page_size: u32,
    /// Where the first poll starts, counted back from start-up.
    pub initial: SignedDuration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            every: SignedDuration::from_secs(60),
            lookback: SignedDuration::from_secs(300),
            page_size: 100,
            initial: SignedDuration::from_hours(24),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct System {
    pub role: Role,
    pub connector: ConnectorKind,
    /// Where commands to this system are sent; required when the system is a flow's target.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Client timeout of one request to this system; past it the outcome is ambiguous.
    #[serde(default = "default_timeout")]
    pub timeout: SignedDuration,
    /// Whether the system honours `Idempotency-Key` (only an `http-json` system's answer is
    /// the contract's to give; see [`ConnectorKind::idempotency_keys`]). Without it, every
    /// create is preceded by a read-back by external reference. Read it through
    /// [`System::honours_idempotency_keys`].
    #[serde(default)]
    pub idempotency_keys: Option<bool>,
    /// How long a request that got no answer may still land (for Odoo, its `limit_time_real`).
    /// After an ambiguous outcome the record is read back only once this has passed, so a
    /// late write is never mistaken for a missing one.
    #[serde(default = "default_settle")]
    pub settle: SignedDuration,
    /// Requests to this system in flight at once; the connector's default when unset (see
    /// `limits`). Commands to other systems never wait for these.
    #[serde(default)]
    pub max_in_flight: Option<usize>,
    /// Requests per second to this system, at most; the connector's default when unset.
    #[serde(default)]
    pub rate: Option<u32>,
    /// Secrets its webhooks are signed with (more than one while rotating). An entry
    /// `env:NAME` is read from the environment at start-up, `file:PATH` from a file only its
    /// owner may read, so secrets stay out of the contract.
    /// For an `http-json` source, a non-empty list makes `Handoff-Signature` mandatory.
    #[serde(default)]
    pub webhook_secrets: Vec<SecretString>,
    /// How old a signed delivery may be; an older one is a replay and is refused.
    #[serde(default = "default_signature_tolerance")]
    pub signature_tolerance: SignedDuration,
    /// The vendor API's credentials and account settings, by the names its connector page
    /// gives (e.g. NetSuite `account`, `consumer_key`, ...). An `env:NAME` value is read from
    /// the environment at start-up, a `file:PATH` value from a file only its owner may read.
    #[serde(default)]
    pub credentials: Credentials,
    /// Private, loopback and link-local networks this system's URLs may reach (`base_url`,
    /// the vendor's token and key URLs, redirects). Any other such address is refused, so a
    /// name that resolves inside the network cannot turn Handoff against it. An IP address
    /// written in `base_url` is allowed by being written there.
    #[serde(default)]
    pub outbound_allow: Vec<ipnet::IpNet>,
    /// The vendor API version to call (e.g. Shopify `2026-07`); each connector has a default.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Poll the system's API for changes (needs `base_url`).
    #[serde(default)]
    pub poll: Option<PollSettings>,
    /// For an ERP that maps orders (NetSuite, Odoo): where an order's tax goes. `erp` (the
    /// default): the ERP computes tax from its own set-up and is sent every amount net of tax;
    /// `line`: the channel's tax is sent as a line of its own item, and the ERP computes none.
    #[serde(default)]
    pub tax: TaxMode,
    /// For an ERP that maps orders: the items (NetSuite external ids, Odoo internal references)
    /// that carry the money of an order that is not a product line: `shipping` (Odoo),
    /// `discount`, `tip`, `duties`, `fees`, `tax`. Each defaults to `HANDOFF-<NAME>`.
    #[serde(default)]
    pub charge_items: BTreeMap<String, String>,
}

/// Where an order's tax goes in an ERP (`System::tax`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaxMode {
    #[default]
    Erp,
    Line,
}

impl TaxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxMode::Erp => "erp",
            TaxMode::Line => "line",
        }
    }
}

impl System {
    /// Whether a resend to this system is deduplicated by its `Idempotency-Key`: the
    /// connector's own answer, else the contract's, else yes.
    pub fn honours_idempotency_keys(&self) -> bool {
        self.connector.idempotency_keys().or(self.idempotency_keys).unwrap_or(true)
    }

    /// A credential by name, or why it is missing (as the contract key to fix).
    pub fn credential(&self, system: &str, name: &str) -> Result<&str, (String, String)> {
        self.credentials.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
            (
                format!("systems.{system}.credentials.{name}"),
                format!("the {} connector needs it", self.connector.as_str()),
            )
        })
    }
}

fn default_signature_tolerance() -> SignedDuration {
    SignedDuration::from_secs(300)
}

fn default_settle() -> SignedDuration {
    SignedDuration::from_secs(60)
}

fn default_timeout() -> SignedDuration {
    SignedDuration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    pub from: String,
    pub to: String,
    pub events: Vec<EventKind>,
    pub proof: Proof,
    /// Time within which the target must acknowledge; past it the detection rules fire.
    pub deadline: SignedDuration,
    pub retry: RetryPolicy,
    #[serde(default)]
    pub dead_letter: DeadLetterRule,
    /// Observe only: the flow's events are recorded and judged by the rules, and nothing is
    /// sent, so Handoff can measure an existing integration before it replaces it.
    #[serde(default)]
    pub shadow: bool,
    /// When the target's order is created: on the channel's order (`created`, the default), or
    /// only once the channel shows it paid (`paid`): an order still pending, authorised,
    /// partially paid or voided waits, audited, and the first event of it that shows it paid
    /// (an `order.updated`, or Shopify's `orders/paid`, which carries the whole order) creates it.
    #[serde(default)]
    pub create_on: CreateOn,
}

/// When a flow creates the target's order (`Flow::create_on`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreateOn {
    #[default]
    Created,
    Paid,
}

/// What counts as the target's acknowledgment of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    /// A 2xx that carries the target's record id.
    RecordId,
    /// A 2xx, confirmed by reading the record back by external reference.
    ReadBack,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::RecordId => "record-id",
            Proof::ReadBack => "read-back",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Sends at most, first one included.
    pub attempts: u32,
    pub backoff_base: SignedDuration,
    pub backoff_cap: SignedDuration,
    #[serde(default)]
    pub jitter: Jitter,
    /// No retry is scheduled later than this after the command was created.
    pub deadline: SignedDuration,
}

impl RetryPolicy {
    /// The wait before each retry when jitter draws its longest (jitter only ever shortens it),
    /// as the dispatcher computes it: `backoff_base` doubling after each send, up to `backoff_cap`.
    pub fn longest_waits(&self) -> Vec<SignedDuration> {
        (1..self.attempts).map(|spent| self.backoff(spent)).collect()
    }

    /// How many sends fit before the retry deadline when every wait is at its longest. Fewer
    /// than `attempts` means the deadline, not the count, ends the budget.
    pub fn attempts_within_deadline(&self) -> u32 {
        let mut elapsed = SignedDuration::ZERO;
        let mut sent = 1;
        for wait in self.longest_waits() {
            elapsed = elapsed.saturating_add(wait);
            if elapsed > self.deadline {
                break;
            }
            sent += 1;
        }
        sent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Jitter {
    /// A uniform delay in [0, backoff].
    #[default]
    Full,
    /// Half the backoff plus a uniform delay in [0, backoff / 2].
    Equal,
    None,
}

impl Jitter {
    pub fn as_str(self) -> &'static str {
        match self {
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::None => "none",
        }
    }
}

/// When a command goes to the dead letters; either way a Dead Delivery exception is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadLetterRule {
    /// A permanent error (a 4xx data error) dead-letters at once; transient ones use the budget.
    #[default]
    PermanentAtOnce,
    /// Every error uses the retry budget first (for targets that answer 4xx to transient
    /// conditions such as record locks).
    AfterBudget,
}

impl DeadLetterRule {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterRule::PermanentAtOnce => "permanent-at-once",
            DeadLetterRule::AfterBudget => "after-budget",
        }
    }
}

/// The command a flow sends for an event kind, or `None` when the kind only updates the ledger.
pub fn command_for(kind: EventKind) -> Option<CommandKind> {
    match kind {
        EventKind::OrderCreated => Some(CommandKind::CreateOrder),
        EventKind::OrderUpdated => Some(CommandKind::UpdateOrder),
        EventKind::OrderCancelled => Some(CommandKind::CancelOrder),
        EventKind::FulfillmentCreated => Some(CommandKind::CreateFulfillment),
        EventKind::RefundCreated => Some(CommandKind::CreateRefund),
        EventKind::OrderPaid => None,
    }
}

/// A contract refused: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ContractError {}

impl Contract {
    pub fn load(path: &Path) -> Result<Contract, ContractError> {
        let refuse = |message: String| ContractError { file: path.to_owned(), key: String::new(), message };
        let size = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read: {e}")))?.len();
        if size > MAX_CONTRACT_BYTES {
            return Err(refuse(format!("is {size} bytes; a contract may be at most {MAX_CONTRACT_BYTES}")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read: {e}")))?;
        Contract::parse(&text, path)
    }

    /// Parses and validates a contract's text; `file` only names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Contract, ContractError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| ContractError {
            file: file.to_owned(),
            key: String::new(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut contract: Contract = serde_path_to_error::deserialize(de).map_err(|e| ContractError {
            file: file.to_owned(),
            key: e.path().to_string().trim_start_matches('.').to_owned(),
            message: e.inner().to_string().trim_end().to_owned(),
        })?;
        contract.validate().map_err(|(key, message)| ContractError { file: file.to_owned(), key, message })?;
        let dir = file.parent().unwrap_or(Path::new("."));
        contract.resolve_secrets(dir).map_err(|(key, message)| ContractError {
            file: file.to_owned(),
            key,
            message,
        })?;
        Ok(contract)
    }

    /// The mappings directory the contract names (`hub.mappings`), resolved against the
    /// directory of the contract file `config`; `None`: the mappings shipped with Handoff.
    pub fn mappings_dir(&self, config: &Path) -> Option<PathBuf> {
        let dir = self.hub.mappings.as_ref()?;
        Some(config.parent().unwrap_or(Path::new(".")).join(dir))
    }

    /// The data directory the contract names (`hub.data_dir`), resolved against the directory
    /// of the contract file `config`. See [`data_dir`] for its place among flag and environment.
    pub fn data_dir(&self, config: &Path) -> Option<PathBuf> {
        let dir = self.hub.data_dir.as_ref()?;
        Some(config.parent().unwrap_or(Path::new(".")).join(dir))
    }

    /// How long a request to `system` may still land after it got no answer (its `settle`);
    /// zero for a system no longer in the contract (its commands are dead-lettered unsent).
    pub fn settle_of(&self, system: &str) -> SignedDuration {
        self.systems.get(system).map_or(SignedDuration::ZERO, |s| s.settle)
    }

    /// The flows that carry an event of `kind` coming from system `from`.
    pub fn flows_for<'a>(&'a self, from: &'a str, kind: EventKind) -> impl Iterator<Item = (&'a str, &'a Flow)> + 'a {
        self.flows
            .iter()
            .filter(move |(_, f)| f.from == from && f.events.contains(&kind))
            .map(|(name, f)| (name.as_str(), f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap()
    }

    fn refused(text: &str) -> ContractError {
        Contract::parse(text, Path::new("handoff.toml")).unwrap_err()
    }

    #[test]
    fn the_example_contract_is_valid() {
        let c = Contract::parse(&example(), Path::new("examples/handoff.toml")).unwrap();
        assert_eq!(c.flows.len(), 2);
        let flow = &c.flows["orders-to-erp"];
        assert_eq!(flow.retry.backoff_base, SignedDuration::from_millis(500));
        assert_eq!(flow.deadline, SignedDuration::from_mins(15));
        assert_eq!(c.flows_for("shop", EventKind::OrderCancelled).count(), 1);
        assert_eq!(c.flows_for("erp", EventKind::OrderCancelled).count(), 0);
    }

    #[test]
    fn console_cookies_are_secure_unless_the_console_listens_on_loopback() {
        let shop = "[systems.shop]\nrole = \"storefront\"\nconnector = \"http-json\"\n";
        let hub = |text: &str| Contract::parse(&format!("{text}{shop}"), Path::new("handoff.toml")).unwrap().hub;
        assert!(!hub("").cookies_secure(), "the default listen is 127.0.0.1");
        assert!(hub("[hub]\nlisten = \"0.0.0.0:8080\"\n").cookies_secure());
        assert!(!hub("[hub]\nlisten = \"localhost:8080\"\n").cookies_secure());
        assert!(!hub("[hub]\nlisten = \"[::1]:8080\"\n").cookies_secure());
        let split = hub("[hub]\nlisten = \"0.0.0.0:8080\"\nadmin_listen = \"127.0.0.1:9090\"\n");
        assert_eq!(split.console_listen(), "127.0.0.1:9090");
        assert!(!split.cookies_secure(), "the console is on loopback");
        assert!(hub("[hub]\nsecure_cookies = true\n").cookies_secure(), "said is said");
        let same = refused(&format!("[hub]\nlisten = \"0.0.0.0:8080\"\nadmin_listen = \"0.0.0.0:8080\"\n{shop}"));
        assert!(same.to_string().contains("hub.admin_listen"), "{same}");
    }

    #[test]
    fn the_vendor_example_is_valid_and_a_target_takes_only_its_commands() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/vendors.toml")).unwrap();
        let c = Contract::parse(&text, Path::new("examples/vendors.toml")).unwrap();
        assert_eq!(c.systems["netsuite"].poll.as_ref().map(|p| p.page_size), Some(100));
        assert_eq!(c.flows_for("netsuite", EventKind::FulfillmentCreated).count(), 2);
        let orders_to_amazon = text.replace(
            "[flows.netsuite-to-amazon]\nfrom = \"netsuite\"\nto = \"amazon\"\nevents = [\"fulfillment.created\"]",
            "[flows.netsuite-to-amazon]\nfrom = \"netsuite\"\nto = \"amazon\"\nevents = [\"order.created\"]",
        );
        let e = Contract::parse(&orders_to_amazon, Path::new("vendors.toml")).unwrap_err();
        assert_eq!(e.key, "flows.netsuite-to-amazon.events");
        assert_eq!(e.message, "amazon (amazon) does not take create_order");
    }

    #[test]
    fn a_poll_needs_a_base_url_and_a_sane_page() {
        let text = example().replace("timeout = \"5s\"\n", "timeout = \"5s\"\npoll = { page_size = 1000 }\n");
        assert_eq!(refused(&text).key, "systems.erp.poll.page_size");
    }

    #[test]
    fn an_unknown_system_is_named() {
        let e = refused(&example().replace("to = \"erp\"", "to = \"erpp\""));
        assert_eq!(e.key, "flows.orders-to-erp.to");
        assert!(e.message.contains("erpp") && e.message.contains("known: erp, shop"), "{e}");
        assert!(e.to_string().starts_with("handoff.toml: key `flows.orders-to-erp.to`"), "{e}");
    }

    #[test]
    fn a_typo_in_a_key_is_named() {
        let e = refused(&example().replace("backoff_cap = \"5m\"", "backof_cap = \"5m\""));
        assert_eq!(e.key, "flows.orders-to-erp.retry.backof_cap");
        assert!(e.message.contains("backof_cap"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = refused(&example().replace("deadline = \"15m\"", "deadline = \"soon\""));
        assert_eq!(e.key, "flows.orders-to-erp.deadline");
        let e = refused(&example().replace("backoff_base = \"500ms\"", "backoff_base = \"10m\""));
        assert_eq!(e.key, "flows.orders-to-erp.retry.backoff_cap");
        let e = refused(&example().replace("events = [\"fulfillment.created\"]", "events = [\"order.paid\"]"));
        assert_eq!(e.key, "flows.fulfillments-to-shop.events");
        let e = refused(&example().replace("base_url = \"http://127.0.0.1:9001\"", ""));
        assert_eq!(e.key, "systems.erp.base_url");
    }

    #[test]
    fn broken_toml_says_where() {
        let e = refused("[systems.shop\nrole = 1");
        assert!(e.message.contains("line 1"), "{e}");
    }
}
