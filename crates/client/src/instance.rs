//! One Haitao per data folder. The first launch holds an exclusive lock on `instance.lock` in the
//! data folder for as long as it runs (the OS drops it when the process ends, however it ends, so
//! a lock is never stale) and listens on a loopback port named, with a per-launch secret, in
//! `instance.json` (0600). A second launch on the same folder cannot take the lock: it asks the
//! first, through that port, to bring its window forward (passing its command line, for links
//! that open the app) and exits without starting a second embedded shop and sandbox on the same
//! databases. Launches on different folders (`HAITAO_DATA_DIR`, another user) are independent.
//!
//! Why not `tauri-plugin-single-instance`: it keys on the app identifier within one D-Bus session
//! on Linux, so it guards nothing without a session bus and it would refuse a second launch on a
//! different data folder, while what must never be shared is the folder.

use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use haitao_alipay::ids::IdGen;
use serde::{Deserialize, Serialize};

/// The lock file, held by the running launch.
pub const LOCK_FILE: &str = "instance.lock";
/// Where the running launch says how to reach it.
pub const ADDRESS_FILE: &str = "instance.json";
/// The longest message a second launch may send (its command line).
const MAX_MESSAGE: u64 = 8 * 1024;
/// How long one caller may take to say its piece.
const MESSAGE_TIME: Duration = Duration::from_secs(3);
/// How long a second launch keeps trying to reach the first (which may still be starting).
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("cannot use the data folder {path}: {source}")]
    Folder { path: PathBuf, source: io::Error },
    #[error(
        "Haitao is already running with the data folder {path} (process {pid}) but did not answer: {reason}"
    )]
    NoAnswer { path: PathBuf, pid: u32, reason: String },
}

/// How to reach the running launch (`instance.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Address {
    pid: u32,
    port: u16,
    secret: String,
}

/// What a second launch sends: the secret, then its command line.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    secret: String,
    args: Vec<String>,
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim {
    /// This launch is the only one on the folder: run, and [`Instance::serve`] the others.
    First(Instance),
    /// Another launch runs on the folder and was told (its process id): exit.
    Running { pid: u32 },
}

/// The running launch's hold on its data folder.
#[derive(Debug)]
pub struct Instance {
    _lock: File,
    listener: TcpListener,
    secret: String,
}

/// Claims `data_dir` for this launch, or hands `args` to the launch that holds it.
pub fn claim(data_dir: &Path, ids: &dyn IdGen, args: Vec<String>) -> Result<Claim, InstanceError> {
    claim_after(data_dir, ids, args, Duration::ZERO)
}

/// [`claim`], for the launch that replaces one on its way out (the restart after an update): a
/// holder that lets go of the folder within `leaving` is waited for, not handed the arguments.
pub fn claim_after(
    data_dir: &Path,
    ids: &dyn IdGen,
    args: Vec<String>,
    leaving: Duration,
) -> Result<Claim, InstanceError> {
    let folder = |source| InstanceError::Folder { path: data_dir.to_owned(), source };
    haitao_files::private_dir(data_dir).map_err(folder)?;
    let lock_path = data_dir.join(LOCK_FILE);
    haitao_files::private_file(&lock_path).map_err(folder)?;
    let lock = File::options().read(true).write(true).open(&lock_path).map_err(folder)?;
    let patience_ends = Instant::now() + leaving;
    let mut held = lock.try_lock();
    while matches!(held, Err(TryLockError::WouldBlock)) && Instant::now() < patience_ends {
        std::thread::sleep(Duration::from_millis(50));
        held = lock.try_lock();
    }
    match held {
        Ok(()) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(folder)?;
            let port = listener.local_addr().map_err(folder)?.port();
            let secret = ids.next_id("I");
            let address = Address { pid: std::process::id(), port, secret: secret.clone() };
            let json = serde_json::to_vec(&address).map_err(|e| folder(io::Error::other(e)))?;
            haitao_files::write_private(&data_dir.join(ADDRESS_FILE), &json).map_err(folder)?;
            Ok(Claim::First(Instance { _lock: lock, listener, secret }))
        }
        Err(TryLockError::WouldBlock) => {
            hand_over(data_dir, &args, PATIENCE).map(|pid| Claim::Running { pid })
        }
        Err(TryLockError::Error(e)) => Err(folder(e)),
    }
}

