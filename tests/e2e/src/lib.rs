//! Drives the real Haitao binary the way a person would: through WebDriver (`tauri-driver`, which
//! fronts WebKitGTK's `WebKitWebDriver`) on a private Xvfb display, with a fresh home directory so
//! the app starts exactly as it does after a first install.
//!
//! The tests in `tests/` are `#[ignore]`d in a plain `cargo test` because they need the app binary,
//! Xvfb, `tauri-driver` and a session bus; `scripts/test.sh` runs them with all of that in place.
//! Every test writes screenshots and the app's logs under `target/e2e/`.

pub mod webdriver;
pub mod x11;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use webdriver::{Element, Session};

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error("{what} not found: {hint}")]
    Missing { what: String, hint: String },
    #[error("could not start {what}: {source}")]
    Spawn { what: String, source: std::io::Error },
    #[error("{0} did not become ready in time")]
    NotReady(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP to the WebDriver failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("WebDriver error {error}: {message}")]
    WebDriver { error: String, message: String },
    #[error("unexpected WebDriver response: {0}")]
    Protocol(String),
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout { what: String, waited: Duration },
}

pub type Result<T, E = E2eError> = std::result::Result<T, E>;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Where screenshots and logs go: `target/e2e/`.
pub fn artifacts_dir() -> PathBuf {
    target_dir().join("e2e")
}

/// The app binary under test: `$HAITAO_APP_BIN`, else `target/debug/haitao`.
pub fn app_binary() -> Result<PathBuf> {
    let path = std::env::var_os("HAITAO_APP_BIN")
        .map_or_else(|| target_dir().join("debug").join("haitao"), PathBuf::from);
    if path.is_file() {
        Ok(path)
    } else {
        Err(E2eError::Missing {
            what: format!("the app binary {}", path.display()),
            hint: "build it first (scripts/test.sh does: cargo build -p haitao), or set HAITAO_APP_BIN"
                .into(),
        })
    }
}

/// `$TAURI_DRIVER`, else `.tools/bin/tauri-driver` (installed by `make test`), else `$PATH`.
fn tauri_driver() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return Ok(PathBuf::from(p));
    }
    let local = workspace_root().join(".tools/bin/tauri-driver");
    if local.is_file() {
        return Ok(local);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("tauri-driver")).find(|p| p.is_file()))
        .ok_or_else(|| E2eError::Missing {
            what: "tauri-driver".into(),
            hint: "run `make test` (it installs tauri-driver 2.1.0 into .tools/bin)".into(),
        })
}

/// Two distinct free ports. Both listeners are held until both ports are known: a port freed by
/// dropping its listener can be handed out again at once, and tauri-driver and WebKitWebDriver on
/// the same port fail to start ("Unable to listen for HTTP server").
fn two_free_ports() -> Result<(u16, u16)> {
    let a = TcpListener::bind("127.0.0.1:0")?;
    let b = TcpListener::bind("127.0.0.1:0")?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from :90 up; a private server per test.
    fn start(log_dir: &Path) -> Result<Self> {
        for n in 90..190 {
            let lock = PathBuf::from(format!("/tmp/.X{n}-lock"));
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            if lock.exists() || socket.exists() {
                if !stale_display(&lock) {
                    continue;
                }
                // Left behind by a server that was killed: the display is free again.
                let _ = std::fs::remove_file(&lock);
                let _ = std::fs::remove_file(&socket);
            }
            let log = std::fs::File::create(log_dir.join("xvfb.log"))?;
            let mut child = Command::new("Xvfb")
                .args([format!(":{n}").as_str(), "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|source| E2eError::Spawn { what: "Xvfb (apt install xvfb)".into(), source })?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if socket.exists() {
                    return Ok(Xvfb { child, display: format!(":{n}") });
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // lost a race for this display: try the next one
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        Err(E2eError::NotReady("Xvfb".into()))
    }
}

/// A display whose lock file names a process that no longer exists (or no lock at all beside a
/// socket): what a killed X server leaves behind.
fn stale_display(lock: &Path) -> bool {
    match std::fs::read_to_string(lock) {
        Ok(text) => text.trim().parse::<u32>().is_ok_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        Err(_) => true,
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock file and socket; SIGKILL only if it does not stop.
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private display, a `tauri-driver`, and a home directory of the app's own. Several sessions
/// (app launches) can run one after another against the same home to test restarts.
pub struct Harness {
    name: String,
    driver: Child,
    port: u16,
    home: tempfile::TempDir,
    log_dir: PathBuf,
    app: PathBuf,
    // Dropped last: the driver and app go first.
    _xvfb: Xvfb,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("name", &self.name).field("port", &self.port).finish()
    }
}

/// The app's environment under the harness: the private display and home.
fn app_env(display: &str, home: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("DISPLAY", display.into()),
        ("HOME", home.into()),
        ("XDG_CONFIG_HOME", home.join(".config").into()),
        ("XDG_DATA_HOME", home.join(".local/share").into()),
        ("XDG_CACHE_HOME", home.join(".cache").into()),
        ("XDG_STATE_HOME", home.join(".local/state").into()),
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1".into()),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1".into()),
        ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()).into()),
    ]
}

