//! CronJob schedules and Kubernetes' rules for when a start is due: the standard
//! five-field syntax and the `@yearly`…`@hourly` descriptors (evaluated by croner,
//! with robfig/cron's reading of `?`, `*/1` and `N/step`), `@every <duration>`, a
//! time zone, and `mostRecentScheduleTime` (the latest missed start, how many were
//! missed, the 100-miss cut-off) with the requeue delay that follows from it.
//!
//! Schedules reach the controller validated (`api::validation`), so parsing here
//! only has to agree with what validation let through.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Added to every wake-up so the controller never runs just before the minute
/// (Kubernetes' `nextScheduleDelta`).
pub const WAKE_PADDING: Duration = Duration::from_millis(100);

/// More missed starts than this are "too many": only the latest is run, with a warning.
pub const TOO_MANY_MISSED: i64 = 100;

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `TZ=` prefix names no known zone.
    #[error("provided bad location {0}: unknown time zone {0}")]
    Location(String),
    /// The expression does not parse.
    #[error("{0}")]
    Syntax(String),
    /// Two consecutive starts are less than a second apart (or there are none).
    #[error("time difference between two schedules is less than 1 second")]
    Degenerate,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    Every(SignedDuration),
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
}

impl Schedule {
    /// Parse `spec` (robfig's `ParseStandard` syntax) to run in `tz`; a `TZ=` or
    /// `CRON_TZ=` prefix names another zone.
    pub fn parse(spec: &str, tz: TimeZone) -> Result<Schedule, Error> {
        let mut spec = spec.trim();
        let mut tz = tz;
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(rest) = spec.strip_prefix(prefix) {
                let (zone, expr) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                tz = TimeZone::get(zone).map_err(|_| Error::Location(zone.to_string()))?;
                spec = expr.trim();
                break;
            }
        }
        if let Some(every) = spec.strip_prefix("@every ") {
            let every = go_duration(every.trim())
                .ok_or_else(|| Error::Syntax(format!("failed to parse duration {spec}")))?;
            // robfig rounds down to whole seconds, and never below one.
            let secs = every.as_secs().max(1);
            return Ok(Schedule {
                kind: Kind::Every(SignedDuration::from_secs(
                    i64::try_from(secs).unwrap_or(i64::MAX),
                )),
                tz,
            });
        }
        let expr = match spec {
            "@midnight" => "@daily".to_string(),
            s if s.starts_with('@') => s.to_string(),
            s => s
                .split_whitespace()
                .map(|f| match f {
                    // robfig reads both as "every value" (a star for DOM/DOW).
                    "?" | "*/1" => "*",
                    f => f,
                })
                .collect::<Vec<_>>()
                .join(" "),
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build()
            .parse(&expr)
            .map_err(|e| Error::Syntax(e.to_string()))?;
        Ok(Schedule {
            kind: Kind::Cron(Box::new(cron)),
            tz,
        })
    }

    /// The first start strictly after `t` (starts fall on whole seconds); `None`
    /// when there is none.
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let whole = Timestamp::from_second(t.as_second()).ok()?;
        match &self.kind {
            Kind::Every(d) => whole.checked_add(*d).ok(),
            Kind::Cron(cron) => cron
                .find_next_occurrence(&whole.to_zoned(self.tz.clone()), false)
                .ok()
                .map(|z| z.timestamp()),
        }
    }
}

/// Go's `time.ParseDuration` for non-negative durations (`1h30m`, `90s`, `1.5h`).
fn go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let (unit, nanos) = [
            ("ns", 1f64),
            ("us", 1e3),
            ("µs", 1e3),
            ("μs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total += number * nanos;
    }
    // Whole nanoseconds; a schedule needs no more range than u64 nanos give.
    Some(Duration::from_nanos(total as u64))
}

/// How many starts were missed since the earliest time looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// None.
    None,
    /// Some (the latest is run).
    Few,
    /// More than [`TOO_MANY_MISSED`] (the latest is run, with a warning).
    Many,
}

/// What `mostRecentScheduleTime` finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The time looked from.
    pub earliest: Timestamp,
    /// The latest start at or before now that has not run.
    pub most_recent: Option<Timestamp>,
    /// How many were missed.
    pub missed: Missed,
}

/// Where to look for unmet starts from: the last schedule time, else the creation
/// time; not before `now - startingDeadlineSeconds` when a deadline is given.
pub fn earliest(
    created: Timestamp,
    last_schedule: Option<Timestamp>,
    deadline: Option<i64>,
    now: Timestamp,
) -> Timestamp {
    let mut earliest = last_schedule.unwrap_or(created);
    if let Some(secs) = deadline {
        let cutoff = now
            .checked_sub(SignedDuration::from_secs(secs))
            .unwrap_or(Timestamp::MIN);
        if cutoff > earliest {
            earliest = cutoff;
        }
    }
    earliest
}

