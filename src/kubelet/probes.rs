//! Container probes — startup, liveness, readiness — as the kubelet runs them:
//! `httpGet` and `tcpSocket` from the node through the pod network, `exec` as a fresh
//! instance in the container's sandbox; initial delay (from the container's start),
//! period, timeout and success/failure thresholds. Readiness sets the container's
//! `ready` (and so the Service endpoints); a startup or liveness probe that reaches
//! its failure threshold ends [`supervise`], and the worker restarts the container.
//! Every failed attempt is an `Unhealthy` event with the kubelet's wording.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, ExecAction, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::AsyncReadExt;
use tokio::time::{Instant, MissedTickBehavior};

use super::pods::Kubelet;
use crate::apiserver::nodes::ExecIo;
use crate::events::{Involved, Kind as EventKind};

/// The three probes a container may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }

    /// How the kubelet says why it kills a container for this probe.
    pub fn lower(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

/// What the supervisor tells the worker while the container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// The startup probe succeeded (or there is none): liveness and readiness begin.
    Started,
    /// The readiness verdict flipped.
    Ready(bool),
}

/// Who hears the [`Change`]s (the worker, which reports them as pod status).
pub(super) trait Listener: Send + Sync {
    fn change(&self, change: Change) -> futures::future::BoxFuture<'_, ()>;
}

/// The container a probe checks.
pub(super) struct Target {
    pub k: Arc<Kubelet>,
    pub pod_uid: String,
    pub pod_ip: Option<IpAddr>,
    pub container: Container,
    pub about: Option<Involved>,
}

/// Most output of an exec probe kept (the kubelet keeps 10 KiB).
const MAX_OUTPUT: usize = 10 * 1024;

fn seconds(v: Option<i32>, default: i32, min: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(min)).unwrap_or(0))
}

/// Consecutive results against a probe's thresholds.
#[derive(Debug)]
struct Verdict {
    successes: i32,
    failures: i32,
    need_successes: i32,
    need_failures: i32,
    passing: bool,
}

impl Verdict {
    fn new(p: &Probe) -> Verdict {
        Verdict {
            successes: 0,
            failures: 0,
            need_successes: p.success_threshold.unwrap_or(1).max(1),
            need_failures: p.failure_threshold.unwrap_or(3).max(1),
            passing: false,
        }
    }

    /// Count one result; the new verdict when it flips (a probe starts failing, so
    /// its first success threshold reached is a flip).
    fn record(&mut self, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes += 1;
            if !self.passing && self.successes >= self.need_successes {
                self.passing = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= self.need_failures
                && (self.passing || self.failures == self.need_failures)
            {
                self.passing = false;
                return Some(false);
            }
        }
        None
    }
}

impl Target {
    /// Run the container's probes from `started` (when the container started) until
    /// a startup or liveness probe fails for good: which one. `on` hears every
    /// [`Change`]. Never returns for a container without such probes.
    pub async fn supervise(&self, started: Instant, on: &dyn Listener) -> Kind {
        let c = &self.container;
        if let Some(p) = &c.startup_probe {
            let mut verdict = Verdict::new(p);
            let mut ticks = self.ticks(p, started);
            loop {
                ticks.tick().await;
                let ok = self.attempt(Kind::Startup, p).await;
                if verdict.record(ok) == Some(false) {
                    return Kind::Startup;
                }
                if ok {
                    break;
                }
            }
        }
        on.change(Change::Started).await;
        let liveness = async {
            let Some(p) = &c.liveness_probe else {
                return std::future::pending().await;
            };
            let mut verdict = Verdict::new(p);
            // A live container passes until it fails its threshold.
            verdict.passing = true;
            let mut ticks = self.ticks(p, started);
            loop {
                ticks.tick().await;
                let ok = self.attempt(Kind::Liveness, p).await;
                if verdict.record(ok) == Some(false) {
                    return Kind::Liveness;
                }
            }
        };
        let readiness = async {
            let Some(p) = &c.readiness_probe else {
                return std::future::pending().await;
            };
            let mut verdict = Verdict::new(p);
            let mut ticks = self.ticks(p, started);
            loop {
                ticks.tick().await;
                let ok = self.attempt(Kind::Readiness, p).await;
                if let Some(ready) = verdict.record(ok) {
                    on.change(Change::Ready(ready)).await;
                }
            }
        };
        tokio::select! {
            kind = liveness => kind,
            never = readiness => never,
        }
    }

