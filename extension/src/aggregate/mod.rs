//! Aggregators: state kept across invocations and drained by the flusher ([`crate::event::Drain`]).

pub mod metrics;
pub mod streams;
