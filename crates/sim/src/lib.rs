//! # haitao-sim
//!
//! A deterministic simulation of the Haitao shop and the Alipay sandbox in one process, in the
//! spirit of FoundationDB's and TigerBeetle's simulators. One seed drives everything: buyers who
//! place orders, pay in any channel, pay twice, cancel, pay a stale cashier, ask for refunds and
//! correct the orderer; forced gateway outcomes (lost, duplicated, reordered, forged and
//! wrong-amount notifications, unknown results, dropped connections, declines); notifications
//! replayed and forged; both clocks moving, apart; and the shop's database refusing a write, or
//! the shop stopping at a write and starting again from its database.
//!
//! After every step the money invariants are checked ([`audit::always`]); at the end the faults
//! stop, the clocks run on until the jobs and the notification ladder are quiet, and the final
//! invariants are checked ([`audit::settled`]). A failure names its seed; `haitao-sim --seed N`
//! replays it.
//!
//! Determinism: the shop and the sandbox run on manual clocks and the shop on sequential ids;
//! each step runs to completion before the next, on one thread, and no background loop runs (the
//! simulation calls the shop's jobs and the sandbox's timers itself). The sandbox's own trade and
//! notification numbers stay random; nothing the simulation decides depends on them.

pub mod audit;
pub mod rng;
pub mod steps;
pub mod world;

use std::fmt;

pub use rng::Rng;
pub use world::World;

/// How a run is shaped.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Steps before the world is left to settle.
    pub steps: usize,
    /// Plan failed writes and stops of the shop.
    pub faults: bool,
    /// Print each step as it runs.
    pub verbose: bool,
    /// Run the shop on PostgreSQL: a fresh database per seed on the server this URL points at
    /// (a user allowed to create databases), instead of SQLite.
    pub database: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options { steps: 60, faults: true, verbose: false, database: None }
    }
}

/// What one run did, for the totals `haitao-sim` prints.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub steps: usize,
    pub counts: std::collections::BTreeMap<&'static str, u64>,
    /// The steps of a single run, as described (empty after `merge`).
    pub trace: Vec<String>,
}

impl Summary {
    pub fn bump(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Summary) {
        self.steps += other.steps;
        for (k, v) in &other.counts {
            *self.counts.entry(k).or_default() += v;
        }
    }
}

/// A broken invariant (or a world that could not be built), with the steps that led there.
#[derive(Debug, Clone)]
pub struct Failure {
    pub seed: u64,
    pub step: usize,
    pub message: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {} failed at step {}: {}", self.seed, self.step, self.message)?;
        writeln!(
            f,
            "replay: cargo run -p haitao-sim -- --seed {} (or make sim SIM_ARGS='--seed {}')",
            self.seed, self.seed
        )?;
        let skip = self.trace.len().saturating_sub(40);
        if skip > 0 {
            writeln!(f, "  … {skip} earlier steps")?;
        }
        for line in &self.trace[skip..] {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Runs one seed on a single-threaded runtime of its own.
pub fn run_seed(seed: u64, options: Options) -> Result<Summary, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failure {
        seed,
        step: 0,
        message: format!("runtime: {e}"),
        trace: Vec::new(),
    })?;
    rt.block_on(run(seed, options))
}

/// One simulated run.
pub async fn run(seed: u64, options: Options) -> Result<Summary, Failure> {
    let mut rng = Rng::new(seed);
    let mut trace = Vec::new();
    let fail = |step: usize, message: String, trace: &Vec<String>| Failure {
        seed,
        step,
        message,
        trace: trace.clone(),
    };
    let notify_on_close = rng.chance(50);
    let notify_on_refund = rng.chance(50);
    let mode = world::AppMode { cert: rng.chance(50), aes: rng.chance(50), v3: rng.chance(50) };
    trace.push(format!(
        "sandbox: notify_on_close={notify_on_close} notify_on_refund={notify_on_refund}; app: certificate mode={} AES={} v3={}",
        mode.cert, mode.aes, mode.v3
    ));
    let mut w = World::new(notify_on_close, notify_on_refund, mode, options.database)
        .await
        .map_err(|e| fail(0, e, &trace))?;
    let setup = async {
        w.add_buyer("13900000001", world::PERSONAS[0].1, world::PERSONAS[0].2).await?;
        w.add_buyer("13900000002", world::PERSONAS[1].1, world::PERSONAS[1].2).await?;
        w.pick_products().await
    };
    setup.await.map_err(|e| fail(0, e, &trace))?;
    let mut summary = Summary::default();
    summary.bump(if mode.cert { "world: certificate mode" } else { "world: public-key mode" });
    if mode.aes {
        summary.bump("world: AES content encryption");
    }
    if mode.v3 {
        summary.bump("world: OpenAPI v3");
    }
    let mut outcome = Ok(());
    for step in 1..=options.steps {
        let line = steps::step(&mut w, &mut rng, options, &mut summary).await;
        if options.verbose {
            eprintln!("{step:>3} {line}");
        }
        trace.push(format!("{step:>3} {line}"));
        summary.steps += 1;
        if w.faults.crashed() {
            trace.push("    the shop stopped at a write; starting it again from its database".into());
            summary.bump("shop restarted after a stop");
            if let Err(e) = w.restart_shop().await {
                outcome = Err(fail(step, e, &trace));
                break;
            }
        }
        if let Err(e) = audit::always(&w).await {
            outcome = Err(fail(step, e, &trace));
            break;
        }
    }
    if outcome.is_ok() {
        w.faults.disarm();
        if w.faults.crashed() {
            let _ = w.restart_shop().await;
        }
        steps::settle(&mut w, &mut trace).await;
        outcome = match audit::always(&w).await {
            Ok(()) => audit::settled(&w).await,
            Err(e) => Err(e),
        }
        .map_err(|e| fail(options.steps + 1, format!("after settling: {e}"), &trace));
    }
    w.stop().await;
    outcome.map(|()| Summary { trace, ..summary })
}
