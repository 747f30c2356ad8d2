//! The wasm engine: one wasmtime `Engine` (async, epoch interruption so long-running
//! guests yield), compiled components cached by content digest, and running a
//! `wasi:cli/command` component with its argv, env, stdio and memory limit.
//!
//! Guests get only what the spec grants: no preopened dirs, no inherited env, args or
//! stdio, no network (sockets come with the virtual pod network).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Module, Store};
use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Runtime failures (compiling or instantiating; a guest's own failure is an [`Exit`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine could not be configured.
    #[error("configuring the wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a valid component.
    #[error("compiling the component: {0}")]
    Compile(String),
    /// Linking or instantiating failed (e.g. an import the runtime does not provide).
    #[error("instantiating the component: {0}")]
    Instantiate(String),
}

/// Shorthand for runtime results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a guest run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `main` returned or called `exit(code)`.
    Code(i32),
    /// The guest needed more memory than its limit allowed.
    OomKilled,
    /// The guest trapped (the message names the trap).
    Trap(String),
}

impl Exit {
    /// The exit code Kubernetes reports: the code, 137 for OOMKilled, 1 for a trap.
    pub fn code(&self) -> i32 {
        match self {
            Exit::Code(c) => *c,
            Exit::OomKilled => 137,
            Exit::Trap(_) => 1,
        }
    }
}

/// A guest's stdin (a pipe for `kubectl exec`; none for containers).
pub type Stdin = Box<dyn StdinStream + Sync>;
/// Where a guest's stdout or stderr goes (a log file, or an exec stream).
pub type Output = Box<dyn StdoutStream + Sync>;

/// What one container run gets.
pub struct Spec {
    /// argv, program name first.
    pub argv: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// stdin, if any (else the guest reads end-of-file).
    pub stdin: Option<Stdin>,
    /// Where stdout goes.
    pub stdout: Output,
    /// Where stderr goes.
    pub stderr: Output,
    /// The initial working directory (`workingDir`).
    pub cwd: Option<String>,
    /// Most linear memory the guest may use, in bytes.
    pub memory_limit: Option<usize>,
    /// CPU limit in millicores: the guest runs at most that share of one core.
    pub cpu_limit: Option<u64>,
    /// Where the run's CPU time and memory are accounted (for metrics).
    pub usage: Arc<Usage>,
    /// Host dirs the guest sees (its volumes); nothing else of the host is visible.
    pub mounts: Vec<super::volumes::Mount>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("argv", &self.argv)
            .field("memory_limit", &self.memory_limit)
            .field("cpu_limit", &self.cpu_limit)
            .finish_non_exhaustive()
    }
}

/// A container's resource use: CPU time (cumulative) and linear memory (current),
/// shared across its restarts; the kubelet's metrics read it.
#[derive(Debug, Default)]
pub struct Usage {
    cpu_nanos: AtomicU64,
    memory_bytes: AtomicU64,
}

impl Usage {
    /// CPU time the guest has used, in nanoseconds (all runs).
    pub fn cpu_nanos(&self) -> u64 {
        self.cpu_nanos.load(Ordering::Relaxed)
    }

    /// Linear memory the running guest holds, in bytes (0 when not running).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.load(Ordering::Relaxed)
    }
}

/// Denies memory growth past the limit (all of a guest's memories together),
/// remembers that it did, and accounts what the guest holds.
struct MemoryLimit {
    max: Option<usize>,
    hit: bool,
    held: usize,
    usage: Arc<Usage>,
}

impl MemoryLimit {
    fn new(max: Option<usize>, usage: Arc<Usage>) -> MemoryLimit {
        usage.memory_bytes.store(0, Ordering::Relaxed);
        MemoryLimit {
            max,
            hit: false,
            held: 0,
            usage,
        }
    }
}

impl Drop for MemoryLimit {
    fn drop(&mut self) {
        // The instance is gone with its store: it holds no memory any more.
        self.usage.memory_bytes.store(0, Ordering::Relaxed);
    }
}

impl wasmtime::ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let held = self.held.saturating_add(desired.saturating_sub(current));
        if self.max.is_some_and(|m| held > m) {
            self.hit = true;
            return Ok(false);
        }
        self.held = held;
        self.usage
            .memory_bytes
            .store(u64::try_from(held).unwrap_or(u64::MAX), Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Per-instance state of a wasip1 core module.
struct CoreGuest {
    wasi: WasiP1Ctx,
    limit: MemoryLimit,
}

/// A compiled image: a component, or a wasip1 core module (which keeps exact exit
/// codes: the preview-1 adapter of components can only say success or failure).
#[derive(Clone)]
pub enum Compiled {
    /// A WASI 0.2 component.
    Component(Component),
    /// A wasip1 core module.
    Module(Module),
}

/// Whether bytes are a core module (`\0asm` version 1) rather than a component.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&[1, 0, 0, 0])
}

