//! The garbage collector: deletes objects whose owners are gone, and carries out the
//! foreground and orphan deletions the API server marks with finalizers.
//!
//! As in Kubernetes, it is an ordinary API client. One metadata-only watch per
//! storage of every type that can be listed, watched and deleted (Events aside)
//! feeds the dependency graph (`graph`); graph changes queue work (`queue`); workers
//! carry it out against the API (`actions`), at most [`WORKERS`] at a time, in a `JoinSet`
//! this loop owns. Work waits until the first list of every type is in, so a restart
//! rebuilds the whole graph before judging anything, and then collects the
//! dependents whose owners vanished while the cluster was down. A relist that misses
//! an object counts as its deletion. Types come and go with CustomResourceDefinitions:
//! the registry is looked at again on every CRD change and every few seconds.

mod actions;
mod graph;
mod queue;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{BoxStream, SelectAll};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::actions::{Actions, Outcome};
use self::graph::{Graph, Identity, Kind, Plan, Uid, Work};
use self::queue::Queue;
use crate::api::registry::Registry;

/// How many pieces of work run against the API at once.
pub const WORKERS: usize = 8;

/// How often the registry is looked at again for new or removed types.
const RESCAN: Duration = Duration::from_secs(5);

/// How long work waits for the first lists before starting without the stragglers.
const SYNC_PATIENCE: Duration = Duration::from_secs(30);

/// Types the collector leaves alone (Kubernetes' `DefaultIgnoredResources`).
const IGNORED: [(&str, &str); 2] = [("", "events"), ("events.k8s.io", "events")];

/// What the collector needs.
pub(crate) struct Context {
    /// The in-process API client.
    pub client: kube::Client,
    /// The served types, to watch and to resolve owner kinds.
    pub registry: Arc<Registry>,
}

/// One watch event, or a watch failure (retried after a back-off).
type WatchResult = Result<Event<PartialObjectMeta<DynamicObject>>, watcher::Error>;

/// A watch item tagged with the type it is about.
type Item = (Arc<Kind>, WatchResult);

/// The types to watch: one per storage among those that can be listed, watched and
/// deleted.
pub(super) fn watchable(registry: &Registry) -> Vec<Arc<Kind>> {
    let mut seen = HashSet::new();
    let all = registry.all();
    // A storage's own version first (autoscaling/v2 before v1).
    let mut types: Vec<_> = all.iter().collect();
    types.sort_by_key(|t| t.storage_version.is_some());
    types
        .into_iter()
        .filter(|t| {
            ["list", "watch", "delete"]
                .iter()
                .all(|v| t.verbs.contains(v))
        })
        .filter(|t| !IGNORED.contains(&(t.group.as_str(), t.resource.as_str())))
        .filter(|t| seen.insert(t.storage.clone()))
        .map(|t| Arc::new(Kind::of(t)))
        .collect()
}

/// One running watch.
struct Watch {
    kind: Arc<Kind>,
    stop: CancellationToken,
}

/// The collector's state, owned by its loop.
struct Collector {
    client: kube::Client,
    registry: Arc<Registry>,
    actions: Arc<Actions>,
    graph: Graph,
    queue: Queue<Work>,
    streams: SelectAll<BoxStream<'static, Item>>,
    watches: HashMap<String, Watch>,
    /// Storages being relisted, with the uids listed so far.
    relisting: HashMap<String, HashSet<Uid>>,
    /// Storages whose first list is not in yet; work waits while any of those
    /// watched from the start is missing.
    unsynced: HashSet<String>,
    /// Whether work may start.
    synced: bool,
    started: Instant,
    jobs: JoinSet<(Work, actions::Result<Outcome>)>,
    running: HashMap<tokio::task::Id, Work>,
}

/// Run the collector until the cluster shuts down (the caller drops this future,
/// which aborts the workers with their `JoinSet`).
pub(crate) async fn run(ctx: Context) {
    let mut c = Collector {
        actions: Arc::new(Actions::new(ctx.client.clone(), ctx.registry.clone())),
        client: ctx.client,
        registry: ctx.registry,
        graph: Graph::default(),
        queue: Queue::default(),
        streams: SelectAll::new(),
        watches: HashMap::new(),
        relisting: HashMap::new(),
        unsynced: HashSet::new(),
        synced: false,
        started: Instant::now(),
        jobs: JoinSet::new(),
        running: HashMap::new(),
    };
    c.rescan();
    c.unsynced = c.watches.keys().cloned().collect();
    let mut rescan = tokio::time::interval(RESCAN);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        c.dispatch();
        let due = c.queue.next_due();
        tokio::select! {
            Some((kind, event)) = c.streams.next(), if !c.streams.is_empty() => {
                c.on_event(&kind, event);
            }
            Some(joined) = c.jobs.join_next_with_id(), if !c.jobs.is_empty() => c.on_done(joined),
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                c.queue.promote(Instant::now());
            }
            _ = rescan.tick() => c.rescan(),
        }
    }
}

