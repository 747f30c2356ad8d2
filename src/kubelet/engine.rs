//! The process-wide wasmtime `Engine`: async, epoch interruption (one ticker
//! thread), and the pooling allocator sized for adapter-built components, so every
//! cluster and node in a process shares one instance pool.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances; a running guest yields to other tasks each tick.
const TICK: Duration = Duration::from_millis(10);

/// How many guests the instance pool holds at once, process-wide. Components
/// built with the preview-1 adapter instantiate 4 core modules with 1 linear
/// memory and 2 tables; a node holds up to 1000 pods, and `exec` and HTTP requests
/// take instances of their own.
const POOL_COMPONENTS: u32 = 4_000;
const POOL_CORE_INSTANCES: u32 = 5 * POOL_COMPONENTS;
/// Each memory slot reserves 4 GiB + guard of address space (never committed
/// until used), so 4000 slots take ~16 TiB of the 128 TiB x86-64 user space.
const POOL_MEMORIES: u32 = POOL_COMPONENTS;
const POOL_TABLES: u32 = 2 * POOL_COMPONENTS;

/// The process-wide engine: every cluster (and every node) in this process runs
/// its guests on it, so there is one instance pool and one epoch ticker.
pub(super) fn shared() -> Result<Engine, String> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let engine = pooled_engine().or_else(|e| {
                // Machines with a small address space (39-bit aarch64, `ulimit -v`)
                // cannot reserve the pool; instances then get their own mappings.
                tracing::warn!(error = %e, "no pooling allocator; allocating instances on demand");
                Engine::new(&base_config())
            });
            let engine = engine.map_err(|e| e.to_string())?;
            start_ticker(&engine).map_err(|e| e.to_string())?;
            Ok(engine)
        })
        .clone()
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true).wasm_component_model(true);
    config
}

fn pooled_engine() -> wasmtime::Result<Engine> {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_COMPONENTS)
        .total_core_instances(POOL_CORE_INSTANCES)
        .total_memories(POOL_MEMORIES)
        .total_tables(POOL_TABLES)
        .total_stacks(POOL_COMPONENTS);
    let mut config = base_config();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advance the engine's epoch every [`TICK`] for the life of the process.
fn start_ticker(engine: &Engine) -> std::io::Result<()> {
    let ticking = engine.weak();
    std::thread::Builder::new()
        .name("minke-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
}
