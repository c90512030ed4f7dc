//! `haitao-sim`: runs seeds of the deterministic simulation on every core and reports seeds/s.
//!
//! ```text
//! haitao-sim                     seeds 1..=1000
//! haitao-sim --seeds 100000      seeds 1..=100000
//! haitao-sim --from 5000 --seeds 200
//! haitao-sim --minutes 30        as many seeds as 30 minutes allow
//! haitao-sim --seed 4242         one seed, with its steps printed
//! haitao-sim --steps 120 --no-faults --threads 1
//! haitao-sim --postgres postgres://haitao@127.0.0.1:5432/postgres --seeds 100
//! ```
//! `--postgres` runs the shop on PostgreSQL, a fresh database per seed on that server.
//! The first failing seed stops the run and prints itself; the exit status is 1.

#![allow(clippy::print_stdout, reason = "a command-line tool: its report goes to stdout")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use haitao_sim::{Options, Summary, run_seed};

struct Args {
    from: u64,
    seeds: u64,
    minutes: Option<u64>,
    one: Option<u64>,
    threads: usize,
    options: Options,
}

fn usage() -> ! {
    eprintln!(
        "usage: haitao-sim [--seed N | --from N --seeds COUNT | --minutes M] [--steps K] [--no-faults] [--threads T] [--postgres URL]"
    );
    std::process::exit(2)
}

fn parse() -> Args {
    let mut a = Args {
        from: 1,
        seeds: 1000,
        minutes: None,
        one: None,
        threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        options: Options::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| usage());
        match flag.as_str() {
            "--seed" => a.one = Some(num()),
            "--from" => a.from = num(),
            "--seeds" => a.seeds = num(),
            "--minutes" => a.minutes = Some(num()),
            "--steps" => a.options.steps = usize::try_from(num()).unwrap_or_else(|_| usage()),
            "--threads" => a.threads = usize::try_from(num()).unwrap_or_else(|_| usage()).max(1),
            "--no-faults" => a.options.faults = false,
            // Kept for the whole run, as every seed's database is made on that server.
            "--postgres" => a.options.database = Some(it.next().unwrap_or_else(|| usage()).leak()),
            _ => usage(),
        }
    }
    a
}

fn main() {
    let args = parse();
    if let Some(seed) = args.one {
        match run_seed(seed, Options { verbose: true, ..args.options }) {
            Ok(s) => {
                println!("seed {seed}: every invariant held over {} steps", s.steps);
                print_counts(&s);
            }
            Err(f) => {
                eprintln!("{f}");
                std::process::exit(1);
            }
        }
        return;
    }
    let started = Instant::now();
    let deadline = args.minutes.map(|m| started + Duration::from_secs(m * 60));
    let last = if deadline.is_some() { u64::MAX } else { args.from + args.seeds };
    let next = Arc::new(AtomicU64::new(args.from));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(parking_lot_free::Totals::default());
    let workers: Vec<_> = (0..args.threads)
        .map(|_| {
            let (next, done, stop, total) = (next.clone(), done.clone(), stop.clone(), total.clone());
            let options = args.options;
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) && deadline.is_none_or(|d| Instant::now() < d) {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= last {
                        break;
                    }
                    match run_seed(seed, options) {
                        Ok(s) => {
                            total.add(&s);
                            let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                            if n % 500 == 0 {
                                eprintln!(
                                    "{n} seeds in {} s ({} seeds/s)",
                                    started.elapsed().as_secs(),
                                    rate(n, started.elapsed())
                                );
                            }
                        }
                        Err(f) => {
                            if !stop.swap(true, Ordering::SeqCst) {
                                eprintln!("{f}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    let n = done.load(Ordering::SeqCst);
    println!(
        "{n} seeds passed from seed {} in {} s: {} seeds/s on {} threads ({} steps each, faults {})",
        args.from,
        elapsed.as_secs(),
        rate(n, elapsed),
        args.threads,
        args.options.steps,
        if args.options.faults { "on" } else { "off" }
    );
    print_counts(&total.get());
    if stop.load(Ordering::SeqCst) {
        std::process::exit(1);
    }
}

/// Seeds per second with two decimals, in integers.
fn rate(n: u64, elapsed: Duration) -> String {
    let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).max(1);
    let hundredths = n.saturating_mul(100_000) / ms;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn print_counts(s: &Summary) {
    for (k, v) in &s.counts {
        println!("  {v:>9}  {k}");
    }
}

mod parking_lot_free {
    use std::sync::Mutex;

    use haitao_sim::Summary;

    /// Totals over every passing seed.
    #[derive(Default)]
    pub struct Totals(Mutex<Summary>);

    impl Totals {
        pub fn add(&self, s: &Summary) {
            if let Ok(mut t) = self.0.lock() {
                t.merge(s);
            }
        }

        pub fn get(&self) -> Summary {
            self.0.lock().map(|t| t.clone()).unwrap_or_default()
        }
    }
}