impl Harness {
    /// Starts everything for the test `name`; `env` is passed to the app (through the driver).
    pub async fn start(name: &str, env: &[(&str, &str)]) -> Result<Self> {
        let app = app_binary()?;
        let log_dir = artifacts_dir().join(name);
        std::fs::create_dir_all(&log_dir)?;
        let xvfb = Xvfb::start(&log_dir)?;
        let home = tempfile::Builder::new().prefix("haitao-e2e-home-").tempdir()?;
        for sub in [".config", ".local/share", ".cache", ".local/state"] {
            std::fs::create_dir_all(home.path().join(sub))?;
        }
        let (port, native_port) = two_free_ports()?;
        let log = std::fs::File::create(log_dir.join("app-and-driver.log"))?;
        let mut cmd = Command::new(tauri_driver()?);
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .envs(app_env(&xvfb.display, home.path()))
            .env_remove("HAITAO_SHOP_URL")
            .env_remove("HAITAO_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let driver = cmd.spawn().map_err(|source| E2eError::Spawn { what: "tauri-driver".into(), source })?;
        let h = Harness { name: name.to_owned(), driver, port, home, log_dir, app, _xvfb: xvfb };
        h.wait_ready().await?;
        Ok(h)
    }

    async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("http://127.0.0.1:{}/status", self.port)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(E2eError::NotReady("tauri-driver".into()))
    }

    /// Launches the app: a new WebDriver session.
    pub async fn launch(&self) -> Result<Session> {
        Session::new(&format!("http://127.0.0.1:{}", self.port), &self.app).await
    }

    /// The app's data directory under the private home.
    pub fn data_dir(&self) -> PathBuf {
        self.home.path().join(".local/share/com.haitao.desktop")
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Closes the app's windows titled `title` the way a window manager's close button does.
    pub fn close_window_titled(&self, title: &str) -> Result<usize> {
        x11::request_close(&self._xvfb.display, title)
    }

    /// The app binary, to start by hand beside the one the driver launched (a second launch by
    /// the same person): the same display, home and environment, in the driver's process group
    /// so that it ends with the test.
    pub fn second_launch(&self) -> Command {
        let mut cmd = self.command(&self.app);
        cmd.process_group(i32::try_from(self.driver.id()).unwrap_or(0));
        cmd
    }

    /// Another program run as the app's neighbour would be (`xdg-open`, `xdg-mime`): the same
    /// display, home and environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(app_env(&self._xvfb.display, self.home.path()))
            .env_remove("HAITAO_SHOP_URL")
            .env_remove("HAITAO_DATA_DIR")
            .stdin(Stdio::null());
        cmd
    }

    /// The app binary the driver launches.
    pub fn app_path(&self) -> &Path {
        &self.app
    }

    /// Where the app writes its logs under the private home.
    pub fn app_log_dir(&self) -> PathBuf {
        self.data_dir().join("logs")
    }

    /// Moves the keyboard focus away from the app, as clicking another program would.
    pub fn focus_elsewhere(&self) -> Result<()> {
        x11::focus_elsewhere(&self._xvfb.display)
    }

    /// Writes a PNG screenshot of the app window to `target/e2e/<test>/<name>.png`.
    pub async fn screenshot(&self, session: &Session, name: &str) -> Result<PathBuf> {
        let png = session.screenshot().await?;
        let path = self.log_dir.join(format!("{name}.png"));
        std::fs::write(&path, png)?;
        Ok(path)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The app is a grandchild (driver → WebKitWebDriver → app), all in the driver's own process
        // group: end the whole group so nothing outlives the test, even after a failed assertion.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.wait();
    }
}
