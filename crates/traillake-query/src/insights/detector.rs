//! The rule that finds an Insight in one key's per-minute counts (write calls of one
//! `eventSource` / `eventName`, or errors of one `errorCode` of it), minute after minute, as
//! `../shared/notes/anchors.md` §1 derives it from AWS's own examples. AWS publishes no threshold;
//! this rule is traillake's, its parameters are [`DetectorSettings`].
//!
//! - The baseline of a minute `m` is the plain mean of the per-minute counts (zeros included) over
//!   the `baseline_minutes` (7 days) before its window, or over all the history there is when
//!   there is less; nothing is found before `min_history_minutes` (36 hours) of history.
//! - The window of `m` is the `window_minutes` (5) ending at `m`. It is unusual when its sum `S`
//!   is at least `min_events` (3), the chance of `S` or more under a Poisson law of the baseline's
//!   mean is under `p_value` (1e-6), and `S` exceeds the baseline's mean by more than `sigmas`
//!   (5) standard deviations of the baseline's minutes (scaled to the window), which keeps
//!   bursty, busy keys quiet.
//! - An Insight starts at the first minute of the first unusual window that is itself high (above
//!   the baseline's mean by `sigmas` deviations; or else above the mean), and its baseline is fixed
//!   there. While it is open, a window stays unusual by a looser test (`continue_p_value` 1e-3,
//!   `continue_sigmas` 2.5, one event), so that a rate that stays high while wavering about the
//!   first threshold makes one Insight; it ends once `end_after_minutes` (3) windows in a row are
//!   not unusual by that test. Its last minute is the last high minute (or else above the mean)
//!   up to the last unusual window.
//!
//! On AWS's documented example (1 call in 7.87 days, then 3 calls in 5 minutes) this starts an
//! Insight of 5 minutes at 0.6 calls a minute, the figures of AWS's event.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The parameters of the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSettings {
    /// Minutes of baseline before a window at most (AWS: 7 days).
    pub baseline_minutes: i64,
    /// Minutes of history needed before anything is found (AWS: up to 36 hours).
    pub min_history_minutes: i64,
    /// Minutes a window sums.
    pub window_minutes: i64,
    /// The Poisson upper-tail probability under which a window is unusual.
    pub p_value: f64,
    /// Standard deviations above the baseline a window must also be.
    pub sigmas: f64,
    /// Events a window must hold at least.
    pub min_events: u64,
    /// Windows in a row, back to normal, that end an Insight.
    pub end_after_minutes: i64,
    /// While an Insight is open, the Poisson tail under which a window still counts as unusual:
    /// looser than `p_value`, so that a rate that stays high but wavers about the starting
    /// threshold makes one Insight, not several.
    pub continue_p_value: f64,
    /// While an Insight is open, the standard deviations above the baseline a window must be.
    pub continue_sigmas: f64,
    /// While an Insight is open, the events a window must hold at least.
    pub continue_min_events: u64,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        Self {
            baseline_minutes: 10_080,
            min_history_minutes: 36 * 60,
            window_minutes: 5,
            p_value: 1e-6,
            sigmas: 5.0,
            min_events: 3,
            end_after_minutes: 3,
            continue_p_value: 1e-3,
            continue_sigmas: 2.5,
            continue_min_events: 1,
        }
    }
}

/// What a started Insight says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InsightFigures {
    /// The Insight's first minute (epoch minutes).
    pub start: i64,
    /// Minutes of the Insight so far (at its start) or in all (at its end).
    pub insight_duration: i64,
    /// Mean count a minute over those minutes.
    pub insight_average: f64,
    /// Minutes of the baseline.
    pub baseline_duration: i64,
    /// Mean count a minute of the baseline.
    pub baseline_average: f64,
}

/// An edge of an Insight, found at a minute.
#[derive(Debug, Clone, PartialEq)]
pub enum Edge {
    /// An Insight started (found once its first window is unusual).
    Start(InsightFigures),
    /// The open Insight ended.
    End(InsightFigures),
}

/// The detector of one key: its recent counts and its open Insight; kept with serde across
/// restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyDetector {
    /// The first minute of the key's source's history.
    history_start: Option<i64>,
    /// The last minute observed.
    last: Option<i64>,
    /// Minutes with a count, oldest first, over the baseline and the window of `last`.
    counts: VecDeque<(i64, u64)>,
    /// Their sum and sum of squares.
    sum: u64,
    squares: u64,
    open: Option<OpenInsight>,
}

