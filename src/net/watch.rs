//! The watches the network's tables are kept by: a reflector's store, and a stream
//! that ticks once for every object it touched (errors included, after back-off).

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};

/// A store of the objects `api` lists (filtered by `config`), and the ticks of its
/// changes; the store is current by the time a tick is seen.
pub(crate) fn reflect<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, BoxStream<'static, ()>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let ticks = reflector::reflector(writer, watcher(api, config))
        .default_backoff()
        .touched_objects()
        .map(|_| ())
        .boxed();
    (store, ticks)
}
