//! Tracer-computed stats: the body a tracer sends to `/v0.6/stats` is one
//! `ClientStatsPayload`; the intake's `/api/v0.2/stats` takes a `StatsPayload` wrapping it, as
//! the Datadog agent sends it (msgpack, PascalCase keys, `ClientComputed: true`).

use libdd_trace_protobuf::pb::{ClientStatsPayload, StatsPayload};

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error("tracer stats body is not a msgpack ClientStatsPayload: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("encoding StatsPayload: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Wraps a tracer's `/v0.6/stats` body into the intake's `StatsPayload` (uncompressed msgpack).
pub fn wrap_client_stats(body: &[u8], env: &str) -> Result<Vec<u8>, StatsError> {
    let client: ClientStatsPayload = rmp_serde::from_slice(body)?;
    let payload = StatsPayload {
        agent_hostname: String::new(),
        agent_env: if env.is_empty() {
            client.env.clone()
        } else {
            env.to_owned()
        },
        stats: vec![client],
        agent_version: concat!("ddlambda-", env!("CARGO_PKG_VERSION")).to_owned(),
        client_computed: true,
        split_payload: false,
    };
    Ok(rmp_serde::to_vec_named(&payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_a_client_payload() {
        let client = ClientStatsPayload {
            hostname: "h".into(),
            env: "prod".into(),
            lang: "python".into(),
            ..ClientStatsPayload::default()
        };
        let body = rmp_serde::to_vec_named(&client).unwrap();
        let wrapped = wrap_client_stats(&body, "").unwrap();
        let back: StatsPayload = rmp_serde::from_slice(&wrapped).unwrap();
        assert!(back.client_computed);
        assert_eq!(back.agent_env, "prod");
        assert_eq!(back.stats, vec![client]);
        assert!(wrap_client_stats(b"\xc1", "").is_err());
    }
}
