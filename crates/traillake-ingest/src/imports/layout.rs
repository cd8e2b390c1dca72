//! The layout CloudTrail delivers trail log files in, and which objects of a bucket an import
//! reads: `[prefix/]AWSLogs/[o-org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME`, where NAME is
//! `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE.json.gz` and its time is the delivery time.
//!
//! Every object in a day prefix of the `CloudTrail` segment is a log file to read (one that is
//! not gzip JSON becomes a failure entry when read); other objects under `AWSLogs/`
//! (`CloudTrail-Digest/`, `CloudTrail-Insight/`, other services' prefixes) are not log files and
//! are skipped. Log files kept outside that layout (copied to a prefix of their own, as the
//! reference allows: "include the prefix in the S3LocationUri") are read too: every `.json.gz`
//! or `.json` object of a key without an `AWSLogs` segment, but digest and Insights files; its
//! folder stands for the day prefix.
//!
//! StartEventTime and EndEventTime select by names, not by the records inside: the day prefix's
//! date must lie within their dates, and the file name's delivery time within them; a file
//! outside the layout whose name has no delivery time is read whatever the window.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Timelike as _, Utc};
use traillake_api::arn::is_account_id;

/// An object in the trail layout: a log file of a day prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailFile<'a> {
    /// The day prefix the file is in, up to and with the `/` after `DD`.
    pub day_prefix: &'a str,
    /// The date of the day prefix (of the delivery time, outside the layout), when known.
    pub day: Option<NaiveDate>,
    /// The delivery time in the file name, when the name has one.
    pub delivered: Option<DateTime<Utc>>,
}

/// Returns the trail layout place of an object key, or `None` when the object is not a log file:
/// not in a day prefix of a `CloudTrail` segment, nor a log file outside `AWSLogs/`.
pub fn trail_file(key: &str) -> Option<TrailFile<'_>> {
    let parts: Vec<&str> = key.split('/').collect();
    // The last `AWSLogs` segment followed by the account (after an optional organization ID).
    let Some(logs) = parts.iter().rposition(|part| *part == "AWSLogs") else {
        return outside_layout(key);
    };
    let mut at = logs + 1;
    if parts.get(at).is_some_and(|part| part.starts_with("o-")) {
        at += 1;
    }
    let account = parts.get(at)?;
    if !is_account_id(account) {
        return None;
    }
    // ACCOUNT / CloudTrail / REGION / YYYY / MM / DD / NAME, and nothing deeper.
    if parts.len() != at + 7 || parts[at + 1] != "CloudTrail" || parts[at + 2].is_empty() {
        return None;
    }
    let name = parts[at + 6];
    if name.is_empty() {
        return None;
    }
    let (year, month, day) = (parts[at + 3], parts[at + 4], parts[at + 5]);
    if year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)?;
    let day_prefix = &key[..key.len() - name.len()];
    Some(TrailFile {
        day_prefix,
        day: Some(date),
        delivered: delivery_time(name),
    })
}

/// Returns the place of a log file kept outside the `AWSLogs/` layout: a `.json.gz` or `.json`
/// object that is not a digest or Insights file, its folder as its day prefix.
fn outside_layout(key: &str) -> Option<TrailFile<'_>> {
    let (folder, name) = match key.rfind('/') {
        Some(slash) => (&key[..=slash], &key[slash + 1..]),
        None => ("", key),
    };
    let is_json = name.ends_with(".json.gz") || name.ends_with(".json");
    let not_events = ["CloudTrail-Digest", "CloudTrail-Insight"]
        .iter()
        .any(|kind| key.contains(kind));
    if !is_json || not_events {
        return None;
    }
    let delivered = delivery_time(name);
    Some(TrailFile {
        day_prefix: folder,
        day: delivered.map(|time| time.date_naive()),
        delivered,
    })
}

/// Returns the delivery time of a log file name (`..._YYYYMMDDTHHmmZ_...`), if it has one.
fn delivery_time(name: &str) -> Option<DateTime<Utc>> {
    name.split('_').find_map(|part| {
        if part.len() != 14 || !part.ends_with('Z') || part.as_bytes()[8] != b'T' {
            return None;
        }
        NaiveDateTime::parse_from_str(part, "%Y%m%dT%H%MZ")
            .ok()
            .map(|time| time.and_utc())
    })
}

/// The StartEventTime and EndEventTime of an import, applied to names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameWindow {
    /// StartEventTime.
    pub start: Option<DateTime<Utc>>,
    /// EndEventTime.
    pub end: Option<DateTime<Utc>>,
}

impl NameWindow {
    /// Returns true if a day prefix of `day` may hold files to read.
    pub fn holds_day(&self, day: NaiveDate) -> bool {
        self.start.is_none_or(|start| day >= start.date_naive()) && self.end.is_none_or(|end| day <= end.date_naive())
    }