/// Tells the running launch, retrying while it may still be writing its address.
fn hand_over(data_dir: &Path, args: &[String], patience: Duration) -> Result<u32, InstanceError> {
    let deadline = Instant::now() + patience;
    let mut pid = 0;
    loop {
        let reason = match std::fs::read(data_dir.join(ADDRESS_FILE)) {
            Ok(bytes) => match serde_json::from_slice::<Address>(&bytes) {
                Ok(address) => {
                    pid = address.pid;
                    match tell(&address, args) {
                        Ok(()) => return Ok(address.pid),
                        Err(e) => e.to_string(),
                    }
                }
                Err(e) => format!("{ADDRESS_FILE} is not readable: {e}"),
            },
            Err(e) => format!("no {ADDRESS_FILE}: {e}"),
        };
        if Instant::now() >= deadline {
            return Err(InstanceError::NoAnswer { path: data_dir.to_owned(), pid, reason });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tell(address: &Address, args: &[String]) -> io::Result<()> {
    let to = SocketAddr::from((Ipv4Addr::LOCALHOST, address.port));
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let message = Message { secret: address.secret.clone(), args: args.to_vec() };
    let mut line = serde_json::to_vec(&message).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    match answer.trim_end() {
        "ok" => Ok(()),
        other => Err(io::Error::other(format!("answered {other:?}"))),
    }
}

impl Instance {
    /// Answers later launches for the rest of the process: each one's command line goes to
    /// `on_launch` (on this thread of its own), after its secret is checked. The lock is held until
    /// the process ends.
    pub fn serve(self, on_launch: impl Fn(Vec<String>) + Send + Sync + 'static) -> io::Result<()> {
        let on_launch = std::sync::Arc::new(on_launch);
        let Instance { _lock: lock, listener, secret } = self;
        std::thread::Builder::new().name("haitao-instance".into()).spawn(move || {
            // Held for as long as this thread runs: the rest of the process.
            let _held = lock;
            let secret = std::sync::Arc::new(secret);
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file handles, say: wait rather than spin.
                        tracing::warn!(error = %e, "the instance port cannot take a caller");
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                // Each caller on a thread of its own, so a slow one holds up no other.
                let (secret, on_launch) = (secret.clone(), on_launch.clone());
                let _ = std::thread::Builder::new().name("haitao-instance-caller".into()).spawn(move || {
                    match answer(stream, &secret) {
                        Ok(Some(args)) => on_launch(args),
                        Ok(None) => {
                            tracing::warn!("a connection to the instance port without its secret was refused")
                        }
                        Err(e) => tracing::warn!(error = %e, "a later launch could not be heard"),
                    }
                });
            }
        })?;
        Ok(())
    }
}

/// Reads one caller's message (within [`MESSAGE_TIME`] and [`MAX_MESSAGE`] in all) and answers.
fn answer(stream: TcpStream, secret: &str) -> io::Result<Option<Vec<String>>> {
    let deadline = Instant::now() + MESSAGE_TIME;
    let mut reply = stream.try_clone()?;
    let mut line = Vec::new();
    let mut reader = io::Read::take(&stream, MAX_MESSAGE);
    let mut chunk = [0u8; 1024];
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the caller took too long"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = io::Read::read(&mut reader, &mut chunk)?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&chunk[..n]);
    }
    let message =
        serde_json::from_slice::<Message>(line.split(|b| *b == b'\n').next().unwrap_or_default()).ok();
    match message {
        Some(m) if m.secret == secret => {
            reply.write_all(b"ok\n")?;
            Ok(Some(m.args))
        }
        _ => {
            reply.write_all(b"refused\n")?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haitao_alipay::ids::RandomIds;
    use std::sync::mpsc;

    #[test]
    fn a_second_claim_on_the_folder_hands_its_arguments_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let Claim::First(first) = claim(&data, &RandomIds, vec![]).unwrap() else {
            panic!("the first claim must hold the folder")
        };
        let (tx, rx) = mpsc::channel();
        first.serve(move |args| tx.send(args).unwrap()).unwrap();

        let args = vec!["haitao".to_owned(), "haitao://pay/return?x=1".to_owned()];
        match claim(&data, &RandomIds, args.clone()).unwrap() {
            Claim::Running { pid } => assert_eq!(pid, std::process::id()),
            Claim::First(_) => panic!("a second claim on a held folder must not run"),
        }
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), args);

        // Another folder is another Haitao.
        assert!(matches!(claim(&dir.path().join("other"), &RandomIds, vec![]).unwrap(), Claim::First(_)));
    }

    #[test]
    fn a_caller_that_says_nothing_holds_up_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path(), &RandomIds, vec![]).unwrap() else { panic!() };
        let (tx, rx) = mpsc::channel();
        first.serve(move |args| tx.send(args).unwrap()).unwrap();
        let address: Address =
            serde_json::from_slice(&std::fs::read(dir.path().join(ADDRESS_FILE)).unwrap()).unwrap();
        // Connected, silent, kept open.
        let _silent = TcpStream::connect((Ipv4Addr::LOCALHOST, address.port)).unwrap();
        let started = Instant::now();
        assert!(matches!(
            claim(dir.path(), &RandomIds, vec!["again".into()]).unwrap(),
            Claim::Running { .. }
        ));
        assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), vec!["again".to_owned()]);
        assert!(started.elapsed() < MESSAGE_TIME, "waited for the silent caller");
    }

    #[cfg(unix)]
    #[test]
    fn the_address_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let _first = claim(dir.path(), &RandomIds, vec![]).unwrap();
        for f in [ADDRESS_FILE, LOCK_FILE] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }

    /// The restart after an update: the new launch starts while the old one still holds the
    /// folder, and takes it over once the old one has gone, instead of handing itself over.
    #[test]
    fn a_launch_after_an_update_waits_for_the_one_leaving() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(old) = claim(dir.path(), &RandomIds, vec![]).unwrap() else { panic!() };
        let leaving = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(old);
        });
        let next = claim_after(dir.path(), &RandomIds, vec![], Duration::from_secs(10)).unwrap();
        assert!(matches!(next, Claim::First(_)), "{next:?}");
        leaving.join().unwrap();
        // A holder that stays is still told, once the patience is over.
        let Claim::First(stays) = next else { unreachable!() };
        let (tx, rx) = std::sync::mpsc::channel();
        stays.serve(move |args| tx.send(args).unwrap()).unwrap();
        let told = claim_after(dir.path(), &RandomIds, vec!["x".into()], Duration::from_millis(200)).unwrap();
        assert!(matches!(told, Claim::Running { .. }), "{told:?}");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), vec!["x".to_owned()]);
    }

    #[test]
    fn the_lock_is_released_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path(), &RandomIds, vec![]).unwrap();
        drop(first);
        assert!(matches!(claim(dir.path(), &RandomIds, vec![]).unwrap(), Claim::First(_)));
    }

    #[test]
    fn a_caller_without_the_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path(), &RandomIds, vec![]).unwrap() else { panic!() };
        let (tx, rx) = mpsc::channel();
        first.serve(move |args| tx.send(args).unwrap()).unwrap();
        let mut address: Address =
            serde_json::from_slice(&std::fs::read(dir.path().join(ADDRESS_FILE)).unwrap()).unwrap();
        address.secret = "guessed".into();
        let e = tell(&address, &["haitao".into()]).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "a refused caller reached the app");
    }

    #[test]
    fn a_holder_that_never_answers_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // Held, but nobody serves the port (and the address names a port nobody listens on).
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.path().join(LOCK_FILE))
            .unwrap();
        lock.try_lock().unwrap();
        let dead = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = dead.local_addr().unwrap().port();
        drop(dead);
        let address = Address { pid: 4242, port, secret: "s".into() };
        std::fs::write(dir.path().join(ADDRESS_FILE), serde_json::to_vec(&address).unwrap()).unwrap();
        let e = hand_over(dir.path(), &[], Duration::from_millis(500)).unwrap_err();
        assert!(matches!(e, InstanceError::NoAnswer { pid: 4242, .. }), "{e}");
        assert!(e.to_string().contains("already running"), "{e}");
    }
}
