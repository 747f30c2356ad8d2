//! Lenient reading of stored object JSON, and the text shapes every printer shares (ages, "<none>", label sets, container lists).

use jiff::Timestamp;
use serde_json::{Map, Value};

static NULL: Value = Value::Null;

/// What Go printers show for an empty string or missing value.
pub(super) const NONE: &str = "<none>";
/// What Go printers show for a nil optional field.
pub(super) const UNSET: &str = "<unset>";
/// What Go printers show for a time or state they cannot know.
pub(super) const UNKNOWN: &str = "<unknown>";

/// A view of object JSON that never fails: a missing or mistyped field reads as Go's zero value,
/// which is what the Go printers see once the JSON is decoded into typed structs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Obj<'a>(pub(super) &'a Value);

impl<'a> Obj<'a> {
    /// The value at `path`, or `None` when absent or null (a nil pointer in Go).
    pub(super) fn at(self, path: &[&str]) -> Option<&'a Value> {
        let mut v = self.0;
        for key in path {
            v = v.as_object()?.get(*key)?;
        }
        (!v.is_null()).then_some(v)
    }

    /// The object at `path`, or an empty view when it is absent.
    pub(super) fn child(self, path: &[&str]) -> Obj<'a> {
        Obj(self.at(path).unwrap_or(&NULL))
    }

    pub(super) fn has(self, path: &[&str]) -> bool {
        self.at(path).is_some()
    }

    pub(super) fn opt_str(self, path: &[&str]) -> Option<&'a str> {
        self.at(path)?.as_str()
    }

    pub(super) fn str(self, path: &[&str]) -> &'a str {
        self.opt_str(path).unwrap_or("")
    }

    pub(super) fn opt_int(self, path: &[&str]) -> Option<i64> {
        let v = self.at(path)?;
        v.as_i64()
            .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
            // Saturating float-to-int is the closest a lenient reader gets to Go's decoder here.
            .or_else(|| v.as_f64().map(|f| f as i64))
    }

    pub(super) fn int(self, path: &[&str]) -> i64 {
        self.opt_int(path).unwrap_or(0)
    }

    pub(super) fn opt_bool(self, path: &[&str]) -> Option<bool> {
        self.at(path)?.as_bool()
    }

    pub(super) fn bool(self, path: &[&str]) -> bool {
        self.opt_bool(path).unwrap_or(false)
    }

    pub(super) fn map(self, path: &[&str]) -> Option<&'a Map<String, Value>> {
        self.at(path)?.as_object()
    }

    /// The elements of the array at `path`; nothing when it is absent or not an array.
    pub(super) fn items(self, path: &[&str]) -> impl Iterator<Item = Obj<'a>> + use<'a> {
        let list: &'a [Value] = self
            .at(path)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        list.iter().map(Obj)
    }

    pub(super) fn len(self, path: &[&str]) -> usize {
        match self.at(path) {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Object(m)) => m.len(),
            _ => 0,
        }
    }

    /// The strings of the array at `path`, non-strings read as "".
    pub(super) fn strings(self, path: &[&str]) -> Vec<&'a str> {
        self.items(path)
            .map(|v| v.0.as_str().unwrap_or(""))
            .collect()
    }

    /// A metav1.Time or MicroTime at `path`; `None` for absent, unparsable or Go's zero time.
    pub(super) fn time(self, path: &[&str]) -> Option<Timestamp> {
        let t: Timestamp = self.opt_str(path)?.parse().ok()?;
        (t != go_zero_time()).then_some(t)
    }

    pub(super) fn name(self) -> &'a str {
        self.str(&["metadata", "name"])
    }

    pub(super) fn annotation(self, key: &str) -> Option<&'a str> {
        self.opt_str(&["metadata", "annotations", key])
    }

    /// The AGE cell: how long ago the object was created.
    pub(super) fn age(self, now: Timestamp) -> Value {
        since(self.time(&["metadata", "creationTimestamp"]), now).into()
    }

    /// The status of the first condition of `type_` under status.conditions.
    pub(super) fn condition(self, type_: &str) -> Option<&'a str> {
        self.items(&["status", "conditions"])
            .find(|c| c.str(&["type"]) == type_)
            .map(|c| c.str(&["status"]))
    }
}

/// Go's `time.Time{}`, which metav1.Time serialises as null but may also arrive spelled out.
fn go_zero_time() -> Timestamp {
    Timestamp::from_second(-62_135_596_800).unwrap_or(Timestamp::MIN)
}

/// translateTimestampSince: the age of a time, "<unknown>" when there is none.
pub(super) fn since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => between(t, now),
        None => UNKNOWN.to_string(),
    }
}

