//! `haitao-sandbox`: the local Alipay gateway as a standalone program.
//!
//! ```text
//! haitao-sandbox serve --addr 127.0.0.1:9090 --data-dir ./sandbox-data
//! haitao-sandbox app create --data-dir ./sandbox-data --public-key app-public.pem [--name demo]
//!     [--cert-mode [--cert-dir ./certs]] [--aes | --aes-key BASE64]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use haitao_alipay_sandbox::controls::{AppRequest, ensure_app_in};
use haitao_alipay_sandbox::{Config, start};

#[derive(Parser)]
#[command(name = "haitao-sandbox", version, about = "A local, protocol-faithful Alipay gateway for testing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway, cashier and tester API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: SocketAddr,
        #[arg(long)]
        data_dir: PathBuf,
        /// The URL browsers use to reach this sandbox, if not http://<addr>/.
        #[arg(long)]
        public_url: Option<url::Url>,
        /// Serve the tester API (/sandbox/api: forced outcomes, clock, SMS inbox) to other
        /// machines too; by default only callers on this machine may use it.
        #[arg(long)]
        public: bool,
    },
    /// Manage merchant apps.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an app and print its app_id, the sandbox's Alipay public key and the gateway URL as JSON.
    Create {
        #[arg(long)]
        data_dir: PathBuf,
        /// The merchant's public key (PEM or base64). Without it a demo key pair is generated.
        #[arg(long)]
        public_key: Option<PathBuf>,
        #[arg(long, default_value = "demo")]
        name: String,
        /// The address `serve` will use, for the printed gateway URL.
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: SocketAddr,
        /// Public-key certificate mode: issue the app a certificate and print the three
        /// certificates and their serial numbers.
        #[arg(long)]
        cert_mode: bool,
        /// Also write the certificates as the Alipay console names them
        /// (appCertPublicKey_<app_id>.crt, alipayCertPublicKey_RSA2.crt, alipayRootCert.crt).
        #[arg(long, requires = "cert_mode")]
        cert_dir: Option<PathBuf>,
        /// Content encryption (encrypt_type=AES) with a key the sandbox makes and prints.
        #[arg(long, conflicts_with = "aes_key")]
        aes: bool,
        /// Content encryption with this key (base64 of 16 bytes, as the Alipay console shows it).
        #[arg(long)]
        aes_key: Option<String>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { addr, data_dir, public_url, public } => {
            let mut config = Config::new(Some(data_dir), addr);
            config.public_url = public_url;
            config.options.public_controls = public;
            match start(config).await {
                Ok(running) => {
                    eprintln!(
                        "haitao-sandbox: gateway {} ; cashier and tester API at {}",
                        running.gateway_url(),
                        running.base_url()
                    );
                    let _ = tokio::signal::ctrl_c().await;
                    running.stop().await;
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("haitao-sandbox: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::App {
            command:
                AppCommand::Create { data_dir, public_key, name, addr, cert_mode, cert_dir, aes, aes_key },
        } => {
            let key = match public_key.map(std::fs::read_to_string).transpose() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("haitao-sandbox: cannot read the public key: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // Start on a throwaway port to reuse the same registration code, then stop.
            let mut config = Config::new(Some(data_dir), "127.0.0.1:0".parse().unwrap_or(addr));
            config.public_url = url::Url::parse(&format!("http://{addr}/")).ok();
            let running = match start(config).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("haitao-sandbox: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let req = AppRequest {
                public_key: key,
                cert_mode,
                aes: aes || aes_key.is_some(),
                aes_key,
                ..AppRequest::named(name)
            };
            let state = running.state.clone();
            let result = state.store().sync(|c| ensure_app_in(&state, c, &req));
            running.stop().await;
            match result {
                Ok(info) => {
                    if let (Some(dir), Some(certs)) = (&cert_dir, &info.certificates)
                        && let Err(e) = write_certs(dir, &info.app_id, certs)
                    {
                        eprintln!("haitao-sandbox: cannot write the certificates to {}: {e}", dir.display());
                        return ExitCode::FAILURE;
                    }
                    let mut v = serde_json::to_value(&info).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("app_private_key");
                    }
                    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                    #[allow(clippy::print_stdout)]
                    {
                        println!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("haitao-sandbox: {e:?}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes the three certificate files under the names the Alipay console gives them.
fn write_certs(
    dir: &std::path::Path,
    app_id: &str,
    certs: &haitao_sandbox_api::AppCertificates,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("appCertPublicKey_{app_id}.crt")), &certs.app_cert)?;
    std::fs::write(dir.join("alipayCertPublicKey_RSA2.crt"), &certs.alipay_cert)?;
    std::fs::write(dir.join("alipayRootCert.crt"), &certs.alipay_root_cert)
}
