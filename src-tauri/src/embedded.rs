//! The embedded default: with no remote shop configured, the shop and the Alipay sandbox run in this
//! process on 127.0.0.1 ephemeral ports, with their data under the app's data folder. The client
//! talks to them over HTTP exactly as it would to a remote shop.

use std::path::Path;

use haitao_client::IpcError;

use haitao_client::ErrorCode;

use crate::state::startup_error;

fn bind_error(what: &str, addr: std::net::SocketAddr, e: &std::io::Error) -> IpcError {
    let message = format!("the built-in {what} could not listen on {addr}: {e}");
    if e.kind() == std::io::ErrorKind::AddrInUse {
        IpcError { code: ErrorCode::PortInUse, message, field: None }
    } else {
        startup_error(message)
    }
}

fn data_dir_error(what: &str, path: &str, e: &std::io::Error) -> IpcError {
    IpcError {
        code: ErrorCode::DataDirUnwritable,
        message: format!("the built-in {what} cannot write its data folder {path}: {e}"),
        field: None,
    }
}

fn refused(code: ErrorCode, e: &dyn std::fmt::Display) -> IpcError {
    IpcError { code, message: e.to_string(), field: None }
}

fn sandbox_error(e: &haitao_alipay_sandbox::StartError) -> IpcError {
    use haitao_alipay_sandbox::StartError as E;
    use haitao_alipay_sandbox::db::StoreError as S;
    match e {
        E::Bind { addr, source } => bind_error("Alipay sandbox", *addr, source),
        E::DataDir { path, source } => data_dir_error("Alipay sandbox", path, source),
        E::Store(s @ S::Corrupt { .. }) => refused(ErrorCode::DataCorrupt, s),
        E::Store(s @ S::TooNew { .. }) => refused(ErrorCode::DataTooNew, s),
        other => startup_error(format!("the built-in Alipay sandbox could not start: {other}")),
    }
}

fn shop_error(e: &haitao_shop::StartError) -> IpcError {
    use haitao_shop::StartError as E;
    match e {
        E::Bind { addr, source } => bind_error("shop", *addr, source),
        E::DataDir { path, source } => data_dir_error("shop", path, source),
        E::Db(d @ haitao_shop::db::DbError::Corrupt { .. }) => refused(ErrorCode::DataCorrupt, d),
        E::Db(d @ haitao_shop::db::DbError::TooNew { .. }) => refused(ErrorCode::DataTooNew, d),
        other => startup_error(format!("the built-in shop could not start: {other}")),
    }
}

#[derive(Debug)]
pub struct Embedded {
    pub sandbox: haitao_alipay_sandbox::Running,
    pub shop: haitao_shop::RunningShop,
}

impl Embedded {
    pub fn shop_url(&self) -> url::Url {
        self.shop.base_url().clone()
    }

    /// Starts what runs in the background — the sandbox's notifications and expiries, the shop's
    /// jobs (closing orders, customs, refunds, reconciliation) — which start-up leaves off until
    /// the first catalog page is on screen.
    pub fn start_background(&mut self) {
        self.sandbox.start_worker();
        self.shop.start_jobs();
    }
}

fn port(var: &str) -> u16 {
    std::env::var(var).ok().and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// Starts the sandbox, then the shop registered with it.
pub async fn start(data_dir: &Path) -> Result<Embedded, IpcError> {
    let started = std::time::Instant::now();
    let sandbox_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port("HAITAO_SANDBOX_PORT")));
    // Their background work waits for the first catalog page (`Embedded::start_background`).
    let mut sandbox_config = haitao_alipay_sandbox::Config::new(Some(data_dir.join("sandbox")), sandbox_addr);
    sandbox_config.background = false;
    let sandbox = haitao_alipay_sandbox::start(sandbox_config).await.map_err(|e| sandbox_error(&e))?;
    let shop_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port("HAITAO_SHOP_PORT")));
    let mut config =
        haitao_shop::ShopConfig::local(Some(data_dir.join("shop")), shop_addr, sandbox.base_url().clone());
    // One clock for both: a tester who moves the sandbox's time (from the tester panel) moves the
    // shop's with it, so unpaid orders close and parcels move as the cashiers expire.
    config.clock = sandbox.state.clock();
    config.background_jobs = false;
    // The only shop on its database: what it could not let go of before a restart is its own.
    config.instance_name = Some("embedded".into());
    let shop = haitao_shop::start(config).await.map_err(|e| shop_error(&e))?;
    tracing::info!(
        shop = %shop.base_url(),
        sandbox = %sandbox.base_url(),
        elapsed_ms = started.elapsed().as_millis(),
        "embedded shop and Alipay sandbox running"
    );
    Ok(Embedded { sandbox, shop })
}
