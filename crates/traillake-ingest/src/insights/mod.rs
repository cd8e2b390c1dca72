//! CloudTrail Insights (issue 25): unusual rates of write calls and of errors found in management
//! events. So far the rule that finds an Insight in one key's per-minute counts (`detector`); the
//! selectors, the counters fed by live events, the Insights events and their delivery come next.

pub mod detector;
