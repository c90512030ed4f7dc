//! The simulation as part of `make test`: a few hundred seeds (HAITAO_SIM_SEEDS to change how
//! many), spread over the cores. `make sim` runs many more. Beside a PostgreSQL server
//! (`scripts/with-postgres`, HAITAO_TEST_DATABASE) the shop runs on it, a database per seed.

use std::sync::atomic::{AtomicU64, Ordering};

use haitao_sim::{Options, run_seed};

#[test]
fn seeds_keep_every_invariant() {
    let count: u64 = std::env::var("HAITAO_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let next = AtomicU64::new(1);
    let options = Options { database: database(), ..Options::default() };
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, Ordering::SeqCst);
                        if seed > count || !failed.is_empty() {
                            break failed;
                        }
                        if let Err(f) = run_seed(seed, options) {
                            failed.push(f.to_string());
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|_| vec!["a worker panicked".into()]))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The PostgreSQL server the tests run beside, if any.
fn database() -> Option<&'static str> {
    std::env::var("HAITAO_TEST_DATABASE").ok().map(|url| &*url.leak())
}

/// The same seed takes the same steps and ends the same way.
#[test]
fn a_seed_replays() {
    let options = Options { database: database(), ..Options::default() };
    let a = run_seed(3, options);
    let b = run_seed(3, options);
    match (a, b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.trace, b.trace);
            assert!(a.trace.len() > 60, "every step is described");
        }
        (Err(a), Err(b)) => assert_eq!(a.trace, b.trace),
        (a, b) => panic!("one run passed and the other failed: {a:?} / {b:?}"),
    }
}
