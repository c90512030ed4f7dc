//! `haitao-shop`: the storefront backend as a standalone server.
//!
//! ```text
//! haitao-shop serve --addr 127.0.0.1:8080 --data-dir ./shop-data --sandbox-url http://127.0.0.1:9090/
//! haitao-shop serve --addr 0.0.0.0:8080 --data-dir /var/lib/haitao --config shop.json
//! haitao-shop serve --addr 0.0.0.0:8080 --database postgres://haitao@db/haitao --config shop.json
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use haitao_shop::limits::AddressLimits;
use haitao_shop::{AlipaySettings, KeySource, PostgresSettings, ShopConfig, start};

#[derive(Parser)]
#[command(name = "haitao-shop", version, about = "The Haitao storefront backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the shop API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the SQLite database is kept (the default store).
        #[arg(long, required_unless_present = "database")]
        data_dir: Option<PathBuf>,
        /// A PostgreSQL database instead (`postgres://user:password@host:port/db`), which several
        /// shop instances can share (docs/shop.md). Read from HAITAO_SHOP_DATABASE when not given,
        /// which keeps the password off the command line.
        #[arg(long, env = "HAITAO_SHOP_DATABASE", hide_env_values = true, conflicts_with = "data_dir")]
        database: Option<String>,
        /// Connections to PostgreSQL this instance keeps at most.
        #[arg(long, default_value_t = 16, requires = "database")]
        database_connections: u32,
        /// This instance's name in the leases it takes, kept across restarts (so a restarted
        /// instance takes back at once what it could not let go of); unique among the instances
        /// running on one database. A new random name each start when not given.
        #[arg(long)]
        instance_name: Option<String>,
        /// The URL clients and Alipay use to reach this shop, if not http://<addr>/.
        #[arg(long)]
        public_url: Option<url::Url>,
        /// A Haitao Alipay sandbox to pay through (the default setup).
        #[arg(long, default_value = "http://127.0.0.1:9090/", conflicts_with = "config")]
        sandbox_url: url::Url,
        /// A JSON file with an `alipay` section for another gateway (see docs/shop.md).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Serve /api/v1/test/* (moving the shop's clock, running its jobs, failing a customs
        /// inspection) for tests. Never on a shop paying through a real gateway.
        #[arg(long, conflicts_with = "config")]
        test_controls: bool,
        /// A reverse proxy in front of the shop whose X-Forwarded-For names the client (repeat for
        /// several); per-address limits then count the client, not the proxy.
        #[arg(long = "trusted-proxy")]
        trusted_proxies: Vec<std::net::IpAddr>,
        /// Turn off the per-address limits on sign-in failures and registrations.
        #[arg(long)]
        no_address_limits: bool,
        /// A file holding the merchant's admin token (at least 24 characters): turns on
        /// /api/v1/admin/* (the daily reconciliation's results) for requests bearing it.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
    },
}

#[derive(serde::Deserialize)]
struct FileConfig {
    alipay: AlipaySettings,
    /// Per-address limits (see `haitao_shop::limits::AddressLimits`); the defaults when absent.
    #[serde(default)]
    address_limits: Option<AddressLimits>,
    /// Where the admin token comes from (`{"from": "file", "path": …}` or the keyring).
    #[serde(default)]
    admin_token: Option<KeySource>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let Command::Serve {
        addr,
        data_dir,
        database,
        database_connections,
        instance_name,
        public_url,
        sandbox_url,
        config,
        test_controls,
        trusted_proxies,
        no_address_limits,
        admin_token_file,
    } = Cli::parse().command;
    let mut cfg = ShopConfig::local(data_dir, addr, sandbox_url);
    cfg.database = database.map(|url| PostgresSettings { url, max_connections: database_connections });
    cfg.instance_name = instance_name;
    cfg.public_url = public_url;
    cfg.test_controls = test_controls;
    let mut limits = AddressLimits::default();
    if let Some(path) = config {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<FileConfig>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(f) => {
                cfg.alipay = f.alipay;
                limits = f.address_limits.unwrap_or(limits);
                cfg.admin_token = f.admin_token;
            }
            Err(e) => {
                eprintln!("haitao-shop: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    if let Some(path) = admin_token_file {
        cfg.admin_token = Some(KeySource::File { path });
    }
    limits.trusted_proxies.extend(trusted_proxies);
    if let Err(e) = limits.validate() {
        eprintln!("haitao-shop: {e}");
        return ExitCode::FAILURE;
    }
    cfg.address_limits = (!no_address_limits).then_some(limits);
    match start(cfg).await {
        Ok(running) => {
            eprintln!(
                "haitao-shop: serving {} (OpenAPI at {}api/v1/openapi.json)",
                running.base_url(),
                running.base_url()
            );
            let _ = tokio::signal::ctrl_c().await;
            running.stop().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("haitao-shop: {e}");
            ExitCode::FAILURE
        }
    }
}
