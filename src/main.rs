//! The `minke` command line: `up`, `kubeconfig`, `version`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "minke",
    version,
    about = "A Kubernetes-compatible cluster whose pods are WebAssembly components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the cluster and serve the Kubernetes API until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Print the version.
    Version,
}

#[derive(clap::Args)]
struct UpArgs {
    /// Where the cluster keeps its state (default: the platform data dir, e.g. ~/.local/share/minke).
    #[arg(long, env = "MINKE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep all state in memory; nothing survives a restart.
    #[arg(long, env = "MINKE_IN_MEMORY", conflicts_with = "data_dir")]
    in_memory: bool,
    /// Address of the API server; port 0 picks a free port.
    #[arg(long, env = "MINKE_LISTEN", default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Kubeconfig to merge the `minke` context into (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, env = "MINKE_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Name of the kubeconfig context, cluster and user.
    #[arg(long, env = "MINKE_CONTEXT", default_value = "minke")]
    context: String,
}

async fn up(args: UpArgs) -> Result<()> {
    let mut builder = minke::Cluster::builder()
        .listen(args.listen)
        .context(&args.context);
    if !args.in_memory {
        let dir = match args.data_dir {
            Some(d) => d,
            None => dirs::data_dir()
                .context("no platform data dir; pass --data-dir")?
                .join("minke"),
        };
        builder = builder.data_dir(dir);
    }
    let kubeconfig = match args.kubeconfig {
        Some(k) => k,
        None => minke::kubeconfig::default_path()
            .context("no home dir for the kubeconfig; pass --kubeconfig")?,
    };
    builder = builder.kubeconfig(&kubeconfig);
    let cluster = builder.start().await?;
    println!(
        "minke {}: API ready at {} in {} ms",
        env!("CARGO_PKG_VERSION"),
        cluster.server_url(),
        cluster.ready_in().as_millis()
    );
    println!(
        "kubeconfig: context \"{}\" written to {} (current-context)",
        args.context,
        kubeconfig.display()
    );
    wait_for_signal().await?;
    println!("minke: shutting down");
    cluster.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Up(args) => runtime
            .block_on(up(args))
            .map_err(|e| anyhow::anyhow!("{e:#}")),
        Command::Version => {
            println!(
                "minke {} (Kubernetes API v1.{})",
                env!("CARGO_PKG_VERSION"),
                minke::apiserver::KUBE_MINOR
            );
            Ok(())
        }
    }
}