/// Per-instance state.
struct Guest {
    wasi: WasiCtx,
    table: ResourceTable,
    limit: MemoryLimit,
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// How often the epoch advances; a running guest yields to other tasks each tick.
const TICK: Duration = Duration::from_millis(10);

/// The engine, its linker and the compiled-component cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Guest>,
    core_linker: wasmtime::Linker<CoreGuest>,
    cache: Mutex<HashMap<String, Compiled>>,
    stop_ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The sha256 of component bytes, as images are addressed.
pub fn digest(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

impl Runtime {
    /// A runtime with its own engine and epoch ticker thread.
    pub fn new() -> Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true).wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let mut core_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut core_linker, |g: &mut CoreGuest| &mut g.wasi)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (ticking, stop) = (engine.weak(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("minke-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    match ticking.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Runtime {
            engine,
            linker,
            core_linker,
            cache: Mutex::new(HashMap::new()),
            stop_ticker,
        })
    }

    /// Compile `bytes` (or reuse what was compiled from the same digest).
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled> {
        let key = digest(bytes);
        if let Some(c) = self.cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let compiled = if is_core_module(bytes) {
            Module::new(&self.engine, bytes).map(Compiled::Module)
        } else {
            Component::new(&self.engine, bytes).map(Compiled::Component)
        };
        let c = compiled.map_err(|e| Error::Compile(format!("{e:#}")))?;
        if let Ok(mut m) = self.cache.lock() {
            m.insert(key, c.clone());
        }
        Ok(c)
    }

    /// Run a compiled image to completion: a component's `wasi:cli/run`, or a core
    /// module's `_start`.
    pub async fn run(&self, compiled: &Compiled, spec: Spec) -> Result<Exit> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&spec.argv)
            .envs(&spec.env)
            .stdout(spec.stdout)
            .stderr(spec.stderr);
        if let Some(stdin) = spec.stdin {
            builder.stdin(stdin);
        }
        if let Some(cwd) = &spec.cwd {
            builder.initial_cwd(cwd);
        }
        for m in &spec.mounts {
            let perms = if m.read_only {
                wasmtime_wasi::FsPerms::ReadOnly
            } else {
                wasmtime_wasi::FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&m.host, &m.guest, perms)
                .map_err(|e| {
                    Error::Instantiate(format!(
                        "mounting {} at {}: {e:#}",
                        m.host.display(),
                        m.guest
                    ))
                })?;
        }
        let limit = MemoryLimit::new(spec.memory_limit, spec.usage.clone());
        let (usage, cpu_limit) = (spec.usage.clone(), spec.cpu_limit);
        match compiled {
            Compiled::Component(component) => {
                let guest = Guest {
                    wasi: builder.build(),
                    table: ResourceTable::new(),
                    limit,
                };
                let mut store = Store::new(&self.engine, guest);
                store.limiter(|g| &mut g.limit);
                store.epoch_deadline_async_yield_and_update(1);
                let command = Command::instantiate_async(&mut store, component, &self.linker)
                    .await
                    .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
                let outcome = Metered::new(
                    Box::pin(command.wasi_cli_run().call_run(&mut store)),
                    usage,
                    cpu_limit,
                )
                .await;
                let oom = store.data().limit.hit;
                Ok(match outcome {
                    Ok(Ok(())) => Exit::Code(0),
                    Ok(Err(())) => Exit::Code(1),
                    Err(e) => failure(&e, oom),
                })
            }
            Compiled::Module(module) => {
                let mut store = Store::new(
                    &self.engine,
                    CoreGuest {
                        wasi: builder.build_p1(),
                        limit,
                    },
                );
                store.limiter(|g| &mut g.limit);
                store.epoch_deadline_async_yield_and_update(1);
                let instance = self
                    .core_linker
                    .instantiate_async(&mut store, module)
                    .await
                    .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
                let outcome =
                    Metered::new(Box::pin(start.call_async(&mut store, ())), usage, cpu_limit)
                        .await;
                let oom = store.data().limit.hit;
                Ok(match outcome {
                    Ok(()) => Exit::Code(0),
                    Err(e) => failure(&e, oom),
                })
            }
        }
    }
}

/// CPU limits are enforced over periods of this length, as the kernel's CFS quota.
const CPU_PERIOD: Duration = Duration::from_millis(100);

/// Runs a guest's future, charging the time spent polling it (the guest runs only
/// inside `poll`, at most one epoch tick at a time) to its [`Usage`], and with a CPU
/// limit, parking it for the rest of the period once its quota is used.
struct Metered<'a, T> {
    run: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
    usage: Arc<Usage>,
    quota: Option<Duration>,
    period_start: Instant,
    used_in_period: Duration,
    throttle: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a, T> Metered<'a, T> {
    fn new(
        run: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
        usage: Arc<Usage>,
        millicores: Option<u64>,
    ) -> Self {
        let quota = millicores.map(|m| CPU_PERIOD.mul_f64(m.max(1) as f64 / 1000.0));
        Metered {
            run,
            usage,
            quota,
            period_start: Instant::now(),
            used_in_period: Duration::ZERO,
            throttle: None,
        }
    }
}

