//! The kubelet's resource metrics (what cAdvisor and the summary API feed
//! metrics-server in a real cluster): every [`WINDOW`] it samples each running
//! container's CPU time and memory from its [`Usage`](super::runtime::Usage)
//! account, and this process's own CPU and resident memory for the node, and keeps
//! the rates over the last window for `metrics.k8s.io`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pods::Kubelet;
use crate::apiserver::nodes::{ContainerUsage, NodeUsage, PodUsage};

/// How often usage is sampled; CPU rates are averages over one window.
pub const WINDOW: Duration = Duration::from_secs(2);

/// Cumulative counters of the previous sample.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    containers: HashMap<(String, String), u64>,
    node_cpu_nanos: u64,
}

/// The latest rates.
#[derive(Default)]
pub struct Metrics {
    previous: Mutex<Previous>,
    pods: Mutex<Vec<PodUsage>>,
    node: Mutex<Option<NodeUsage>>,
}

impl Metrics {
    /// Every running pod's usage over the last window (pods seen in two samples).
    pub fn pods(&self) -> Vec<PodUsage> {
        self.pods.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// The node's usage over the last window.
    pub fn node(&self) -> Option<NodeUsage> {
        self.node.lock().ok().and_then(|n| n.clone())
    }

    /// Take a sample and update the rates.
    fn sample(&self, k: &Kubelet) {
        let Ok(mut prev) = self.previous.lock() else {
            return;
        };
        let now = Instant::now();
        let elapsed = prev.at.map(|at| now.duration_since(at).as_secs_f64());
        let timestamp = crate::api::clock::now();
        let rate = |delta: u64, secs: f64| (delta as f64 / secs.max(1e-3)) as u64;
        let mut seen = HashMap::new();
        let mut pods = Vec::new();
        for (uid, sb) in k.sandboxes.all_with_uids() {
            let mut containers = Vec::new();
            for (name, usage) in sb.usages() {
                let cpu = usage.cpu_nanos();
                let key = (uid.clone(), name.clone());
                if let (Some(secs), Some(before)) = (elapsed, prev.containers.get(&key)) {
                    containers.push(ContainerUsage {
                        name: name.clone(),
                        nanocores: rate(cpu.saturating_sub(*before), secs),
                        memory_bytes: usage.memory_bytes(),
                    });
                }
                seen.insert(key, cpu);
            }
            if let Some(secs) = elapsed
                && !containers.is_empty()
            {
                pods.push(PodUsage {
                    namespace: sb.namespace.clone(),
                    name: sb.name.clone(),
                    labels: sb.labels.clone(),
                    timestamp: timestamp.clone(),
                    window_seconds: secs,
                    containers,
                });
            }
        }
        let node_cpu = process_cpu_nanos().unwrap_or(0);
        let node = elapsed.map(|secs| NodeUsage {
            timestamp: timestamp.clone(),
            window_seconds: secs,
            nanocores: rate(node_cpu.saturating_sub(prev.node_cpu_nanos), secs),
            memory_bytes: process_rss_bytes().unwrap_or(0),
        });
        *prev = Previous {
            at: Some(now),
            containers: seen,
            node_cpu_nanos: node_cpu,
        };
        if let Ok(mut p) = self.pods.lock() {
            *p = pods;
        }
        if let Ok(mut n) = self.node.lock() {
            *n = node;
        }
    }
}

/// Sample every [`WINDOW`] until the kubelet stops.
pub async fn run(k: Arc<Kubelet>) {
    loop {
        k.metrics.sample(&k);
        tokio::time::sleep(WINDOW).await;
    }
}

/// CPU time of this process (user + system), from /proc/self/stat.
fn process_cpu_nanos() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux ABI we run on.
    Some(ticks * 10_000_000)
}

/// Resident memory of this process, from /proc/self/statm (4 KiB pages).
fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_resident_memory() {
        assert!(process_rss_bytes().is_some_and(|b| b > 1 << 20));
        assert!(process_cpu_nanos().is_some());
    }
}