/// An Insight that has started and not ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenInsight {
    start: i64,
    baseline_duration: i64,
    baseline_average: f64,
    /// The standard deviation of the baseline's minutes.
    baseline_deviation: f64,
    /// Counts of the Insight's minutes so far, from its start.
    minutes: Vec<u64>,
    /// The last minute whose window was unusual.
    last_unusual: i64,
}

impl KeyDetector {
    /// Returns the detector of a key whose source has history from `history_start` (epoch minutes).
    pub fn new(history_start: i64) -> Self {
        Self {
            history_start: Some(history_start),
            ..Self::default()
        }
    }

    /// Returns true if no minute of the baseline and window before `minute` had a count: the
    /// detector knows nothing a new one would not.
    pub fn is_quiet_since(&self, _minute: i64, _settings: &DetectorSettings) -> bool {
        self.counts.is_empty()
    }

    /// Returns true while an Insight is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes the count of `minute`, the minute after the last one observed or later (the minutes
    /// between count zero), and returns the edge it makes, if any.
    pub fn observe(&mut self, minute: i64, count: u64, settings: &DetectorSettings) -> Option<Edge> {
        if let Some(last) = self.last
            && minute <= last
        {
            return None;
        }
        let mut edge = None;
        // Minutes skipped are zeros: they can end an open Insight.
        if let Some(last) = self.last {
            let mut quiet = last + 1;
            while quiet < minute && self.open.is_some() && edge.is_none() {
                edge = self.step(quiet, 0, settings);
                quiet += 1;
            }
        }
        let found = self.step(minute, count, settings);
        edge.or(found)
    }

    fn step(&mut self, minute: i64, count: u64, settings: &DetectorSettings) -> Option<Edge> {
        self.last = Some(minute);
        let history_start = *self.history_start.get_or_insert(minute);
        if count > 0 {
            self.counts.push_back((minute, count));
            self.sum += count;
            self.squares += count * count;
        }
        let window_start = minute - settings.window_minutes + 1;
        let oldest = window_start - settings.baseline_minutes;
        while let Some(&(first, first_count)) = self.counts.front()
            && first < oldest
        {
            self.counts.pop_front();
            self.sum -= first_count;
            self.squares -= first_count * first_count;
        }
        let (window_sum, window_squares) = self
            .counts
            .iter()
            .rev()
            .take_while(|(m, _)| *m >= window_start)
            .fold((0, 0), |(sum, squares), (_, c)| (sum + c, squares + c * c));
        let baseline_duration = (window_start - history_start.max(oldest)).max(0);

        if let Some(open) = &mut self.open {
            open.minutes.push(count);
            let looser = DetectorSettings {
                p_value: settings.continue_p_value,
                sigmas: settings.continue_sigmas,
                min_events: settings.continue_min_events,
                ..settings.clone()
            };
            let unusual = unusual(window_sum, open.baseline_average, open.baseline_deviation, &looser);
            if unusual {
                open.last_unusual = minute;
            } else if minute - open.last_unusual >= settings.end_after_minutes {
                let open = self.open.take().expect("an Insight is open");
                return Some(Edge::End(open.figures(settings)));
            }
            return None;
        }

        if baseline_duration < settings.min_history_minutes.max(1) {
            return None;
        }
        let baseline_sum = self.sum - window_sum;
        let baseline_squares = self.squares - window_squares;
        let duration = baseline_duration as f64;
        let mean = baseline_sum as f64 / duration;
        let deviation = (baseline_squares as f64 / duration - mean * mean).max(0.0).sqrt();
        if !unusual(window_sum, mean, deviation, settings) {
            return None;
        }
        // The Insight starts at the window's first minute that is itself high (above the
        // baseline by `sigmas` deviations), or else above the baseline's mean.
        let high = mean + settings.sigmas * deviation;
        let in_window = || self.counts.iter().filter(|(m, _)| *m >= window_start);
        let start = in_window()
            .find(|(_, c)| *c as f64 > high)
            .or_else(|| in_window().find(|(_, c)| *c as f64 > mean))
            .map_or(minute, |(m, _)| *m);
        let minutes = (start..=minute)
            .map(|m| self.counts.iter().find(|(k, _)| *k == m).map_or(0, |(_, c)| *c))
            .collect::<Vec<_>>();
        let open = OpenInsight {
            start,
            baseline_duration,
            baseline_average: mean,
            baseline_deviation: deviation,
            minutes,
            last_unusual: minute,
        };
        let figures = open.figures_so_far();
        self.open = Some(open);
        Some(Edge::Start(figures))
    }
}

impl OpenInsight {
    fn figures_so_far(&self) -> InsightFigures {
        let total: u64 = self.minutes.iter().sum();
        let duration = self.minutes.len() as i64;
        InsightFigures {
            start: self.start,
            insight_duration: duration,
            insight_average: total as f64 / duration as f64,
            baseline_duration: self.baseline_duration,
            baseline_average: self.baseline_average,
        }
    }

