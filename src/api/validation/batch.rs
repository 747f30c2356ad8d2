//! batch/v1: Job (with the generated selector the registry adds) and CronJob (schedule, policies, job template).

use super::apps::selector_value;
use super::cron::check_schedule;
use super::errors::{FieldError, Path, sorted_map};
use super::meta::{
    Selector, as_selector, immutable, nonnegative, selector_matches, selector_mismatch,
    validate_label_selector,
};
use super::names;
use super::pod::validate_template;
use super::{at, int, s, set};
use serde_json::{Map, Value, json};

/// Labels the registry puts on a Job's pods and selector (`generateSelector`).
pub const JOB_NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];
pub const CONTROLLER_UID_LABELS: [&str; 2] =
    ["controller-uid", "batch.kubernetes.io/controller-uid"];

/// `generateSelector`: unless `manualSelector` is true, label the template with
/// the job's name and uid and select on `batch.kubernetes.io/controller-uid`.
/// Needs `metadata.uid`; without one nothing is generated.
pub fn generate_job_selector(job: &mut Value) {
    if job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if uid.is_empty() {
        return;
    }
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    let Some(template) = template.as_object_mut() else {
        return;
    };
    let meta = template.entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            for key in JOB_NAME_LABELS {
                labels
                    .entry(key)
                    .or_insert_with(|| Value::from(name.as_str()));
            }
            for key in CONTROLLER_UID_LABELS {
                labels
                    .entry(key)
                    .or_insert_with(|| Value::from(uid.as_str()));
            }
        }
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if let Some(selector) = selector.as_object_mut() {
        let ml = selector.entry("matchLabels").or_insert_with(|| json!({}));
        if let Some(ml) = ml.as_object_mut() {
            ml.entry(CONTROLLER_UID_LABELS[1])
                .or_insert_with(|| Value::from(uid.as_str()));
        }
    }
}

/// `validateGeneratedSelector`: the generated labels are present and selected.
fn generated_selector(job: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = job.get("spec").unwrap_or(&Value::Null);
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) || !set(spec, "selector") {
        return errs;
    }
    let (name, uid) = (
        at(job, &["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or(""),
        at(job, &["metadata", "uid"])
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let labels = at(spec, &["template", "metadata", "labels"]);
    let lp = Path::new("spec")
        .child("template")
        .child("metadata")
        .child("labels");
    let expected = [
        (CONTROLLER_UID_LABELS[0], uid),
        (JOB_NAME_LABELS[0], name),
        (CONTROLLER_UID_LABELS[1], uid),
        (JOB_NAME_LABELS[1], name),
    ];
    for (key, want) in expected {
        match labels.and_then(|l| l.get(key)).and_then(Value::as_str) {
            None => errs.push(FieldError::required(
                lp.key(key),
                format!("must be '{want}'"),
            )),
            Some(v) if v != want => errs.push(FieldError::invalid(
                lp.key(key),
                sorted_map(labels),
                format!("must be '{want}'"),
            )),
            Some(_) => {}
        }
    }
    let mut expected_labels = Map::new();
    for (key, want) in expected {
        expected_labels.insert(key.to_string(), Value::from(want));
    }
    if let Selector::Match(sel) = as_selector(spec.get("selector"))
        && !selector_matches(sel, Some(&Value::Object(expected_labels)))
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            selector_value(spec.get("selector")),
            "`selector` not auto-generated",
        ));
    }
    errs
}

