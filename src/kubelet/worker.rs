//! A pod worker: runs the pod's containers (each in a restart loop per
//! `restartPolicy`, with back-off) and reports every transition as pod status.
//!
//! Container state machine, as Kubernetes reports it: `waiting` (ContainerCreating,
//! ErrImagePull, CrashLoopBackOff) → `running` → `terminated` (Completed, Error,
//! OOMKilled) → back to `waiting` when the policy restarts it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::Api;
use serde_json::json;
use tokio::sync::watch;

use super::pods::Kubelet;
use super::probes::{self, Change};
use super::runtime::{Context, Exit, Spec};
use super::sandbox::{Prepared, Sandbox};
use super::serve::HttpServer;
use super::status::{PodState, Slot, report, set};
use super::volumes::Volumes;
use crate::api::clock::now;
use crate::api::quantity::Quantity;
use crate::events::{Involved, Kind};

/// First restart back-off; it doubles up to [`MAX_BACKOFF`], as the kubelet's.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often a container waiting on a missing ConfigMap/Secret looks again.
const CONFIG_RETRY: Duration = Duration::from_secs(1);
/// How often projected volumes are refreshed in a running pod.
const VOLUME_REFRESH: Duration = Duration::from_secs(1);

/// argv: `command` (else the image's own name) followed by `args`.
fn argv(c: &Container) -> Vec<String> {
    let image_name = program(c.image.as_deref().unwrap_or(""));
    let mut argv = c.command.clone().unwrap_or_else(|| vec![image_name]);
    argv.extend(c.args.clone().unwrap_or_default());
    argv
}

fn limit(c: &Container, resource: &str) -> Option<Quantity> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get(resource)?;
    Quantity::parse(&q.0)
}

fn memory_limit(c: &Container) -> Option<usize> {
    usize::try_from(limit(c, "memory")?.ceil_units()).ok()
}

fn cpu_limit(c: &Container) -> Option<u64> {
    u64::try_from(limit(c, "cpu")?.ceil_millis()).ok()
}

/// The program name of an image: `minke/hello:v1` → `hello`.
fn program(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or("");
    last.split([':', '@']).next().unwrap_or("").to_string()
}

/// What every container task of one pod shares.
struct PodCtx {
    k: Arc<Kubelet>,
    pod: Pod,
    state: Arc<Mutex<PodState>>,
    api: Api<Pod>,
    policy: String,
    volumes: Arc<Volumes>,
    /// Set (to the grace period) when the pod is being deleted.
    stopping: watch::Receiver<Option<Duration>>,
    sandbox: Arc<Sandbox>,
    net: Option<crate::net::PodNet>,
}

/// Resolves once the pod is being deleted.
async fn stopped(mut stopping: watch::Receiver<Option<Duration>>) {
    // An error means the kubelet dropped the worker: stop as well.
    let _ = stopping.wait_for(Option::is_some).await;
}