    /// The figures of the ended Insight: up to its last high minute (as its first is), or else its
    /// last minute above the baseline's mean, up to its last unusual window.
    fn figures(&self, settings: &DetectorSettings) -> InsightFigures {
        let unusual_until = (self.last_unusual - self.start + 1) as usize;
        let minutes = &self.minutes[..unusual_until.min(self.minutes.len())];
        let high = self.baseline_average + settings.sigmas * self.baseline_deviation;
        let last = minutes
            .iter()
            .rposition(|&count| count as f64 > high)
            .or_else(|| minutes.iter().rposition(|&count| count as f64 > self.baseline_average))
            .unwrap_or(0);
        let minutes = &self.minutes[..=last];
        let total: u64 = minutes.iter().sum();
        InsightFigures {
            start: self.start,
            insight_duration: minutes.len() as i64,
            insight_average: total as f64 / minutes.len() as f64,
            baseline_duration: self.baseline_duration,
            baseline_average: self.baseline_average,
        }
    }
}

/// Returns true if a window's sum is unusual against a baseline's mean and deviation per minute.
fn unusual(window_sum: u64, mean: f64, deviation: f64, settings: &DetectorSettings) -> bool {
    let window = settings.window_minutes as f64;
    let expected = mean * window;
    window_sum >= settings.min_events
        && window_sum as f64 > expected + settings.sigmas * deviation * window.sqrt()
        && poisson_upper_tail(window_sum, expected) < settings.p_value
}

/// Returns P(X >= k) for X of a Poisson law of mean `mean`.
pub fn poisson_upper_tail(k: u64, mean: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if mean <= 0.0 {
        return 0.0;
    }
    if (k as f64) <= mean {
        // At or below the mean the tail is at least about a half: never unusual.
        return 0.5;
    }
    // The terms from k on fall geometrically beyond the mean: sum them until they vanish.
    let mut term = (-mean + k as f64 * mean.ln() - ln_factorial(k)).exp();
    let mut total = 0.0;
    let mut i = k;
    while term > total * 1e-16 && term > 0.0 {
        total += term;
        i += 1;
        term *= mean / i as f64;
    }
    total.min(1.0)
}

