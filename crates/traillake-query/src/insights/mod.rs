//! CloudTrail Insights (issue 25): unusual rates of write calls and of errors found in the
//! management events of event data stores. `detector` is the rule that finds an Insight in one
//! key's per-minute counts; `runner` counts the minutes of each source store, feeds the detectors
//! and writes the Insights events to the destination store.

pub mod detector;
pub mod runner;

pub use runner::Insights;
