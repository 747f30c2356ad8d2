//! `ResourceList` arithmetic as Kubernetes' quota helpers do it (`quota.Add`, `Mask`,
//! `LessThanOrEqual`) and the `name=value,…` form quota errors print.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::api::quantity::{self, Quantity};

/// Resource name → quantity, in name order (Go sorts names wherever it prints them).
pub type ResourceList = BTreeMap<String, Quantity>;

/// Reads a `ResourceList` (`{"cpu": "500m", "pods": 2}`); unreadable values are
/// left out, since validation reports them before anything is counted.
pub fn parse(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| quantity::from_json(v).map(|q| (k.clone(), q)))
        .collect()
}

/// The list as JSON, each quantity in its canonical spelling.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, q)| (k.clone(), Value::String(q.canonical())))
            .collect::<Map<_, _>>(),
    )
}

/// `quota.Add`: every name of either list, summed where both have it.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        out.entry(k.clone())
            .and_modify(|sum| *sum = sum.add(q))
            .or_insert(*q);
    }
    out
}

/// `quota.Mask`: only the entries whose names are in `names`.
pub fn mask<'a>(list: &ResourceList, names: impl IntoIterator<Item = &'a str>) -> ResourceList {
    names
        .into_iter()
        .filter_map(|n| list.get(n).map(|q| (n.to_string(), *q)))
        .collect()
}

/// `quota.LessThanOrEqual`, answering with the names where `a` exceeds `b` (names
/// missing from either side are not compared).
pub fn exceeded(a: &ResourceList, b: &ResourceList) -> Vec<String> {
    b.iter()
        .filter(|(k, limit)| a.get(*k).is_some_and(|v| v > *limit))
        .map(|(k, _)| k.clone())
        .collect()
}

/// `quota.RemoveZeros`.
pub fn remove_zeros(list: &ResourceList) -> ResourceList {
    list.iter()
        .filter(|(_, q)| !q.is_zero())
        .map(|(k, q)| (k.clone(), *q))
        .collect()
}

/// The names with a negative quantity, in name order.
pub fn negative(list: &ResourceList) -> Vec<String> {
    list.iter()
        .filter(|(_, q)| q.is_negative())
        .map(|(k, _)| k.clone())
        .collect()
}

/// `prettyPrint` of the quota admission plugin: `limits.cpu=1,pods=2`.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={}", q.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(v: Value) -> ResourceList {
        parse(Some(&v))
    }

    #[test]
    fn add_sums_shared_names_and_keeps_the_rest() {
        let sum = add(
            &list(json!({"pods": "1", "requests.cpu": "500m"})),
            &list(json!({"pods": 2, "requests.memory": "64Mi"})),
        );
        assert_eq!(
            to_json(&sum),
            json!({"pods": "3", "requests.cpu": "500m", "requests.memory": "64Mi"})
        );
    }

    #[test]
    fn exceeded_names_only_what_both_sides_have() {
        let used = list(json!({"pods": "3", "cpu": "1", "secrets": "9"}));
        let hard = list(json!({"pods": "2", "cpu": "2", "memory": "1Gi"}));
        assert_eq!(exceeded(&used, &hard), ["pods"]);
    }

    #[test]
    fn pretty_prints_sorted_canonical_pairs() {
        let l = list(json!({"pods": "2", "limits.cpu": "1000m", "limits.memory": "1024Mi"}));
        assert_eq!(pretty(&l), "limits.cpu=1,limits.memory=1Gi,pods=2");
        assert_eq!(pretty(&mask(&l, ["pods", "nope"])), "pods=2");
    }

    #[test]
    fn unreadable_values_are_left_out() {
        assert_eq!(
            to_json(&list(json!({"pods": "two", "cpu": "1"}))),
            json!({"cpu": "1"})
        );
        assert_eq!(negative(&list(json!({"cpu": "-1", "pods": "0"}))), ["cpu"]);
        assert!(remove_zeros(&list(json!({"pods": "0"}))).is_empty());
    }
}
