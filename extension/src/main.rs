//! `datadog-agent`: the ddlambda Lambda extension. Wiring only.

mod event;

fn main() {}