/// HumanDuration of `to - from`, which Go computes as a saturating `time.Duration`.
pub(super) fn between(from: Timestamp, to: Timestamp) -> String {
    let nanos = to.as_nanosecond() - from.as_nanosecond();
    human_duration_nanos(i64::try_from(nanos).unwrap_or(if nanos < 0 {
        i64::MIN
    } else {
        i64::MAX
    }))
}

/// duration.HumanDuration on a signed nanosecond count: about two significant units, a couple of
/// seconds of clock skew read as "0s", anything further in the future as "<invalid>".
pub(super) fn human_duration_nanos(d: i64) -> String {
    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    let seconds = d / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d / MINUTE;
    if minutes < 10 {
        return two_units(minutes, "m", seconds % 60, "s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d / HOUR;
    if hours < 8 {
        two_units(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        two_units(hours / 24, "d", hours % 24, "h")
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        two_units(hours / 24 / 365, "y", (hours / 24) % 365, "d")
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// "3m2s", or just "3m" when the smaller unit is zero.
fn two_units(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

/// A creation time as the default table convertor prints it: RFC 3339 in UTC, whole seconds.
pub(super) fn rfc3339(t: Option<Timestamp>) -> String {
    t.unwrap_or_else(go_zero_time)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The "<none>" Go printers show for an empty string.
pub(super) fn or_none(s: &str) -> String {
    or(s, NONE)
}

/// The "<unset>" Go printers show for a nil optional.
pub(super) fn or_unset(s: Option<&str>) -> String {
    s.unwrap_or(UNSET).to_string()
}

pub(super) fn or(s: &str, empty: &str) -> String {
    if s.is_empty() { empty } else { s }.to_string()
}

/// labels.Set.String(): "k=v" pairs sorted as whole strings (so "a-b=1" sorts before "a=1").
pub(super) fn label_set(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// labels.FormatLabels: a label set, or "<none>" when empty.
pub(super) fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    or_none(&label_set(labels))
}

/// layoutContainerCells: the containers' names and images of a pod spec, comma-joined.
pub(super) fn container_cells(pod_spec: Obj) -> (Value, Value) {
    let (names, images): (Vec<&str>, Vec<&str>) = pod_spec
        .items(&["containers"])
        .map(|c| (c.str(&["name"]), c.str(&["image"])))
        .unzip();
    (names.join(",").into(), images.join(",").into())
}

/// listWithMoreString: the first `max` items, then how many more there were; "<unset>" for none.
pub(super) fn list_with_more(items: &[String], max: usize) -> String {
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    or(&items.join(","), UNSET)
}

/// net.JoinHostPort: IPv6 hosts get brackets.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The value of an int-or-string field as IntOrString.String() writes it.
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => Obj(other).opt_int(&[]).unwrap_or(0).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn human_duration_follows_the_go_thresholds() {
        let cases = [
            (-3, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (51 * 3600, "2d3h"),
            (72 * 3600, "3d"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (2 * 365 * 86400 + 10 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration_nanos(secs * 1_000_000_000), want, "{secs}s");
        }
    }

    #[test]
    fn a_slightly_future_time_reads_as_zero_seconds_and_a_far_one_as_invalid() {
        let now = ts("2024-01-01T00:00:00Z");
        assert_eq!(between(ts("2024-01-01T00:00:01.5Z"), now), "0s");
        assert_eq!(between(ts("2024-01-01T00:01:00Z"), now), "<invalid>");
    }

    #[test]
    fn a_missing_or_zero_creation_time_has_an_unknown_age() {
        let now = ts("2024-01-01T00:00:00Z");
        assert_eq!(Obj(&json!({})).age(now), json!("<unknown>"));
        let zero = json!({"metadata": {"creationTimestamp": "0001-01-01T00:00:00Z"}});
        assert_eq!(Obj(&zero).age(now), json!("<unknown>"));
    }

    #[test]
    fn label_sets_sort_by_the_whole_pair() {
        let labels = json!({"a": "1", "a-b": "2", "tier": "web"});
        assert_eq!(format_labels(labels.as_object()), "a-b=2,a=1,tier=web");
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn container_cells_join_names_and_images() {
        let spec = json!({"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]});
        let (names, images) = container_cells(Obj(&spec));
        assert_eq!(
            (names, images),
            (json!("web,log"), json!("nginx:1.25,busybox"))
        );
    }

    #[test]
    fn lists_longer_than_the_maximum_say_how_many_more() {
        let items: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(list_with_more(&items, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&[], 3), "<unset>");
    }

    #[test]
    fn mistyped_fields_read_as_zero_values() {
        let obj = json!({"spec": {"replicas": "three", "paused": 1, "name": 7}});
        let o = Obj(&obj);
        assert_eq!(
            (
                o.int(&["spec", "replicas"]),
                o.bool(&["spec", "paused"]),
                o.str(&["spec", "name"])
            ),
            (0, false, "")
        );
        assert_eq!(o.items(&["spec", "replicas"]).count(), 0);
    }
}
