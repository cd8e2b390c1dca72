//! CloudTrail Insights (issue 25): unusual rates of write calls and of errors found in the
//! management events of event data stores and, for trails, of an account's Event history.
//! `detector` is the rule that finds an Insight in one key's per-minute counts; `runner` counts
//! the minutes of each source, feeds the detectors and writes the Insights events where the
//! source's go.

pub mod detector;
pub mod runner;

pub use runner::Insights;