/// Run container `i` until its restart policy says stop.
async fn run_container(ctx: Arc<PodCtx>, slot: Slot, c: Container) -> Option<i32> {
    let PodCtx {
        k,
        pod,
        state,
        api,
        policy,
        volumes,
        stopping,
        sandbox,
        net,
    } = &*ctx;
    let (k, pod, api, policy) = (k.clone(), pod, api, policy.clone());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let about = Involved::of(pod).map(|i| i.container(&c.name));
    let event = |kind: Kind, reason: &'static str, message: String| {
        let (recorder, about) = (k.recorder.clone(), about.clone());
        async move {
            if let Some(about) = about {
                recorder.record(&about, kind, reason, message).await;
            }
        }
    };
    let waiting = {
        let (name, policy) = (&name, &policy);
        move |reason: &'static str, message: String| async move {
            set(state, slot, |s| {
                s.state = json!({"waiting": {"reason": reason, "message": message}})
            });
            report(api, name, state, policy).await;
        }
    };
    let bytes = super::pull::ensure_image(&k, pod, &c, &event, waiting).await?;
    let compiled = match k.runtime.compile(&bytes) {
        Ok(c) => c,
        Err(e) => {
            set(
                state,
                slot,
                |s| s.state = json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": e.to_string(), "startedAt": now(), "finishedAt": now()}}),
            );
            report(api, &name, state, &policy).await;
            return None;
        }
    };
    let pod_json = serde_json::to_value(pod).unwrap_or_default();
    // A missing ConfigMap/Secret reference keeps the container waiting, retried until
    // it appears, as the kubelet does.
    let env = loop {
        match super::env::build(&k.client, pod, &c).await {
            Ok(mut vars) => {
                vars.insert(0, ("HOSTNAME".into(), name.clone()));
                break vars;
            }
            Err(e) => {
                set(
                    state,
                    slot,
                    |s| s.state = json!({"waiting": {"reason": "CreateContainerConfigError", "message": e.to_string()}}),
                );
                report(api, &name, state, &policy).await;
                tokio::select! {
                    () = tokio::time::sleep(CONFIG_RETRY) => {}
                    () = stopped(stopping.clone()) => return None,
                }
            }
        }
    };
    let argv: Vec<String> = argv(&c)
        .iter()
        .map(|a| super::env::expand(a, &env))
        .collect();
    let mounts = match volumes.mounts(&c, &env) {
        Ok(m) => m,
        Err(e) => {
            set(
                state,
                slot,
                |s| s.state = json!({"waiting": {"reason": "CreateContainerConfigError", "message": e.to_string()}}),
            );
            report(api, &name, state, &policy).await;
            return None;
        }
    };
    let prepared = Prepared {
        compiled: compiled.clone(),
        program: program(c.image.as_deref().unwrap_or("")),
        ctx: Context {
            argv,
            env,
            cwd: c.working_dir.clone(),
            memory_limit: memory_limit(&c),
            cpu_limit: cpu_limit(&c),
            usage: sandbox.usage(&c.name),
            mounts,
            net: net.clone(),
        },
    };
    sandbox.prepare(&c.name, prepared.clone());
    let prober = probes::Target {
        k: k.clone(),
        pod_uid: uid(pod),
        pod_ip: net.as_ref().map(crate::net::PodNet::ip),
        container: c.clone(),
        about: about.clone(),
    };
    // As the kubelet's doBackOff: the first restart is at once, then each waits
    // `k.backoff.restart`, doubling up to MAX_BACKOFF.
    let mut backoff = Duration::ZERO;
    loop {
        let restarts = state.lock().map(|mut s| s.restarts(slot)).unwrap_or(0);
        let path = crate::apiserver::log_path(&k.logs_dir, &pod_json, &c.name, restarts);
        let (stdout, stderr) = match super::logs::create(&path) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(pod = %name, path = %path.display(), error = %e, "cannot create the log file");
                return None;
            }
        };
        event(
            Kind::Normal,
            "Created",
            format!("Created container: {}", c.name),
        )
        .await;
        let started = now();
        event(
            Kind::Normal,
            "Started",
            format!("Started container {}", c.name),
        )
        .await;
        // Without a startup probe a container has started; without a readiness probe
        // it is ready once started.
        set(state, slot, |s| {
            s.state = json!({"running": {"startedAt": started}});
            s.started = c.startup_probe.is_none();
            s.ready = s.started && c.readiness_probe.is_none();
        });
        report(api, &name, state, &policy).await;
        let listener = ProbeStatus {
            state,
            slot,
            api,
            name: &name,
            policy: &policy,
            readiness: c.readiness_probe.is_some(),
        };
        let probes = prober.supervise(tokio::time::Instant::now(), &listener);
        let exit = if k.runtime.is_http(&compiled) {
            match serve(
                &ctx,
                slot,
                &c,
                &prepared,
                (stdout, stderr),
                &started,
                probes,
            )
            .await
            {
                Served::Ended => return None,
                Served::Failed(probe) => Err(probe),
            }
        } else {
            let spec = Spec {
                ctx: prepared.ctx.clone(),
                stdin: None,
                stdout,
                stderr,
            };
            // Guests cannot be signalled: a container being deleted is stopped at once
            // (well within its grace period), as the kubelet's SIGKILL would.
            tokio::select! {
                exit = k.runtime.run(&compiled, spec) => Ok(exit),
                probe = probes => Err(probe),
                () = stopped(stopping.clone()) => {
                event(Kind::Normal, "Killing", format!("Stopping container {}", c.name)).await;
                set(state, slot, |s| {
                    s.state = json!({"terminated": {"exitCode": 137, "reason": "Error", "startedAt": started, "finishedAt": now()}});
                    s.ready = false;
                });
                report(api, &name, state, &policy).await;
                return None;
            }
            }
        };
        // A failed startup or liveness probe kills the container (as SIGKILL would).
        if let Err(probe) = &exit {
            let message = format!(
                "Container {} failed {} probe, will be restarted",
                c.name,
                probe.lower()
            );
            event(Kind::Normal, "Killing", message).await;
        }
        let (code, reason, message) = match &exit {
            Ok(Ok(Exit::Code(0))) => (0, "Completed", None),
            Ok(Ok(Exit::Code(n))) => (*n, "Error", None),
            Ok(Ok(Exit::OomKilled)) => (137, "OOMKilled", None),
            Ok(Ok(Exit::Trap(m))) => (1, "Error", Some(m.clone())),
            Ok(Err(e)) => (128, "StartError", Some(e.to_string())),
            Err(_) => (137, "Error", None),
        };
        if matches!(exit, Ok(Ok(Exit::OomKilled))) {
            let limit = prepared.ctx.memory_limit.unwrap_or_default();
            event(
                Kind::Warning,
                "OOMKilling",
                format!(
                    "Memory limit of {limit} bytes exceeded: container {} killed",
                    c.name
                ),
            )
            .await;
        }
        let mut terminated =
            json!({"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now()});
        if let Some(m) = message {
            terminated["message"] = json!(m);
        }
        // Init containers run until they succeed (unless the policy is Never).
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => !slot.init || code != 0,
        };
        set(state, slot, |s| {
            s.state = json!({"terminated": terminated});
            s.ready = false;
        });
        report(api, &name, state, &policy).await;
        if !restart {
            return Some(code);
        }
        if backoff.is_zero() {
            set(state, slot, |s| {
                s.last_state = s.state.clone();
                s.restarts += 1;
            });
            backoff = k.backoff.restart;
            continue;
        }
        set(state, slot, |s| {
            s.last_state = s.state.clone();
            s.restarts += 1;
            s.state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {}s restarting failed container={} pod={name}", backoff.as_secs(), c.name)}});
        });
        report(api, &name, state, &policy).await;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        event(
            Kind::Warning,
            "BackOff",
            format!(
                "Back-off restarting failed container {} in pod {name}_{ns}({uid})",
                c.name
            ),
        )
        .await;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(stopping.clone()) => return None,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The ports an HTTP container is served on: its TCP `containerPort`s, else 8080
/// (where `wasmtime serve` listens).
fn http_ports(c: &Container) -> Vec<u16> {
    let ports: Vec<u16> = c
        .ports
        .iter()
        .flatten()
        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .filter_map(|p| u16::try_from(p.container_port).ok())
        .collect();
    if ports.is_empty() { vec![8080] } else { ports }
}

/// Reports what the probes find as the container's `started` and `ready`.
struct ProbeStatus<'a> {
    state: &'a Mutex<PodState>,
    slot: Slot,
    api: &'a Api<Pod>,
    name: &'a str,
    policy: &'a str,
    /// Whether the container has a readiness probe (else it is ready once started).
    readiness: bool,
}