    /// Returns true if the file is to be read: its day in the window, and its delivery time too
    /// (to the minute the name gives: a file named 10:05 is in a window that starts at 10:05:30).
    pub fn holds(&self, file: &TrailFile<'_>) -> bool {
        if file.day.is_some_and(|day| !self.holds_day(day)) {
            return false;
        }
        let Some(delivered) = file.delivered else { return true };
        let minute_of = |time: DateTime<Utc>| {
            time.with_second(0)
                .and_then(|time| time.with_nanosecond(0))
                .unwrap_or(time)
        };
        self.start.is_none_or(|start| delivered >= minute_of(start)) && self.end.is_none_or(|end| delivered <= end)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    const FILE: &str = "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/02/974349055189_CloudTrail_us-east-1_20170602T1015Z_q3bjfXo1iVJcYmkc.json.gz";

    #[test]
    fn finds_log_files_and_their_day_prefix() {
        let file = trail_file(FILE).unwrap();
        assert_eq!(file.day_prefix, "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/02/");
        assert_eq!(file.day, NaiveDate::from_ymd_opt(2017, 6, 2));
        assert_eq!(
            file.delivered,
            Some(Utc.with_ymd_and_hms(2017, 6, 2, 10, 15, 0).unwrap())
        );
        let under_prefix = format!("exports/trails/{FILE}");
        assert_eq!(
            trail_file(&under_prefix).unwrap().day_prefix,
            format!("exports/trails/{}", file.day_prefix)
        );
        let organization = "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/eu-west-1/2024/01/31/x.json.gz";
        assert_eq!(
            trail_file(organization).unwrap().day,
            NaiveDate::from_ymd_opt(2024, 1, 31)
        );
        let odd_name = "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/01/31/not-gzip.txt";
        assert_eq!(
            trail_file(odd_name).unwrap().delivered,
            None,
            "read, and failed if it is not gzip JSON"
        );
    }

    #[test]
    fn finds_log_files_outside_the_layout() {
        let copied = "exports/june/974349055189_CloudTrail_us-east-1_20170602T1015Z_q3bjfXo1iVJcYmkc.json.gz";
        let file = trail_file(copied).unwrap();
        assert_eq!(file.day_prefix, "exports/june/");
        assert_eq!(file.day, NaiveDate::from_ymd_opt(2017, 6, 2));
        assert_eq!(
            file.delivered,
            Some(Utc.with_ymd_and_hms(2017, 6, 2, 10, 15, 0).unwrap())
        );
        let renamed = trail_file("events-001.json").unwrap();
        assert_eq!((renamed.day_prefix, renamed.day, renamed.delivered), ("", None, None));
        let window = NameWindow {
            start: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
            end: None,
        };
        assert!(
            window.holds(&renamed),
            "a name without a time is read whatever the window"
        );
        assert!(!window.holds(&file), "a name with a time is selected by it");
        for key in [
            "exports/974349055189_CloudTrail-Digest_us-east-1_t_us-east-1_20170602T101500Z.json.gz",
            "exports/CloudTrail-Insight/x.json.gz",
            "exports/notes.txt",
            "exports/",
        ] {
            assert_eq!(trail_file(key), None, "{key}");
        }
    }

    #[test]
    fn skips_what_is_not_a_log_file() {
        for key in [
            "AWSLogs/974349055189/CloudTrail-Digest/us-east-1/2017/06/02/974349055189_CloudTrail-Digest_us-east-1_t_us-east-1_20170602T101500Z.json.gz",
            "AWSLogs/974349055189/CloudTrail-Insight/us-east-1/2017/06/02/x.json.gz",
            "AWSLogs/974349055189/elasticloadbalancing/us-east-1/2017/06/02/x.log.gz",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/02/",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2017/13/02/x.json.gz",
            "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/02/deeper/x.json.gz",
            "AWSLogs/97434905518/CloudTrail/us-east-1/2017/06/02/x.json.gz",
            "README.txt",
        ] {
            assert_eq!(trail_file(key), None, "{key}");
        }
    }

    #[test]
    fn selects_by_day_and_delivery_time() {
        let file = trail_file(FILE).unwrap();
        assert!(NameWindow::default().holds(&file));
        let at = |h, m, s| Some(Utc.with_ymd_and_hms(2017, 6, 2, h, m, s).unwrap());
        assert!(
            NameWindow {
                start: at(10, 15, 0),
                end: at(10, 15, 0)
            }
            .holds(&file),
            "inclusive at both ends"
        );
        assert!(
            NameWindow {
                start: at(10, 15, 30),
                end: None
            }
            .holds(&file),
            "to the minute of the name"
        );
        assert!(
            !NameWindow {
                start: at(10, 16, 0),
                end: None
            }
            .holds(&file)
        );
        assert!(
            !NameWindow {
                start: None,
                end: at(10, 14, 59)
            }
            .holds(&file)
        );
        let next_day = Some(Utc.with_ymd_and_hms(2017, 6, 3, 0, 0, 0).unwrap());
        assert!(
            !NameWindow {
                start: next_day,
                end: None
            }
            .holds_day(file.day.unwrap())
        );
        assert!(
            NameWindow {
                start: None,
                end: next_day
            }
            .holds_day(file.day.unwrap())
        );
    }
}
