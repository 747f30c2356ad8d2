//! Running guests on the process-wide engine ([`super::engine`]: async, pooling allocator,
//! epoch interruption so long-running guests yield), compiled components cached by
//! content digest, and running a `wasi:cli/command` component with its argv, env,
//! stdio and memory limit.
//!
//! Guests get only what the spec grants: no preopened dirs, no inherited env, args or
//! stdio; their sockets, name lookups and outgoing HTTP go through the pod's place
//! in the virtual network ([`crate::net`]), and nowhere without one.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Module, Store};
use wasmtime_wasi::cli::{StdinStream, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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

pub use super::limits::Usage;
use super::limits::{MemoryLimit, Metered};

/// A guest's stdin (a pipe for `kubectl exec`; none for containers).
pub type Stdin = Box<dyn StdinStream + Sync>;
/// Where a guest's stdout or stderr goes (a log file, or an exec stream).
pub type Output = Box<dyn StdoutStream + Sync>;

/// What every instance of a container gets, whatever its stdio.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// argv, program name first.
    pub argv: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// The initial working directory (`workingDir`).
    pub cwd: Option<String>,
    /// Most linear memory an instance may use, in bytes.
    pub memory_limit: Option<usize>,
    /// CPU limit in millicores: the container runs at most that share of one core.
    pub cpu_limit: Option<u64>,
    /// Where CPU time and memory are accounted (for metrics).
    pub usage: Arc<Usage>,
    /// Host dirs the guest sees (its volumes); nothing else of the host is visible.
    pub mounts: Vec<super::volumes::Mount>,
    /// The pod's network (sockets, name lookups, outgoing HTTP).
    pub net: Option<crate::net::PodNet>,
}

/// One run: the context plus stdio.
pub struct Spec {
    /// What the instance gets.
    pub ctx: Context,
    /// stdin, if any (else the guest reads end-of-file).
    pub stdin: Option<Stdin>,
    /// Where stdout goes.
    pub stdout: Output,
    /// Where stderr goes.
    pub stderr: Output,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

/// Per-instance state of a wasip1 core module.
pub struct CoreGuest {
    wasi: WasiP1Ctx,
    limit: MemoryLimit,
}

/// A compiled image: a component, or a wasip1 core module (which keeps exact exit
/// codes: the preview-1 adapter of components can only say success or failure).
#[derive(Clone)]
pub enum Compiled {
    /// A WASI 0.2 component, with its command pre-instantiation once made.
    Component(Component, Arc<OnceLock<CommandPre<Guest>>>),
    /// A wasip1 core module, with its pre-instantiation once made.
    Module(Module, Arc<OnceLock<wasmtime::InstancePre<CoreGuest>>>),
}

impl Compiled {
    fn component(c: Component) -> Compiled {
        Compiled::Component(c, Arc::default())
    }

    fn module(m: Module) -> Compiled {
        Compiled::Module(m, Arc::default())
    }
}

/// Whether bytes are a core module (`\0asm` version 1) rather than a component.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&[1, 0, 0, 0])
}

/// Per-instance state of a component.
pub struct Guest {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limit: MemoryLimit,
    net: Option<crate::net::PodNet>,
    hooks: crate::net::http::PodHttp,
}

impl WasiHttpView for Guest {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl WasiView for Guest {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The engine and its linkers.
struct Parts {
    engine: Engine,
    linker: Linker<Guest>,
    core_linker: wasmtime::Linker<CoreGuest>,
}

impl Parts {
    fn new() -> Result<Parts> {
        let engine = super::engine::shared().map_err(Error::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        // TCP and name lookups over the pod network, in place of host sockets.
        crate::net::sockets::add_to_linker(&mut linker, |g: &mut Guest| {
            crate::net::sockets::PodSockets {
                table: &mut g.table,
                pod: g.net.as_ref(),
            }
        })
        .map_err(|e| Error::Engine(e.to_string()))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| Error::Engine(e.to_string()))?;
        let mut core_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut core_linker, |g: &mut CoreGuest| &mut g.wasi)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Parts {
            engine,
            linker,
            core_linker,
        })
    }
}

