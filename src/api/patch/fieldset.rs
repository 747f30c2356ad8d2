//! Field sets of server-side apply: paths to the leaves and list elements an object
//! sets, their FieldsV1 encoding, and reading or removing the value at a path.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::api::schema::TypeRef;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    Field(String),
    Key(String),
    Value(String),
    Index(usize),
}

pub(super) type Path = Vec<Step>;
pub(super) type FieldSet = BTreeSet<Path>;

impl Step {
    fn encode(&self) -> String {
        match self {
            Step::Field(f) => format!("f:{f}"),
            Step::Key(k) => format!("k:{k}"),
            Step::Value(v) => format!("v:{v}"),
            Step::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Step> {
        let (tag, rest) = s.split_at_checked(2)?;
        Some(match tag {
            "f:" => Step::Field(rest.into()),
            "k:" => Step::Key(rest.into()),
            "v:" => Step::Value(rest.into()),
            "i:" => Step::Index(rest.parse().ok()?),
            _ => return None,
        })
    }
}

/// Metadata fields that belong to the system, never to a manager.
const SYSTEM_META: [&str; 8] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
];

/// The key of a list element: the element's values of the list's map keys, as the
/// compact JSON object Kubernetes writes (`{"containerPort":80,"protocol":"TCP"}`).
fn element_key(item: &Value, keys: &[&str]) -> String {
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = item.get(*k) {
            m.insert((*k).to_string(), v.clone());
        }
    }
    Value::Object(m).to_string()
}

fn list_keys(parent: Option<TypeRef>, field: &str) -> (Option<&'static str>, Vec<&'static str>) {
    let Some(meta) = parent.map(|t| t.list_meta(field)) else {
        return (None, Vec::new());
    };
    let mut keys = meta.list_map_keys.to_vec();
    if keys.is_empty() {
        keys.extend(meta.patch_merge_key);
    }
    let kind = meta
        .list_type
        .or(if keys.is_empty() { None } else { Some("map") });
    (kind, keys)
}

fn collect(obj: &Value, ty: Option<TypeRef>, prefix: &mut Path, out: &mut FieldSet) {
    let Value::Object(m) = obj else {
        out.insert(prefix.clone());
        return;
    };
    for (k, v) in m {
        if prefix.is_empty() && (k == "apiVersion" || k == "kind" || k == "status") {
            continue;
        }
        if prefix.as_slice() == [Step::Field("metadata".into())]
            && SYSTEM_META.contains(&k.as_str())
        {
            continue;
        }
        prefix.push(Step::Field(k.clone()));
        let child = ty.and_then(|t| t.field(k));
        match v {
            Value::Object(inner) if !inner.is_empty() => collect(v, child, prefix, out),
            Value::Array(items) => match list_keys(ty, k) {
                (Some("map"), keys) if !keys.is_empty() => {
                    let elem = child.and_then(TypeRef::elem);
                    for item in items {
                        prefix.push(Step::Key(element_key(item, &keys)));
                        out.insert(prefix.clone());
                        collect(item, elem, prefix, out);
                        prefix.pop();
                    }
                }
                (Some("set"), _) => {
                    for item in items {
                        prefix.push(Step::Value(item.to_string()));
                        out.insert(prefix.clone());
                        prefix.pop();
                    }
                }
                _ => {
                    out.insert(prefix.clone());
                }
            },
            _ => {
                out.insert(prefix.clone());
            }
        }
        prefix.pop();
    }
}

pub(super) fn fields_of(obj: &Value, root: Option<TypeRef>) -> FieldSet {
    let mut out = FieldSet::new();
    collect(obj, root, &mut Vec::new(), &mut out);
    out
}

/// Encode a field set as FieldsV1: nested objects, `{}` leaves, `"."` for a list
/// element that also has fields of its own.
pub(super) fn encode(set: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        present: bool,
        children: BTreeMap<String, Node>,
    }
    fn to_json(n: &Node) -> Value {
        let mut m = Map::new();
        if n.present && !n.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, c) in &n.children {
            m.insert(k.clone(), to_json(c));
        }
        Value::Object(m)
    }
    let mut root = Node::default();
    for path in set {
        let mut node = &mut root;
        for step in path {
            node = node.children.entry(step.encode()).or_default();
        }
        node.present = true;
    }
    to_json(&root)
}

pub(super) fn decode(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    let Some(m) = v.as_object() else { return };
    for (k, child) in m {
        if k == "." {
            out.insert(prefix.clone());
            continue;
        }
        let Some(step) = Step::decode(k) else {
            continue;
        };
        prefix.push(step);
        if child.as_object().is_some_and(Map::is_empty) {
            out.insert(prefix.clone());
        } else {
            decode(child, prefix, out);
        }
        prefix.pop();
    }
}

/// Human form of a path, as conflict messages print it: `.spec.containers[name="web"].image`.
pub(super) fn describe(path: &Path) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Field(f) => s.push_str(&format!(".{f}")),
            Step::Key(k) => {
                let pairs: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .map(|m| m.iter().map(|(a, b)| format!("{a}={b}")).collect())
                    .unwrap_or_default();
                s.push_str(&format!("[{}]", pairs.join(",")));
            }
            Step::Value(v) => s.push_str(&format!("[={v}]")),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn matches_key(item: &Value, key: &str) -> bool {
    serde_json::from_str::<Map<String, Value>>(key)
        .is_ok_and(|m| m.iter().all(|(k, v)| item.get(k) == Some(v)))
}

pub(super) fn value_at<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut cur = obj;
    for step in path {
        cur = match step {
            Step::Field(f) => cur.get(f)?,
            Step::Key(k) => cur.as_array()?.iter().find(|i| matches_key(i, k))?,
            Step::Value(v) => cur.as_array()?.iter().find(|i| i.to_string() == *v)?,
            Step::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

pub(super) fn remove_at(obj: &mut Value, path: &Path) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for step in parent_path {
        let next = match step {
            Step::Field(f) => cur.get_mut(f),
            Step::Key(k) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| matches_key(i, k))),
            Step::Value(v) => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| i.to_string() == *v)),
            Step::Index(i) => cur.get_mut(*i),
        };
        let Some(next) = next else { return };
        cur = next;
    }
    match last {
        Step::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        Step::Key(k) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| !matches_key(i, k));
            }
        }
        Step::Value(v) => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|i| *i.to_string() != **v);
            }
        }
        Step::Index(_) => {}
    }
}