    /// The probe's schedule: first at the initial delay after the container started
    /// (at once when that has passed), then every period.
    fn ticks(&self, p: &Probe, started: Instant) -> tokio::time::Interval {
        let first = started + seconds(p.initial_delay_seconds, 0, 0);
        let mut ticks =
            tokio::time::interval_at(first.max(Instant::now()), seconds(p.period_seconds, 10, 1));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks
    }

    /// One attempt of probe `p`; a failure is reported as an `Unhealthy` event.
    async fn attempt(&self, kind: Kind, p: &Probe) -> bool {
        let timeout = seconds(p.timeout_seconds, 1, 1);
        let result = if let Some(h) = &p.http_get {
            self.http_get(h, timeout).await
        } else if let Some(t) = &p.tcp_socket {
            self.tcp_socket(t, timeout).await
        } else if let Some(e) = &p.exec {
            self.exec(e, timeout).await
        } else if p.grpc.is_some() {
            Err("gRPC probes are not supported by minke".to_string())
        } else {
            Err("the probe has no handler".to_string())
        };
        match result {
            Ok(()) => true,
            Err(why) => {
                let name = &self.container.name;
                tracing::debug!(container = %name, probe = kind.lower(), %why, "probe failed");
                if let Some(about) = &self.about {
                    let message = format!("{} probe failed: {why}", kind.title());
                    self.k
                        .recorder
                        .record(about, EventKind::Warning, "Unhealthy", message)
                        .await;
                }
                false
            }
        }
    }

    /// Where a probe connects: `host` (an IP) or the pod's IP, and the port.
    fn address(&self, host: Option<&str>, port: &IntOrString) -> Result<SocketAddr, String> {
        let port = port_of(&self.container, port)?;
        let ip = match host.filter(|h| !h.is_empty()) {
            Some(h) => h
                .parse::<IpAddr>()
                .map_err(|_| format!("dial tcp: lookup {h}: no such host"))?,
            None => self.pod_ip.ok_or("the pod has no IP")?,
        };
        Ok(SocketAddr::new(ip, port))
    }