/// `mostRecentScheduleTime`: the latest start in `(earliest, now]`, estimating the
/// number missed from the gap between the first two starts (as Kubernetes does, so
/// a controller that was down for decades does not walk every minute).
pub fn most_recent(sched: &Schedule, earliest: Timestamp, now: Timestamp) -> Result<Due, Error> {
    let none = |missed| Due {
        earliest,
        most_recent: None,
        missed,
    };
    let (Some(t1), Some(t2)) = (
        sched.next(earliest),
        sched.next(earliest).and_then(|t| sched.next(t)),
    ) else {
        // No next start at all: like robfig's zero time, a degenerate schedule.
        return Err(Error::Degenerate);
    };
    if now < t1 {
        return Ok(none(Missed::None));
    }
    if now < t2 {
        return Ok(Due {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    }
    let between = t2
        .duration_since(t1)
        .round(jiff::Unit::Second)
        .map_or(0, |d| d.as_secs());
    if between < 1 {
        return Err(Error::Degenerate);
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed = elapsed / between + 1;
    let potential = t1
        .checked_add(SignedDuration::from_secs((missed - 2) * between))
        .unwrap_or(t1);
    let mut latest = None;
    let mut t = sched.next(potential);
    // Bounded: the estimate leaves only a few starts to walk for regular schedules.
    for _ in 0..100_000 {
        match t {
            Some(at) if at <= now => {
                latest = Some(at);
                t = sched.next(at);
            }
            _ => break,
        }
    }
    let missed = if missed > TOO_MANY_MISSED {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok(Due {
        earliest,
        most_recent: latest,
        missed,
    })
}

/// `nextScheduleTimeDuration`: how long until the controller should look again —
/// just after the next start following the latest one due (or now, when starts
/// were missed without one to run).
pub fn wake_after(sched: &Schedule, earliest: Timestamp, now: Timestamp) -> Duration {
    let base = match most_recent(sched, earliest, now) {
        Err(_) => now,
        Ok(Due {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Due {
            missed: Missed::None,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    let Some(next) = sched.next(base) else {
        return Duration::from_secs(3600);
    };
    Duration::try_from(next.duration_since(now))
        .unwrap_or_default()
        .saturating_add(WAKE_PADDING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn utc(spec: &str) -> Schedule {
        Schedule::parse(spec, TimeZone::UTC).expect("schedule")
    }

    fn nexts(sched: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = at(from);
        (0..n)
            .map(|_| {
                t = sched.next(t).expect("next");
                t.to_string()
            })
            .collect()
    }

    #[test]
    fn standard_fields_steps_ranges_and_names() {
        assert_eq!(
            nexts(&utc("*/5 * * * *"), "2026-03-01T10:02:30Z", 3),
            [
                "2026-03-01T10:05:00Z",
                "2026-03-01T10:10:00Z",
                "2026-03-01T10:15:00Z"
            ]
        );
        assert_eq!(
            nexts(&utc("0 9-17/4 * * MON-FRI"), "2026-03-06T12:00:00Z", 3),
            [
                "2026-03-06T13:00:00Z",
                "2026-03-06T17:00:00Z",
                "2026-03-09T09:00:00Z"
            ],
            "Friday afternoon, then Monday morning"
        );
        assert_eq!(
            nexts(&utc("30 2 1 jan,jul *"), "2026-03-01T00:00:00Z", 2),
            ["2026-07-01T02:30:00Z", "2027-01-01T02:30:00Z"]
        );
        assert_eq!(
            nexts(&utc("5/20 * * * *"), "2026-03-01T10:00:00Z", 3),
            [
                "2026-03-01T10:05:00Z",
                "2026-03-01T10:25:00Z",
                "2026-03-01T10:45:00Z"
            ],
            "N/step means N-max/step"
        );
    }

    #[test]
    fn day_of_month_and_weekday_are_ored_unless_one_is_a_star() {
        // The 12th, or any Friday.
        assert_eq!(
            nexts(&utc("0 0 12 * 5"), "2026-03-01T00:00:00Z", 3),
            [
                "2026-03-06T00:00:00Z",
                "2026-03-12T00:00:00Z",
                "2026-03-13T00:00:00Z"
            ]
        );
        // Only Fridays: the day of month is a star (and `?` or `*/1` count as one).
        for spec in ["0 0 * * 5", "0 0 ? * 5", "0 0 */1 * 5"] {
            assert_eq!(
                nexts(&utc(spec), "2026-03-01T00:00:00Z", 2),
                ["2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"],
                "{spec}"
            );
        }
    }

    #[test]
    fn descriptors_and_every() {
        let from = "2026-03-04T10:20:30Z";
        assert_eq!(nexts(&utc("@hourly"), from, 1), ["2026-03-04T11:00:00Z"]);
        assert_eq!(nexts(&utc("@daily"), from, 1), ["2026-03-05T00:00:00Z"]);
        assert_eq!(nexts(&utc("@midnight"), from, 1), ["2026-03-05T00:00:00Z"]);
        assert_eq!(nexts(&utc("@weekly"), from, 1), ["2026-03-08T00:00:00Z"]);
        assert_eq!(nexts(&utc("@monthly"), from, 1), ["2026-04-01T00:00:00Z"]);
        for yearly in ["@yearly", "@annually"] {
            assert_eq!(nexts(&utc(yearly), from, 1), ["2027-01-01T00:00:00Z"]);
        }
        assert_eq!(
            nexts(&utc("@every 1m30s"), "2026-03-04T10:20:30.700Z", 2),
            ["2026-03-04T10:22:00Z", "2026-03-04T10:23:30Z"]
        );
        assert_eq!(go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(go_duration("10"), None, "a unit is required");
    }

    #[test]
    fn time_zones_move_the_wall_clock() {
        let kolkata = TimeZone::get("Asia/Kolkata").expect("zone");
        let s = Schedule::parse("0 9 * * *", kolkata).expect("schedule");
        assert_eq!(
            nexts(&s, "2026-03-01T00:00:00Z", 1),
            ["2026-03-01T03:30:00Z"]
        );
        let prefixed = utc("TZ=America/New_York 0 9 * * *");
        assert_eq!(
            nexts(&prefixed, "2026-03-01T00:00:00Z", 1),
            ["2026-03-01T14:00:00Z"]
        );
        assert!(matches!(
            Schedule::parse("TZ=Mars/Olympus 0 9 * * *", TimeZone::UTC),
            Err(Error::Location(_))
        ));
    }

    #[test]
    fn the_most_recent_unmet_start_and_how_many_were_missed() {
        let s = utc("*/5 * * * *");
        let created = at("2026-03-01T10:01:00Z");
        let due = most_recent(&s, created, at("2026-03-01T10:04:59Z")).expect("due");
        assert_eq!((due.most_recent, due.missed), (None, Missed::None));
        let due = most_recent(&s, created, at("2026-03-01T10:05:01Z")).expect("due");
        assert_eq!(
            (due.most_recent, due.missed),
            (Some(at("2026-03-01T10:05:00Z")), Missed::None)
        );
        let due = most_recent(&s, created, at("2026-03-01T10:31:00Z")).expect("due");
        assert_eq!(
            (due.most_recent, due.missed),
            (Some(at("2026-03-01T10:30:00Z")), Missed::Few)
        );
        // Two days of five-minute starts: far more than 100.
        let due = most_recent(&s, created, at("2026-03-03T10:31:00Z")).expect("due");
        assert_eq!(
            (due.most_recent, due.missed),
            (Some(at("2026-03-03T10:30:00Z")), Missed::Many)
        );
    }

    #[test]
    fn a_starting_deadline_moves_the_earliest_time_forward() {
        let s = utc("0 * * * *");
        let created = at("2026-03-01T09:30:00Z");
        let now = at("2026-03-01T10:00:30Z");
        let e = earliest(created, None, Some(10), now);
        assert_eq!(e, at("2026-03-01T10:00:20Z"));
        let due = most_recent(&s, e, now).expect("due");
        assert_eq!(
            due.most_recent, None,
            "10:00 is older than the deadline allows"
        );
        let e = earliest(created, None, Some(60), now);
        let due = most_recent(&s, e, now).expect("due");
        assert_eq!(due.most_recent, Some(at("2026-03-01T10:00:00Z")));
        assert_eq!(
            earliest(created, Some(at("2026-03-01T10:00:00Z")), Some(3600), now),
            at("2026-03-01T10:00:00Z"),
            "the last schedule time when it is later"
        );
    }

    #[test]
    fn the_controller_wakes_just_after_the_next_start() {
        let s = utc("*/5 * * * *");
        let created = at("2026-03-01T10:01:00Z");
        assert_eq!(
            wake_after(&s, created, at("2026-03-01T10:02:00Z")),
            Duration::from_secs(180) + WAKE_PADDING
        );
        // After running the 10:05 start (now the last schedule time).
        assert_eq!(
            wake_after(
                &s,
                at("2026-03-01T10:05:00Z"),
                at("2026-03-01T10:05:00.500Z")
            ),
            Duration::from_millis(299_600)
        );
    }

    #[test]
    fn impossible_dates_are_degenerate() {
        let s = utc("0 0 31 2 *");
        assert_eq!(
            most_recent(&s, at("2026-01-01T00:00:00Z"), at("2026-06-01T00:00:00Z")),
            Err(Error::Degenerate)
        );
    }
}