/// The engine, its linkers and the compiled-component cache. The engine is made
/// on a thread of its own (reserving the instance pool takes tens of
/// milliseconds), so a cluster is ready before it is; the first compile waits.
pub struct Runtime {
    parts: Arc<OnceLock<std::result::Result<Parts, String>>>,
    cache: Mutex<HashMap<String, Compiled>>,
    /// Where compiled code is kept across restarts (by image digest and engine):
    /// the root given, and the per-engine dir under it once known.
    disk_root: Option<PathBuf>,
    disk: OnceLock<Option<PathBuf>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
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
    /// A runtime on the process-wide engine, with its own linkers and cache.
    pub fn new() -> Result<Runtime> {
        let parts: Arc<OnceLock<std::result::Result<Parts, String>>> = Arc::default();
        let making = parts.clone();
        std::thread::Builder::new()
            .name("minke-engine".into())
            .spawn(move || {
                let _ = making.set(Parts::new().map_err(|e| e.to_string()));
            })
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Runtime {
            parts,
            cache: Mutex::new(HashMap::new()),
            disk_root: None,
            disk: OnceLock::new(),
        })
    }

    /// The engine and linkers, once made.
    fn parts(&self) -> Result<&Parts> {
        self.parts
            .wait()
            .as_ref()
            .map_err(|e| Error::Engine(e.clone()))
    }

    /// Keep compiled code under `dir` (a subdir per engine configuration), so a
    /// restart or another cluster on this machine skips compiling.
    pub fn with_disk_cache(mut self, dir: &Path) -> Runtime {
        self.disk_root = Some(dir.to_path_buf());
        self
    }

    /// The per-engine cache dir, made private on first use.
    fn disk(&self) -> Option<&PathBuf> {
        self.disk
            .get_or_init(|| {
                let root = self.disk_root.as_ref()?;
                let engine = &self.parts().ok()?.engine;
                let mut h = std::hash::DefaultHasher::new();
                engine.precompile_compatibility_hash().hash(&mut h);
                let dir = root.join(format!("{:016x}", h.finish()));
                match std::fs::create_dir_all(&dir).and_then(|()| private(&dir)) {
                    Ok(()) => Some(dir),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "no module cache on disk");
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Compiled code from the disk cache, if this engine wrote it.
    fn load_cached(&self, path: &Path, core: bool) -> Option<Compiled> {
        if !path.exists() {
            return None;
        }
        let engine = &self.parts().ok()?.engine;
        // SAFETY: the file was written by `serialize` of an engine with the same
        // compatibility hash (it names the directory), under our own data dir, and
        // is only ever replaced by an atomic rename; wasmtime still checks its
        // header and version.
        let loaded = unsafe {
            if core {
                Module::deserialize_file(engine, path).map(Compiled::module)
            } else {
                Component::deserialize_file(engine, path).map(Compiled::component)
            }
        };
        loaded
            .inspect_err(
                |e| tracing::debug!(path = %path.display(), error = %e, "stale module cache entry"),
            )
            .ok()
    }

    fn store_cached(path: &Path, compiled: &Compiled) {
        let bytes = match compiled {
            Compiled::Module(m, _) => m.serialize(),
            Compiled::Component(c, _) => c.serialize(),
        };
        // A name no other writer (thread or process) uses, then an atomic rename.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        let written = bytes.and_then(|b| {
            std::fs::write(&tmp, b)?;
            std::fs::rename(&tmp, path)?;
            Ok(())
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(path = %path.display(), error = %e, "caching compiled code");
        }
    }

    /// Compile `bytes` (or reuse what was compiled from the same digest, in memory
    /// or in the disk cache).
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled> {
        let key = digest(bytes);
        if let Some(c) = self.cache.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let core = is_core_module(bytes);
        let engine = &self.parts()?.engine;
        let path = self
            .disk()
            .map(|d| d.join(key.trim_start_matches("sha256:")));
        let cached = path.as_deref().and_then(|p| self.load_cached(p, core));
        let c = match cached {
            Some(c) => c,
            None => {
                let compiled = if core {
                    Module::new(engine, bytes).map(Compiled::module)
                } else {
                    Component::new(engine, bytes).map(Compiled::component)
                };
                let c = compiled.map_err(|e| Error::Compile(format!("{e:#}")))?;
                if let Some(p) = &path {
                    Self::store_cached(p, &c);
                }
                c
            }
        };
        if let Ok(mut m) = self.cache.lock() {
            m.insert(key, c.clone());
        }
        Ok(c)
    }

    /// The WASI context of an instance: its argv, env, cwd and mounts, and stdio.
    fn wasi(
        ctx: &Context,
        stdin: Option<Stdin>,
        stdout: Output,
        stderr: Output,
    ) -> Result<WasiCtxBuilder> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .args(&ctx.argv)
            .envs(&ctx.env)
            .stdout(stdout)
            .stderr(stderr);
        if let Some(stdin) = stdin {
            builder.stdin(stdin);
        }
        if let Some(cwd) = &ctx.cwd {
            builder.initial_cwd(cwd);
        }
        for m in &ctx.mounts {
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
        Ok(builder)
    }

    /// A store for one component instance, limited and metered as `ctx` says.
    pub(super) fn store(&self, ctx: &Context, wasi: WasiCtx) -> Result<Store<Guest>> {
        let guest = Guest {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limit: MemoryLimit::new(ctx.memory_limit, ctx.usage.clone()),
            net: ctx.net.clone(),
            hooks: crate::net::http::PodHttp {
                pod: ctx.net.clone(),
            },
        };
        let mut store = Store::new(&self.parts()?.engine, guest);
        store.limiter(|g| &mut g.limit);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }

    /// Whether a compiled image is an HTTP component (it exports
    /// `wasi:http/incoming-handler`): it is served rather than run.
    pub fn is_http(&self, compiled: &Compiled) -> bool {
        let Compiled::Component(c, _) = compiled else {
            return false;
        };
        c.component_type()
            .exports(c.engine())
            .any(|(name, _)| name.starts_with("wasi:http/incoming-handler@"))
    }

    /// Pre-instantiate an HTTP component for serving.
    pub(super) fn proxy(&self, component: &Component) -> Result<ProxyPre<Guest>> {
        self.parts()?
            .linker
            .instantiate_pre(component)
            .and_then(ProxyPre::new)
            .map_err(|e| Error::Instantiate(format!("{e:#}")))
    }

    /// The WASI context of one instance of a served component.
    pub(super) fn serving_wasi(ctx: &Context, stdout: Output, stderr: Output) -> Result<WasiCtx> {
        Ok(Self::wasi(ctx, None, stdout, stderr)?.build())
    }

    /// Run a compiled image to completion: a component's `wasi:cli/run`, or a core
    /// module's `_start`.
    pub async fn run(&self, compiled: &Compiled, spec: Spec) -> Result<Exit> {
        let Spec {
            ctx,
            stdin,
            stdout,
            stderr,
        } = spec;
        let mut builder = Self::wasi(&ctx, stdin, stdout, stderr)?;
        let (usage, cpu_limit) = (ctx.usage.clone(), ctx.cpu_limit);
        match compiled {
            Compiled::Component(component, pre) => {
                let pre = match pre.get() {
                    Some(p) => p.clone(),
                    None => {
                        let p = self
                            .parts()?
                            .linker
                            .instantiate_pre(component)
                            .and_then(CommandPre::new)
                            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
                        pre.get_or_init(|| p).clone()
                    }
                };
                let mut store = self.store(&ctx, builder.build())?;
                let command = pre
                    .instantiate_async(&mut store)
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
            Compiled::Module(module, pre) => {
                let pre = match pre.get() {
                    Some(p) => p.clone(),
                    None => {
                        let p = self
                            .parts()?
                            .core_linker
                            .instantiate_pre(module)
                            .map_err(|e| Error::Instantiate(format!("{e:#}")))?;
                        pre.get_or_init(|| p).clone()
                    }
                };
                let mut store = Store::new(
                    module.engine(),
                    CoreGuest {
                        wasi: builder.build_p1(),
                        limit: MemoryLimit::new(ctx.memory_limit, ctx.usage.clone()),
                    },
                );
                store.limiter(|g| &mut g.limit);
                store.epoch_deadline_async_yield_and_update(1);
                let instance = pre
                    .instantiate_async(&mut store)
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

/// Compiled code is trusted when loaded, so its dir must be ours alone: owned by
/// this user and writable by nobody else (made so if we own it).
fn private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for d in dir.ancestors().take(2) {
        let meta = std::fs::metadata(d)?;
        if meta.uid() != me {
            return Err(std::io::Error::other(format!(
                "{} belongs to another user",
                d.display()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
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
            ctx: Context {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                memory_limit,
                ..Context::default()
            },
            stdin: None,
            stdout: log_file(&out),
            stderr: log_file(&err),
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_runtime_in_the_process_shares_one_engine_and_its_pool() {
        let (a, b) = (
            Runtime::new().expect("runtime"),
            Runtime::new().expect("runtime"),
        );
        // Code compiled by one cluster's runtime runs on another's: one engine.
        let compiled = a
            .compile(builtin("minke/hello").expect("image"))
            .expect("compiles");
        let runs = (0..16).map(|i| {
            let (spec, files) = spec(&["hello", &i.to_string()], &[], None);
            let rt = if i % 2 == 0 { &a } else { &b };
            let compiled = compiled.clone();
            async move {
                let files = files; // the whole struct, so its temp dir lives on
                let exit = rt.run(&compiled, spec).await.expect("runs");
                (
                    exit,
                    std::fs::read_to_string(&files.out).unwrap_or_default(),
                )
            }
        });
        for (i, (exit, out)) in futures::future::join_all(runs)
            .await
            .into_iter()
            .enumerate()
        {
            assert_eq!(exit, Exit::Code(0));
            assert!(out.contains(&format!("args: {i}")), "run {i}: {out:?}");
        }
    }

    #[test]
    fn compiled_code_is_reused_from_the_disk_cache() {
        let dir = tempfile::tempdir().expect("tmp");
        let bytes = builtin("minke/hello").expect("image");
        let first = Runtime::new().expect("runtime").with_disk_cache(dir.path());
        first.compile(bytes).expect("compiles");
        let cached: Vec<_> = std::fs::read_dir(first.disk().expect("disk cache"))
            .expect("cache dir")
            .flatten()
            .collect();
        assert_eq!(cached.len(), 1, "one entry per image digest");
        let second = Runtime::new().expect("runtime").with_disk_cache(dir.path());
        let path = second
            .disk()
            .expect("disk cache")
            .join(digest(bytes).trim_start_matches("sha256:"));
        assert!(
            second.load_cached(&path, false).is_some(),
            "a new engine loads it"
        );
        // A corrupt entry is not trusted: it is compiled again and replaced.
        std::fs::write(&path, b"garbage").expect("corrupt");
        assert!(second.load_cached(&path, false).is_none());
        second.compile(bytes).expect("recompiles");
        assert!(second.load_cached(&path, false).is_some());
    }

    #[test]
    fn the_cache_dir_is_made_private_to_this_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let open = dir.path().join("cache");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let rt = Runtime::new().expect("runtime").with_disk_cache(&open);
        assert!(rt.disk().is_some());
        let mode = std::fs::metadata(&open).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
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
