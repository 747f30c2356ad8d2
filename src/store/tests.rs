//! Store behaviour: revisions, conflicts, persistence, watches and the history window.

use super::*;
use serde_json::json;

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
}

fn create(key: &str, name: &str) -> Write {
    Write::Create {
        key: key.into(),
        object: cm(name),
    }
}

#[tokio::test]
async fn each_write_gets_the_next_global_revision() {
    let s = Store::in_memory(Options::default()).expect("store");
    let a = s.write(create("/r/a", "a")).await.expect("a");
    let b = s.write(create("/r/b", "b")).await.expect("b");
    assert_eq!(a["metadata"]["resourceVersion"], "1");
    assert_eq!(b["metadata"]["resourceVersion"], "2");
    assert_eq!(s.revision().expect("rev"), 2);
}

#[tokio::test]
async fn create_twice_is_already_exists_and_stale_update_is_conflict() {
    let s = Store::in_memory(Options::default()).expect("store");
    s.write(create("/r/a", "a")).await.expect("a");
    assert!(matches!(
        s.write(create("/r/a", "a")).await,
        Err(Error::AlreadyExists)
    ));
    let stale = s
        .write(Write::Update {
            key: "/r/a".into(),
            object: cm("a"),
            expect: Some(7),
        })
        .await;
    assert!(matches!(stale, Err(Error::Conflict { stored: 1 })));
    let (rv, _) = s.get("/r/a").expect("get").expect("present");
    assert_eq!(rv, 1, "a failed write leaves the object untouched");
}

#[tokio::test]
async fn concurrent_writes_all_commit_with_distinct_revisions() {
    let s = Store::in_memory(Options::default()).expect("store");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.write(create(&format!("/r/{i}"), &format!("n{i}"))).await
        }));
    }
    let mut revs = std::collections::BTreeSet::new();
    for t in tasks {
        let obj = t.await.expect("join").expect("write");
        revs.insert(
            obj["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_owned),
        );
    }
    assert_eq!(revs.len(), 200);
    assert_eq!(s.list("/r/", None, 0).expect("list").items.len(), 200);
}

#[tokio::test]
async fn objects_and_revisions_survive_reopening_the_data_dir() {
    let dir = tempfile::tempdir().expect("tmp");
    let released = {
        let s = Store::open(dir.path(), Options::default()).expect("open");
        s.write(create("/r/a", "a")).await.expect("a");
        s.write(create("/r/b", "b")).await.expect("b");
        s.release_watch()
    };
    // The committer closes the database once the last handle is gone.
    for _ in 0..1000 {
        if released.is_released() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(released.is_released());
    let reopened = Store::open(dir.path(), Options::default());
    let s = reopened.expect("reopened");
    assert_eq!(s.revision().expect("rev"), 2);
    let (rv, obj) = s.get("/r/b").expect("get").expect("b");
    assert_eq!(
        (rv, obj["metadata"]["resourceVersion"].as_str()),
        (2, Some("2"))
    );
}

#[tokio::test]
async fn a_second_open_of_the_same_dir_is_refused_as_locked() {
    let dir = tempfile::tempdir().expect("tmp");
    let _first = Store::open(dir.path(), Options::default()).expect("open");
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
}

#[tokio::test]
async fn list_pages_with_limit_and_start_after() {
    let s = Store::in_memory(Options::default()).expect("store");
    for n in ["a", "b", "c"] {
        s.write(create(&format!("/r/{n}"), n)).await.expect("write");
    }
    let page = s.list("/r/", None, 2).expect("page 1");
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.remaining, 1);
    let next = s.list("/r/", Some(&page.items[1].key), 2).expect("page 2");
    assert_eq!(
        next.items
            .iter()
            .map(|i| i.key.as_str())
            .collect::<Vec<_>>(),
        ["/r/c"]
    );
}

#[tokio::test]
async fn watch_without_revision_replays_current_objects_then_follows() {
    let s = Store::in_memory(Options::default()).expect("store");
    s.write(create("/r/a", "a")).await.expect("a");
    let mut w = s.watch("/r/", None).expect("watch");
    s.write(Write::Delete {
        key: "/r/a".into(),
        expect: None,
    })
    .await
    .expect("delete");
    let first = w.next().await.expect("added");
    assert_eq!((first.kind, first.rev), (EventKind::Added, 1));
    let second = w.next().await.expect("deleted");
    assert_eq!((second.kind, second.rev), (EventKind::Deleted, 2));
    assert_eq!(second.object["metadata"]["resourceVersion"], "2");
}

#[tokio::test]
async fn watch_from_a_revision_replays_history_after_it_only_under_its_prefix() {
    let s = Store::in_memory(Options::default()).expect("store");
    s.write(create("/r/a", "a")).await.expect("a");
    s.write(create("/other/x", "x")).await.expect("x");
    s.write(create("/r/b", "b")).await.expect("b");
    let mut w = s.watch("/r/", Some(1)).expect("watch");
    let ev = w.next().await.expect("b");
    assert_eq!((ev.rev, ev.key.as_str()), (3, "/r/b"));
}

#[tokio::test]
async fn watch_older_than_the_history_window_is_too_old() {
    let s = Store::in_memory(Options {
        history: 2,
        ..Options::default()
    })
    .expect("store");
    for n in ["a", "b", "c", "d"] {
        s.write(create(&format!("/r/{n}"), n)).await.expect("write");
    }
    assert!(matches!(
        s.watch("/r/", Some(1)),
        Err(Error::TooOld {
            requested: 1,
            oldest: 2
        })
    ));
    assert!(s.watch("/r/", Some(2)).is_ok());
}