impl<T> Future for Metered<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        if let Some(sleep) = self.throttle.as_mut() {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.throttle = None;
        }
        let start = Instant::now();
        if start.duration_since(self.period_start) >= CPU_PERIOD {
            self.period_start = start;
            self.used_in_period = Duration::ZERO;
        }
        let out = self.run.as_mut().poll(cx);
        let spent = start.elapsed();
        self.usage.cpu_nanos.fetch_add(
            u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.used_in_period += spent;
        if out.is_pending()
            && let Some(quota) = self.quota
            && self.used_in_period >= quota
        {
            // Over quota: sit out the rest of this period (and of any periods the
            // overshoot borrowed from), then run again.
            let owed = self.used_in_period.as_secs_f64() / quota.as_secs_f64();
            let resume = self.period_start + CPU_PERIOD.mul_f64(owed.floor().max(1.0));
            self.period_start = resume;
            self.used_in_period = Duration::ZERO;
            let mut sleep = Box::pin(tokio::time::sleep_until(resume.into()));
            if sleep.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            } else {
                self.throttle = Some(sleep);
            }
        }
        out
    }
}

/// A log file as a guest's stdout or stderr.
pub fn log_file(path: &std::path::Path) -> Output {
    match std::fs::File::create(path) {
        Ok(f) => Box::new(wasmtime_wasi::cli::OutputFile::new(f)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot create the log file");
            Box::new(tokio::io::empty())
        }
    }
}

/// What an error out of a guest run means: an explicit exit, running out of memory
/// (an allocation the limit refused, whatever trap followed), or a trap.
fn failure(e: &wasmtime::Error, oom: bool) -> Exit {
    match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) if !(oom && exit.0 != 0) => Exit::Code(exit.0),
        _ if oom => Exit::OomKilled,
        _ => Exit::Trap(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::images::builtin;

    struct Outputs {
        _dir: tempfile::TempDir,
        out: std::path::PathBuf,
        err: std::path::PathBuf,
    }

    fn spec(argv: &[&str], env: &[(&str, &str)], memory_limit: Option<usize>) -> (Spec, Outputs) {
        let dir = tempfile::tempdir().expect("tmp");
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let spec = Spec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            stdin: None,
            stdout: log_file(&out),
            stderr: log_file(&err),
            cwd: None,
            memory_limit,
            cpu_limit: None,
            usage: Arc::default(),
            mounts: Vec::new(),
        };
        (
            spec,
            Outputs {
                _dir: dir,
                out,
                err,
            },
        )
    }

    async fn run(
        image: &str,
        argv: &[&str],
        env: &[(&str, &str)],
        limit: Option<usize>,
    ) -> (Exit, String, String) {
        let rt = Runtime::new().expect("runtime");
        let compiled = rt
            .compile(builtin(image).expect("image"))
            .expect("compiles");
        let (spec, files) = spec(argv, env, limit);
        let exit = rt.run(&compiled, spec).await.expect("runs");
        let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
        (exit, read(&files.out), read(&files.err))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hello_prints_its_args_and_only_the_env_it_was_given() {
        let (exit, out, _) = run(
            "minke/hello",
            &["hello", "a", "b"],
            &[("GREETING", "hi")],
            None,
        )
        .await;
        assert_eq!(exit, Exit::Code(0));
        assert!(out.contains("args: a b"), "{out}");
        assert!(out.contains("GREETING=hi"), "{out}");
        assert!(!out.contains("PATH="), "no host env leaks in: {out}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_exit_code_is_reported_as_is() {
        let (exit, out, err) = run("minke/crasher", &["crasher", "3", "0"], &[], None).await;
        assert_eq!(exit, Exit::Code(3));
        assert!(
            out.contains("exiting with 3") && err.contains("exit 3"),
            "{out} / {err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_guest_over_its_memory_limit_is_oom_killed() {
        let (exit, out, _) = run("minke/hog", &["hog", "4"], &[], Some(32 << 20)).await;
        assert_eq!(
            exit,
            Exit::OomKilled,
            "stdout lines: {}",
            out.lines().count()
        );
        assert_eq!(exit.code(), 137);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn toolbox_applets_run_by_first_argument_and_cannot_see_host_files() {
        let (exit, out, _) = run(
            "minke/toolbox",
            &["toolbox", "echo", "hi", "there"],
            &[],
            None,
        )
        .await;
        assert_eq!((exit, out.as_str()), (Exit::Code(0), "hi there\n"));
        let (exit, _, err) = run("minke/toolbox", &["cat", "/etc/passwd"], &[], None).await;
        assert_eq!(
            exit,
            Exit::Code(1),
            "no preopened dirs: the host filesystem is invisible"
        );
        assert!(err.contains("cat: /etc/passwd"), "{err}");
    }

    #[test]
    fn the_same_bytes_compile_once() {
        let rt = Runtime::new().expect("runtime");
        let bytes = builtin("minke/hello").expect("image");
        rt.compile(bytes).expect("first");
        rt.compile(bytes).expect("cached");
        assert_eq!(rt.cache.lock().map(|m| m.len()).unwrap_or(0), 1);
        assert!(digest(bytes).starts_with("sha256:"));
    }
}