impl Collector {
    /// Start watches for new types and stop those of types no longer served (their
    /// objects went with them).
    fn rescan(&mut self) {
        let want = watchable(&self.registry);
        let stale: Vec<String> = self
            .watches
            .iter()
            .filter(|(storage, w)| {
                !want
                    .iter()
                    .any(|k| k.storage == **storage && **k == *w.kind)
            })
            .map(|(storage, _)| storage.clone())
            .collect();
        for storage in stale {
            if let Some(w) = self.watches.remove(&storage) {
                w.stop.cancel();
            }
            self.relisting.remove(&storage);
            self.unsynced.remove(&storage);
            if !want.iter().any(|k| k.storage == storage) {
                tracing::debug!(%storage, "garbage collector stops watching a removed type");
                for uid in self.graph.uids_in(&storage) {
                    self.forget(&uid);
                }
            }
        }
        for kind in want {
            if !self.watches.contains_key(&kind.storage) {
                self.watch(kind);
            }
        }
        if !self.synced && self.started.elapsed() > SYNC_PATIENCE {
            tracing::warn!(unsynced = ?self.unsynced, "garbage collector starts before every type was listed");
            self.synced = true;
        }
    }

    fn watch(&mut self, kind: Arc<Kind>) {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(self.client.clone(), &ar);
        let stop = CancellationToken::new();
        let tagged = kind.clone();
        let stream = watcher::watcher(api, watcher::Config::default())
            // Without a back-off a failing watch (the in-process API shutting down)
            // would spin and starve the runtime.
            .default_backoff()
            .map(move |event| (tagged.clone(), event))
            .take_until(stop.clone().cancelled_owned())
            .boxed();
        self.streams.push(stream);
        self.watches
            .insert(kind.storage.clone(), Watch { kind, stop });
    }

    fn on_event(&mut self, kind: &Arc<Kind>, event: WatchResult) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(resource = %kind.plural, error = %e, "garbage collector watch failed; retrying");
                return;
            }
        };
        let storage = &kind.storage;
        match event {
            Event::Init => {
                self.relisting.insert(storage.clone(), HashSet::new());
            }
            Event::InitApply(obj) => {
                if let Some(uid) = self.observe(kind, obj) {
                    self.relisting
                        .entry(storage.clone())
                        .or_default()
                        .insert(uid);
                }
            }
            Event::InitDone => {
                let listed = self.relisting.remove(storage).unwrap_or_default();
                for uid in self.graph.uids_in(storage) {
                    if !listed.contains(&uid) {
                        self.forget(&uid);
                    }
                }
                if self.unsynced.remove(storage) && self.unsynced.is_empty() && !self.synced {
                    tracing::debug!(objects = self.graph.len(), "garbage collector synced");
                    self.synced = true;
                }
            }
            Event::Apply(obj) => {
                self.observe(kind, obj);
            }
            Event::Delete(obj) => {
                if let Some(uid) = obj.metadata.uid {
                    self.forget(&uid);
                }
            }
        }
        if kind.group == "apiextensions.k8s.io" && kind.plural == "customresourcedefinitions" {
            self.rescan();
        }
    }

    /// Add or update an object in the graph; returns its uid.
    fn observe(&mut self, kind: &Arc<Kind>, obj: PartialObjectMeta<DynamicObject>) -> Option<Uid> {
        let meta = obj.metadata;
        let id = Identity {
            kind: kind.clone(),
            namespace: if kind.namespaced {
                meta.namespace.clone()
            } else {
                None
            },
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
        };
        let uid = id.uid.clone();
        for w in self.graph.observe(id, &meta) {
            self.queue.add(w);
        }
        Some(uid)
    }

    fn forget(&mut self, uid: &str) {
        for w in self.graph.forget(uid) {
            self.queue.add(w);
        }
    }

    /// Hand queued work to workers while there is room.
    fn dispatch(&mut self) {
        if !self.synced {
            return;
        }
        while self.jobs.len() < WORKERS {
            let Some(work) = self.queue.pop() else {
                break;
            };
            match self.graph.plan(&work) {
                Plan::Nothing => self.queue.done(work, true),
                Plan::Enqueue(more) => {
                    for w in more {
                        self.queue.add(w);
                    }
                    self.queue.done(work, true);
                }
                plan => {
                    let actions = self.actions.clone();
                    let key = work.clone();
                    let handle = self
                        .jobs
                        .spawn(async move { (key, actions.run(plan).await) });
                    self.running.insert(handle.id(), work);
                }
            }
        }
    }

    fn on_done(
        &mut self,
        joined: Result<(tokio::task::Id, (Work, actions::Result<Outcome>)), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, (work, result))) => {
                self.running.remove(&id);
                match result {
                    Ok(Outcome::Done) => self.queue.done(work, true),
                    Ok(Outcome::Recheck) => self.queue.done(work, false),
                    Err(e) => {
                        tracing::warn!(?work, error = %e, "garbage collection failed; retrying");
                        self.queue.done(work, false);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "garbage collector worker failed");
                if let Some(work) = self.running.remove(&e.id()) {
                    self.queue.done(work, false);
                }
            }
        }
    }
}
