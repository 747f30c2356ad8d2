//! The `minke` command line: `up`, `image`, `version`.

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
    /// Manage the local wasm images: import, ls, rm.
    Image(ImageArgs),
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
    /// Allow pods' hostPath volumes under this dir (default: none allowed).
    #[arg(long, env = "MINKE_HOST_PATH_ROOT")]
    host_path_root: Option<PathBuf>,
    /// How many virtual nodes to run (1-16), each with its own kubelet.
    #[arg(long, env = "MINKE_NODES", default_value_t = 1)]
    nodes: usize,
    /// Whether pods may reach addresses outside the cluster: allow or deny.
    #[arg(long, env = "MINKE_POD_EGRESS", default_value = "allow")]
    pod_egress: minke::net::Egress,
    /// The host address NodePort and LoadBalancer Services listen on.
    #[arg(long, env = "MINKE_NODE_ADDRESS", default_value = "127.0.0.1")]
    node_address: std::net::IpAddr,
    /// Serve cluster DNS on the host here (UDP and TCP), for `dig @127.0.0.1 -p 10053`;
    /// `off` serves none.
    #[arg(long, env = "MINKE_DNS_LISTEN", default_value = "127.0.0.1:10053", value_parser = parse_listen)]
    dns_listen: HostListen,
    /// Serve Ingresses over HTTP on the host here (`curl -H 'Host: …' http://127.0.0.1:10080/`);
    /// `off` serves none.
    #[arg(long, env = "MINKE_INGRESS_LISTEN", default_value = "127.0.0.1:10080", value_parser = parse_listen)]
    ingress_listen: HostListen,
    /// Serve Ingresses over HTTPS (certificates from their `spec.tls` Secrets, by SNI)
    /// on the host here; `off` serves none.
    #[arg(long, env = "MINKE_INGRESS_TLS_LISTEN", default_value = "127.0.0.1:10443", value_parser = parse_listen)]
    ingress_tls_listen: HostListen,
}

/// A host listener's flag: an address, or `off`.
#[derive(Clone, Copy)]
enum HostListen {
    Off,
    On(SocketAddr),
}

impl HostListen {
    fn addr(self) -> Option<SocketAddr> {
        match self {
            HostListen::Off => None,
            HostListen::On(a) => Some(a),
        }
    }
}

fn parse_listen(value: &str) -> Result<HostListen, String> {
    match value {
        "off" | "none" | "" => Ok(HostListen::Off),
        addr => addr
            .parse()
            .map(HostListen::On)
            .map_err(|e| format!("{e} (want HOST:PORT or off)")),
    }
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The data dir whose images to manage (default: as for `up`).
    #[arg(long, env = "MINKE_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Import a wasm component or core module as NAME[:TAG]; prints its digest.
    Import {
        /// The .wasm file.
        file: PathBuf,
        /// The image name pods use, e.g. `myapp:v1`.
        name: String,
    },
    /// List the images: built-in and stored.
    #[command(alias = "list")]
    Ls,
    /// Remove an image.
    #[command(alias = "remove")]
    Rm {
        /// NAME[:TAG]
        name: String,
    },
}

/// `--data-dir`, else the platform data dir.
fn data_dir(arg: Option<PathBuf>) -> Result<PathBuf> {
    match arg {
        Some(d) => Ok(d),
        None => Ok(dirs::data_dir()
            .context("no platform data dir; pass --data-dir")?
            .join("minke")),
    }
}

fn image(args: ImageArgs) -> Result<()> {
    use minke::kubelet::images::{Store, cli};
    let store = Store::new(minke::cluster::images_dir(&data_dir(args.data_dir)?));
    let out = match args.command {
        ImageCommand::Import { file, name } => cli::import(&store, &file, &name)?,
        ImageCommand::Ls => cli::ls(&store)?,
        ImageCommand::Rm { name } => cli::rm(&store, &name)?,
    };
    print!("{}", if out.ends_with('\n') { out } else { out + "\n" });
    Ok(())
}

async fn up(args: UpArgs) -> Result<()> {
    let mut builder = minke::Cluster::builder()
        .listen(args.listen)
        .context(&args.context);
    if !args.in_memory {
        builder = builder.data_dir(data_dir(args.data_dir)?);
    }
    builder = builder
        .nodes(args.nodes)
        .pod_egress(args.pod_egress)
        .node_address(args.node_address);
    if let Some(addr) = args.dns_listen.addr() {
        builder = builder.dns_listen(addr);
    }
    builder = builder
        .ingress_listen(args.ingress_listen.addr())
        .ingress_tls_listen(args.ingress_tls_listen.addr());
    if let Some(root) = args.host_path_root {
        builder = builder.host_path_root(root);
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
    if let Some(dns) = cluster.dns_addr() {
        println!("DNS: cluster.local on {dns} (UDP and TCP)");
    }
    match (cluster.ingress_addr(), cluster.ingress_tls_addr()) {
        (Some(http), Some(https)) => println!("Ingress: http://{http}, https://{https}"),
        (Some(http), None) => println!("Ingress: http://{http}"),
        (None, Some(https)) => println!("Ingress: https://{https}"),
        (None, None) => {}
    }
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
        Command::Image(args) => image(args),
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