    async fn tcp_socket(&self, t: &TCPSocketAction, timeout: Duration) -> Result<(), String> {
        let addr = self.address(t.host.as_deref(), &t.port)?;
        match tokio::time::timeout(timeout, self.k.network.connect_from_node(addr)).await {
            Ok(Ok(_conn)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {addr}: connect: {e}")),
            Err(_) => Err(format!("dial tcp {addr}: i/o timeout")),
        }
    }

    async fn http_get(&self, h: &HTTPGetAction, timeout: Duration) -> Result<(), String> {
        let port = h.port.clone();
        let addr = self.address(h.host.as_deref(), &port)?;
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let path = h.path.as_deref().filter(|p| !p.is_empty()).unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let url = format!("{scheme}://{addr}{path}");
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "Get \"{url}\": unsupported protocol scheme \"{scheme}\""
            ));
        }
        let mut req = http::Request::get(path.as_str())
            .header(http::header::HOST, addr.to_string())
            .header(http::header::USER_AGENT, probe_agent())
            .header(http::header::ACCEPT, "*/*")
            .header(http::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        for header in h.http_headers.iter().flatten() {
            let name = http::HeaderName::from_bytes(header.name.as_bytes());
            let value = http::HeaderValue::from_str(&header.value);
            if let (Ok(name), Ok(value)) = (name, value) {
                req.headers_mut().insert(name, value);
            }
        }
        let request = async {
            let conn = self
                .k
                .network
                .connect_from_node(addr)
                .await
                .map_err(|e| format!("dial tcp {addr}: connect: {e}"))?;
            // As the kubelet, HTTPS probes do not check the certificate.
            if scheme == "https" {
                let tls = crate::net::backend_tls::connect(conn.stream, addr.ip())
                    .await
                    .map_err(|e| format!("tls: {e}"))?;
                send(tls, req).await
            } else {
                send(conn.stream, req).await
            }
        };
        let status = match tokio::time::timeout(timeout, request).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => return Err(format!("Get \"{url}\": {e}")),
            Err(_) => {
                return Err(format!(
                    "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ));
            }
        };
        if (200..400).contains(&status.as_u16()) {
            Ok(())
        } else {
            Err(format!(
                "HTTP probe failed with statuscode: {}",
                status.as_u16()
            ))
        }
    }

    async fn exec(&self, e: &ExecAction, timeout: Duration) -> Result<(), String> {
        let command = e.command.clone().unwrap_or_default();
        let shown = command.join(" ");
        let (stdout, mut ours) = tokio::io::duplex(16 * 1024);
        let io = ExecIo {
            stdin: None,
            stdout,
            stderr: None,
            tty: false,
        };
        let run = super::exec::run_in(&self.k, &self.pod_uid, &self.container.name, command, io);
        let read = async {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = ours.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let room = MAX_OUTPUT.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            out
        };
        match tokio::time::timeout(timeout, futures::future::join(run, read)).await {
            Err(_) => Err(format!("command {shown:?} timed out")),
            Ok((Err(e), _)) => Err(e.to_string()),
            Ok((Ok(0), _)) => Ok(()),
            Ok((Ok(_), out)) => Err(String::from_utf8_lossy(&out).trim_end().to_string()),
        }
    }
}

/// A port by number, or by the name of one of the container's ports.
fn port_of(c: &Container, port: &IntOrString) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("unable to find named port {name:?}"))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port number: {number}"))
}

/// Send `req` over `io` (HTTP/1.1); the response status.
async fn send(
    io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    req: http::Request<Empty<Bytes>>,
) -> Result<http::StatusCode, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status())
}

/// The probes' User-Agent, as the kubelet's (`kube-probe/1.32`).
fn probe_agent() -> String {
    format!("kube-probe/1.{}", crate::apiserver::discovery::KUBE_MINOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(success: i32, failure: i32) -> Probe {
        Probe {
            success_threshold: Some(success),
            failure_threshold: Some(failure),
            ..Probe::default()
        }
    }

    #[test]
    fn readiness_needs_its_success_threshold_and_falls_at_its_failure_threshold() {
        let mut v = Verdict::new(&probe(2, 3));
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(true), Some(true));
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(false), None);
        // A success in between starts the count again.
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(false), Some(false));
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(true), None);
        assert_eq!(v.record(true), Some(true));
    }

    #[test]
    fn a_probe_that_never_passed_fails_once_at_its_threshold() {
        let mut v = Verdict::new(&probe(1, 2));
        assert_eq!(v.record(false), None);
        assert_eq!(v.record(false), Some(false));
        assert_eq!(v.record(false), None);
    }

    #[test]
    fn thresholds_below_one_count_as_one() {
        let mut v = Verdict::new(&probe(0, 0));
        assert_eq!(v.record(true), Some(true));
        assert_eq!(v.record(false), Some(false));
    }

    #[test]
    fn ports_are_numbers_or_the_names_of_container_ports() {
        let k8s =
            serde_json::json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]});
        let c: Container = serde_json::from_value(k8s).unwrap();
        assert_eq!(port_of(&c, &IntOrString::String("http".into())), Ok(8080));
        assert_eq!(port_of(&c, &IntOrString::String("9090".into())), Ok(9090));
        assert_eq!(port_of(&c, &IntOrString::Int(81)), Ok(81));
        assert_eq!(
            port_of(&c, &IntOrString::String("grpc".into())),
            Err("unable to find named port \"grpc\"".into())
        );
        assert_eq!(
            port_of(&c, &IntOrString::Int(0)),
            Err("invalid port number: 0".into())
        );
    }
}