pub fn job(original: &Value) -> Vec<FieldError> {
    // The registry generates the selector inside Validate; do the same on a copy.
    let mut job = original.clone();
    generate_job_selector(&mut job);
    let mut errs = generated_selector(&job);
    let spec = job.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    errs.extend(job_spec(spec, &sp));
    let will_generate = spec.get("manualSelector").and_then(Value::as_bool) != Some(true);
    if !set(spec, "selector") {
        if !will_generate {
            errs.push(FieldError::required(sp.child("selector"), ""));
        }
    } else {
        errs.extend(validate_label_selector(
            spec.get("selector"),
            &sp.child("selector"),
        ));
        let labels = at(spec, &["template", "metadata", "labels"]);
        let ok = match as_selector(spec.get("selector")) {
            Selector::Match(sel) => selector_matches(sel, labels),
            Selector::Everything => true,
            Selector::Nothing | Selector::Invalid => false,
        };
        if !ok {
            errs.push(selector_mismatch(
                labels,
                &sp.child("template").child("metadata").child("labels"),
            ));
        }
    }
    if s(spec, "completionMode") == "Indexed"
        && let Some(c) = int(spec, "completions").filter(|c| *c > 0)
    {
        let name = at(&job, &["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or("");
        let hostname = format!("{name}-{}", c - 1);
        if !names::dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// `validateJobSpec`: counts, completion mode, replacement policy, template and its restart policy.
fn job_spec(spec: &Value, sp: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        errs.extend(nonnegative(spec, key, sp));
    }
    if set(spec, "maxFailedIndexes") && !set(spec, "backoffLimitPerIndex") {
        errs.push(FieldError::required(
            sp.child("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    let mode = s(spec, "completionMode");
    match mode {
        "" | "NonIndexed" => {
            for key in ["backoffLimitPerIndex", "maxFailedIndexes"] {
                if let Some(v) = int(spec, key) {
                    errs.push(FieldError::invalid(
                        sp.child(key),
                        v,
                        "requires indexed completion mode",
                    ));
                }
            }
        }
        "Indexed" => {
            if !set(spec, "completions") {
                errs.push(FieldError::required(
                    sp.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = int(spec, "parallelism").filter(|p| *p > 100_000) {
                errs.push(FieldError::invalid(
                    sp.child("parallelism"),
                    p,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            sp.child("completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    let failure_policy = set(spec, "podFailurePolicy");
    if let Some(policy) = spec.get("podReplacementPolicy").and_then(Value::as_str) {
        if failure_policy && policy != "Failed" {
            errs.push(FieldError::not_supported(
                sp.child("podReplacementPolicy"),
                policy,
                &["Failed"],
            ));
        } else if !failure_policy && policy != "Failed" && policy != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                sp.child("podReplacementPolicy"),
                policy,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = sp.child("template");
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(validate_template(template, &tp));
    let rp = tp.child("spec").child("restartPolicy");
    match at(template, &["spec", "restartPolicy"])
        .and_then(Value::as_str)
        .unwrap_or("")
    {
        "" | "Always" => errs.push(FieldError::required(
            rp,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" if failure_policy => errs.push(FieldError::invalid(
            rp,
            "OnFailure",
            "only \"Never\" is supported when podFailurePolicy is specified",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            rp,
            other,
            &["OnFailure", "Never"],
        )),
    }
    errs
}

/// `ValidateJobSpecUpdate`: selector, completions (non-indexed), mode and, unless suspended, the template are fixed.
pub fn job_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let sp = Path::new("spec");
    let get = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    if s(ns, "completionMode") != "Indexed" {
        errs.extend(immutable(
            &get(ns, "completions"),
            &get(os, "completions"),
            &sp.child("completions"),
        ));
    }
    let mut generated = new.clone();
    generate_job_selector(&mut generated);
    let sel = |v: &Value| selector_value(at(v, &["spec", "selector"]));
    errs.extend(immutable(
        &sel(&generated),
        &sel(old),
        &sp.child("selector"),
    ));
    if os.get("suspend").and_then(Value::as_bool) != Some(true) {
        let new_template = generated
            .pointer("/spec/template")
            .cloned()
            .unwrap_or(Value::Null);
        errs.extend(immutable(
            &new_template,
            &get(os, "template"),
            &sp.child("template"),
        ));
    }
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        errs.extend(immutable(&get(ns, key), &get(os, key), &sp.child(key)));
    }
    errs
}

pub fn cron_job(cj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = cj.get("spec").unwrap_or(&Value::Null);
    let sp = Path::new("spec");
    let schedule = s(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(sp.child("schedule"), ""));
    } else {
        if let Err(msg) = check_schedule(schedule) {
            errs.push(FieldError::invalid(sp.child("schedule"), schedule, msg));
        }
        if schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                sp.child("schedule"),
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(nonnegative(spec, "startingDeadlineSeconds", &sp));
    if let Some(tz) = spec.get("timeZone").and_then(Value::as_str) {
        errs.extend(time_zone(tz, &sp.child("timeZone")));
    }
    match s(spec, "concurrencyPolicy") {
        "" => errs.push(FieldError::required(sp.child("concurrencyPolicy"), "")),
        "Allow" | "Forbid" | "Replace" => {}
        other => errs.push(FieldError::not_supported(
            sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jp = sp.child("jobTemplate").child("spec");
    let job_template_spec = at(spec, &["jobTemplate", "spec"]).unwrap_or(&Value::Null);
    errs.extend(job_spec(job_template_spec, &jp));
    if let Some(sel) = job_template_spec.get("selector").filter(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            jp.child("selector"),
            selector_value(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if job_template_spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        == Some(true)
    {
        errs.push(FieldError::not_supported(
            jp.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs.extend(nonnegative(spec, "successfulJobsHistoryLimit", &sp));
    errs.extend(nonnegative(spec, "failedJobsHistoryLimit", &sp));
    errs
}

/// `validateTimeZone`: an IANA name (parts of `[A-Za-z.-_0-9+]{1,14}`, not `.`,
/// `..` or starting with `-`), not `Local`, and one the time zone database knows
/// (as Go's `time.LoadLocation`, case-sensitively).
fn time_zone(tz: &str, path: &Path) -> Vec<FieldError> {
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path.clone(),
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    let valid_part = |p: &str| {
        (1..=14).contains(&p.len())
            && p != "."
            && p != ".."
            && !p.starts_with('-')
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !tz.split('/').all(valid_part) {
        return vec![FieldError::invalid(
            path.clone(),
            tz,
            format!("unknown time zone {tz}"),
        )];
    }
    let mut errs = Vec::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path.clone(),
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    // Go's LoadLocation knows "UTC" and "Local" without a database.
    let known = tz == "UTC"
        || tz == "Local"
        || jiff::tz::TimeZone::get(tz).is_ok_and(|z| z.iana_name() == Some(tz));
    if !known {
        errs.push(FieldError::invalid(
            path.clone(),
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
    errs
}

/// Jobs are named `<cronjob>-<11 chars>`, so the name is capped on create.
pub fn cron_job_create(cj: &Value) -> Vec<FieldError> {
    let name = at(cj, &["metadata", "name"])
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        vec![FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        )]
    } else {
        Vec::new()
    }
}