impl probes::Listener for ProbeStatus<'_> {
    fn change(&self, change: Change) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let changed = set(self.state, self.slot, |s| {
                let before = (s.started, s.ready);
                match change {
                    Change::Started => {
                        s.started = true;
                        s.ready = !self.readiness;
                    }
                    Change::Ready(ready) => s.ready = ready,
                }
                before != (s.started, s.ready)
            });
            if changed == Some(true) {
                report(self.api, self.name, self.state, self.policy).await;
            }
        })
    }
}

/// How serving an HTTP component ended.
enum Served {
    /// The pod was deleted (drained, Completed) or the component did not start;
    /// its status is reported.
    Ended,
    /// A startup or liveness probe failed for good: stopped, to be restarted.
    Failed(probes::Kind),
}

/// Serve an HTTP component until the pod is deleted — then drain within the grace
/// period: a graceful stop, so the container ends Completed — or until `probes`
/// says a startup or liveness probe failed.
async fn serve(
    ctx: &PodCtx,
    slot: Slot,
    c: &Container,
    prepared: &Prepared,
    (stdout, stderr): (super::runtime::Output, super::runtime::Output),
    started: &str,
    probes: impl Future<Output = probes::Kind>,
) -> Served {
    let name = ctx.pod.metadata.name.clone().unwrap_or_default();
    let server = match HttpServer::new(
        ctx.k.runtime.clone(),
        &prepared.compiled,
        prepared.ctx.clone(),
        stdout,
        stderr,
    ) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            set(&ctx.state, slot, |s| {
                s.state = json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": e.to_string(), "startedAt": started, "finishedAt": now()}});
                s.ready = false;
            });
            report(&ctx.api, &name, &ctx.state, &ctx.policy).await;
            return Served::Ended;
        }
    };
    ctx.sandbox.serve(&http_ports(c), &server);
    tokio::select! {
        () = stopped(ctx.stopping.clone()) => {}
        probe = probes => {
            ctx.sandbox.unserve(&server);
            server.drain(Duration::ZERO).await;
            return Served::Failed(probe);
        }
    }
    let grace = (*ctx.stopping.borrow()).unwrap_or_default();
    if let Some(about) = Involved::of(&ctx.pod) {
        let message = format!("Stopping container {}", c.name);
        ctx.k
            .recorder
            .record(&about.container(&c.name), Kind::Normal, "Killing", message)
            .await;
    }
    ctx.sandbox.unserve(&server);
    tracing::debug!(pod = %name, container = %c.name, ?grace, "draining requests");
    server.drain(grace).await;
    tracing::debug!(pod = %name, container = %c.name, "drained");
    set(&ctx.state, slot, |s| {
        s.state = json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": now()}});
        s.ready = false;
    });
    report(&ctx.api, &name, &ctx.state, &ctx.policy).await;
    Served::Ended
}

