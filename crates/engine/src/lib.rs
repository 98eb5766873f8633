//! The write path's engine: intake drains the inbox into per-order plans, the dispatcher
//! delivers commands with acknowledgment, read-back, retry and dead letters. It knows the model,
//! the contract and the `Store` and `Target` traits; the binary wires real implementations in.

pub mod actions;
pub mod clock;
pub mod clusters;
pub mod dispatcher;
pub mod fingerprint;
pub mod intake;
pub mod poll;
pub mod quarantine;
pub mod recent;
pub mod retention;
pub mod retry;
pub mod rules;
pub mod target;
pub mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handoff_contract::Contract;
use handoff_store::Store;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatcher::Dispatcher;
pub use fingerprint::{Content, fingerprint};
pub use intake::Intake;
pub use poll::{Cursor, Page, PollError, Poller};
pub use rules::RulesWatch;
pub use target::{Ack, BoxFuture, DeliveryError, Target};

/// The targets by system name.
pub type Targets = HashMap<String, Arc<dyn Target>>;

/// The one source of randomness of the engine (retry jitter), seeded so a run can be replayed.
#[derive(Clone)]
pub struct Rng(Arc<Mutex<ChaCha8Rng>>);

impl Rng {
    pub fn seeded(seed: u64) -> Self {
        Rng(Arc::new(Mutex::new(ChaCha8Rng::seed_from_u64(seed))))
    }

    pub fn from_entropy() -> Self {
        Rng(Arc::new(Mutex::new(ChaCha8Rng::from_os_rng())))
    }

    /// A uniform integer in `0..=max`.
    pub fn up_to(&self, max: u64) -> u64 {
        use rand::Rng as _;
        self.0.lock().expect("rng lock").random_range(0..=max)
    }
}

/// The write path's protections, all on in every real run. The simulation switches one off
/// at a time to prove that its history checker catches what that protection prevents (its
/// negative controls); nothing else should ever turn them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    /// Read the target back before resending after an ambiguous outcome.
    pub read_back: bool,
    /// Treat a redelivered event, or a second create of one order, as what it is.
    pub dedup: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Safety { read_back: true, dedup: true }
    }
}

/// Everything the engine's parts share.
pub struct Engine<S: Store> {
    pub contract: Arc<Contract>,
    pub store: S,
    pub targets: Targets,
    pub clock: Arc<dyn Clock>,
    pub rng: Rng,
    /// The events the hub's webhooks parsed, which intake and the rules read before the store.
    pub recent: Arc<recent::Recent>,
}

impl<S: Store + Clone> Engine<S> {
    pub fn intake(&self) -> Intake<S> {
        Intake::new(self.contract.clone(), self.store.clone(), self.clock.clone()).with_recent(self.recent.clone())
    }

    pub fn rules(&self) -> RulesWatch<S> {
        RulesWatch::new(self.contract.clone(), self.store.clone(), self.clock.clone())
            .with_targets(self.targets.clone())
            .with_recent(self.recent.clone())
    }

    pub fn dispatcher(&self) -> Dispatcher<S> {
        Dispatcher::new(
            self.contract.clone(),
            self.store.clone(),
            self.targets.clone(),
            self.clock.clone(),
            self.rng.clone(),
        )
    }
}