/// Returns ln(n!).
fn ln_factorial(n: u64) -> f64 {
    if n < 20 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    // Stirling's series; its error at n >= 20 is below 1e-12.
    let n = n as f64;
    n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n) - 1.0 / (360.0 * n.powi(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(counts: &[(i64, u64)], until: i64, settings: &DetectorSettings) -> Vec<(i64, Edge)> {
        let mut detector = KeyDetector::new(0);
        let mut edges = Vec::new();
        let mut given = counts.iter().peekable();
        for minute in 0..=until {
            let count = match given.peek() {
                Some((m, c)) if *m == minute => {
                    given.next();
                    *c
                }
                _ => 0,
            };
            if let Some(edge) = detector.observe(minute, count, settings) {
                edges.push((minute, edge));
            }
        }
        edges
    }

    #[test]
    fn the_tail_of_a_poisson_law() {
        assert!(
            (poisson_upper_tail(1, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 0.5,
            "at the mean: a half"
        );
        let small = poisson_upper_tail(3, 0.01);
        let exact = 1.0 - (-0.01f64).exp() * (1.0 + 0.01 + 0.0001 / 2.0);
        assert!((small - exact).abs() / exact < 1e-6, "{small} {exact}");
        assert!((ln_factorial(25) - (1..=25).map(|i| (i as f64).ln()).sum::<f64>()).abs() < 1e-10);
        assert_eq!(poisson_upper_tail(3, 0.0), 0.0);
    }

    #[test]
    fn aws_documented_example_starts_an_insight_of_five_minutes_at_0_6() {
        // 1 call in 11,336 minutes (7.87 days), then 3 calls in 5 minutes.
        let settings = DetectorSettings {
            baseline_minutes: 11_336,
            ..DetectorSettings::default()
        };
        let burst = 11_336 + 5;
        let edges = run(
            &[(100, 1), (burst, 1), (burst + 2, 1), (burst + 4, 1)],
            burst + 20,
            &settings,
        );
        let [(found, Edge::Start(start)), (_, Edge::End(end))] = &edges[..] else {
            panic!("{edges:?}");
        };
        assert_eq!(*found, burst + 4);
        assert_eq!((start.start, start.insight_duration), (burst, 5));
        assert!((start.insight_average - 0.6).abs() < 1e-12);
        assert!((start.baseline_average * start.baseline_duration as f64 - 1.0).abs() < 1e-9);
        assert_eq!(start.baseline_duration, 11_336);
        assert_eq!((end.start, end.insight_duration), (burst, 5));
        assert!((end.insight_average - 0.6).abs() < 1e-12);
    }

    #[test]
    fn steady_traffic_stays_quiet_and_a_burst_is_found() {
        // A steady week: 20 to 40 calls a minute, deterministic noise.
        let mut counts: Vec<(i64, u64)> = (0..10_080).map(|m| (m, 20 + (m * 7919 % 21) as u64)).collect();
        let settings = DetectorSettings::default();
        assert!(run(&counts, 10_079, &settings).is_empty(), "steady traffic");
        // Then 10 minutes at 300 a minute.
        for minute in 10_080..10_090 {
            counts.push((minute, 300));
        }
        for minute in 10_090..10_200 {
            counts.push((minute, 20 + (minute * 7919 % 21) as u64));
        }
        let edges = run(&counts, 10_199, &settings);
        let [(found, Edge::Start(start)), (ended, Edge::End(end))] = &edges[..] else {
            panic!("{edges:?}");
        };
        assert!(
            (10_080..10_085).contains(found),
            "found within the burst's first minutes: {found}"
        );
        assert!(start.start <= 10_080 && end.start == start.start);
        assert!((10_090..10_100).contains(ended), "{ended}");
        assert!(end.insight_average > 250.0 && end.baseline_average > 20.0 && end.baseline_average < 40.0);
    }

    #[test]
    fn aws_error_example_fires() {
        // 17 errors spread over a week (0.0017 a minute), then 18 errors a minute for 4 minutes.
        let mut counts: Vec<(i64, u64)> = (0..17).map(|i| (i * 593, 1)).collect();
        counts.extend((10_080..10_084).map(|m| (m, 18)));
        let edges = run(&counts, 10_100, &DetectorSettings::default());
        let [(found, Edge::Start(start)), (_, Edge::End(end))] = &edges[..] else {
            panic!("{edges:?}");
        };
        assert_eq!((*found, start.start), (10_080, 10_080));
        assert!((start.baseline_average * start.baseline_duration as f64 - 17.0).abs() < 1e-9);
        assert!(start.baseline_average < 0.0018);
        assert_eq!(end.insight_duration, 4);
        assert!((end.insight_average - 18.0).abs() < 1e-12);
    }

    #[test]
    fn a_high_rate_that_wavers_is_one_insight() {
        // 17 errors over a week, then 30 minutes of 0, 1, 2, 1, 2, 0... errors a minute.
        let mut counts: Vec<(i64, u64)> = (0..17).map(|i| (i * 593, 1)).collect();
        counts.extend(
            (0..30)
                .map(|m| (10_080 + m, [0, 1, 2, 1, 2, 0][m as usize % 6]))
                .filter(|(_, c)| *c > 0),
        );
        let edges = run(&counts, 10_200, &DetectorSettings::default());
        let states: Vec<&str> = edges
            .iter()
            .map(|(_, edge)| match edge {
                Edge::Start(_) => "Start",
                Edge::End(_) => "End",
            })
            .collect();
        assert_eq!(states, ["Start", "End"], "{edges:?}");
    }

    #[test]
    fn nothing_before_36_hours_of_history() {
        let settings = DetectorSettings::default();
        assert!(run(&[(100, 50), (101, 50)], 200, &settings).is_empty());
        let late = 36 * 60 + 10;
        let edges = run(&[(late, 50), (late + 1, 50)], late + 20, &settings);
        assert!(matches!(edges.first(), Some((_, Edge::Start(_)))), "{edges:?}");
    }

    #[test]
    fn a_detector_kept_and_read_back_goes_on_where_it_was() {
        let settings = DetectorSettings::default();
        let mut detector = KeyDetector::new(0);
        let start = 3_000;
        for minute in 0..start {
            assert!(
                detector
                    .observe(minute, u64::from(minute % 100 == 0), &settings)
                    .is_none()
            );
        }
        assert!(matches!(detector.observe(start, 40, &settings), Some(Edge::Start(_))));
        let kept = serde_json::to_string(&detector).unwrap();
        let mut read: KeyDetector = serde_json::from_str(&kept).unwrap();
        assert!(read.is_open());
        // A minute seen again is ignored; a gap of quiet minutes ends the Insight.
        assert!(read.observe(start, 40, &settings).is_none());
        assert!(matches!(read.observe(start + 30, 0, &settings), Some(Edge::End(_))));
        assert!(!read.is_open());
    }
}