/// Run a pod bound to this node until its containers are done (or forever, for
/// `restartPolicy: Always`). When the pod is being deleted (`stopping` gets its
/// grace period) the containers are stopped within that period and the pod is
/// deleted for good; aborted when the pod is gone.
pub async fn run(k: Arc<Kubelet>, pod: Pod, stopping: watch::Receiver<Option<Duration>>) {
    let Some(ns) = pod.metadata.namespace.clone() else {
        return;
    };
    let api: Api<Pod> = Api::namespaced(k.client.clone(), &ns);
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec
        .restart_policy
        .clone()
        .unwrap_or_else(|| "Always".into());
    // The pod's IP, held while it runs; `fieldRef: status.podIP` sees it too.
    let lease = k.pod_ips.allocate();
    let mut pod = pod;
    if let Some(l) = &lease {
        pod.status.get_or_insert_with(Default::default).pod_ip = Some(l.ip().to_string());
    }
    let state = Arc::new(Mutex::new(PodState::new(&pod)));
    let name = pod.metadata.name.clone().unwrap_or_default();
    let pod_dir = k.logs_dir.join(format!(
        "{ns}_{name}_{}",
        pod.metadata.uid.clone().unwrap_or_default()
    ));
    let volumes = Arc::new(Volumes::new(&pod, &pod_dir, k.host_path_root.as_deref()));
    let sandbox = Arc::new(Sandbox::new(&pod));
    // The pod's place in the network: its IP answers while the worker runs.
    let net = lease.as_ref().map(|l| {
        k.network.attach(
            std::net::IpAddr::V4(l.ip()),
            crate::net::PodInfo {
                namespace: ns.clone(),
                name: name.clone(),
            },
        )
    });
    if let Some(n) = &net {
        sandbox.attach(n.clone());
    }
    let _registered = k.sandboxes.open(&uid(&pod), sandbox.clone());
    // Volumes must be in place before any container starts; a missing ConfigMap,
    // Secret or bound claim, or a refused hostPath, keeps the pod in
    // ContainerCreating (with a FailedMount event) and is retried.
    let deleting = stopped(stopping.clone());
    tokio::pin!(deleting);
    loop {
        match volumes.sync(&k.client).await {
            Ok(()) => break,
            Err(e) => {
                volumes.report_failure(&k.recorder, &e).await;
                if let Ok(mut guard) = state.lock() {
                    let s = &mut *guard;
                    for c in s.init.iter_mut().chain(s.containers.iter_mut()) {
                        c.state = json!({"waiting": {"reason": "ContainerCreating", "message": e.to_string()}});
                    }
                }
                report(&api, &name, &state, &policy).await;
                tokio::select! {
                    () = tokio::time::sleep(CONFIG_RETRY) => {}
                    () = &mut deleting => {
                        super::pods::finish_deletion(&k.client, &pod).await;
                        return;
                    }
                }
            }
        }
    }
    // Keep projected volumes (configMap, secret, downwardAPI) current while the pod runs.
    let refresher = {
        let (volumes, client) = (volumes.clone(), k.client.clone());
        AbortOnDrop(
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(VOLUME_REFRESH).await;
                    if let Err(e) = volumes.sync(&client).await {
                        tracing::debug!(error = %e, "refreshing volumes");
                    }
                }
            })
            .abort_handle(),
        )
    };
    let ctx = Arc::new(PodCtx {
        k: k.clone(),
        pod,
        state: state.clone(),
        api: api.clone(),
        policy: policy.clone(),
        volumes: volumes.clone(),
        stopping: stopping.clone(),
        sandbox,
        net,
    });
    // Init containers first, one at a time, each until it succeeds.
    let init = async {
        for (i, c) in spec.init_containers.iter().flatten().enumerate() {
            let slot = Slot { init: true, i };
            if run_container(ctx.clone(), slot, c.clone()).await != Some(0) {
                return false;
            }
        }
        true
    };
    let initialized = tokio::select! {
        ok = init => ok,
        () = &mut deleting => false,
    };
    if !initialized {
        drop(refresher);
        if stopping.borrow().is_some() {
            super::pods::finish_deletion(&k.client, &ctx.pod).await;
        }
        return;
    }
    let tasks: Vec<_> = spec
        .containers
        .into_iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(run_container(ctx.clone(), Slot { init: false, i }, c)))
        .collect();
    // Container tasks die with this worker: abort them if it is aborted.
    let guards: Vec<_> = tasks
        .iter()
        .map(|t| AbortOnDrop(t.abort_handle()))
        .collect();
    let all = futures::future::join_all(tasks);
    tokio::pin!(all);
    tokio::select! {
        _ = &mut all => {}
        () = &mut deleting => {
            // Containers stop themselves when told; whatever is still busy when the
            // grace period ends (an image pull, say) is stopped hard.
            let grace = (*stopping.borrow()).unwrap_or_default();
            tracing::debug!(pod = %name, ?grace, "waiting for the containers to stop");
            if tokio::time::timeout(grace, &mut all).await.is_err() {
                tracing::debug!(pod = %name, ?grace, "containers still busy after the grace period");
            }
        }
    }
    drop(guards);
    drop(refresher);
    tracing::debug!(pod = %name, "containers ended");
    if stopping.borrow().is_some() {
        super::pods::finish_deletion(&k.client, &ctx.pod).await;
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Aborts a task when dropped, so a pod's container tasks stop with its worker.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
