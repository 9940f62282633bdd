//! Local listeners: one file per endpoint the extension serves. They push what they receive
//! into the buffer ([`crate::buffer::Inbox`]) or an aggregator; nothing here knows upstream
//! formats.

pub mod checkpoints;
pub mod dogstatsd;
pub mod trace_agent;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};

use crate::aggregate::metrics::MetricsAggregator;
use crate::aggregate::streams::StreamsAggregator;
use crate::buffer::Buffer;
use crate::config::Config;

/// Every local listener, bound before the first `/next` so that a port in use fails start-up
/// (and sends the extension idle) instead of failing requests later.
pub struct Listeners {
    pub trace_agent: TcpListener,
    pub trace_agent_config: trace_agent::TraceAgentConfig,
    pub dogstatsd: UdpSocket,
}

/// Where listeners put what they receive.
pub struct Destinations {
    pub buffer: Arc<Buffer>,
    pub streams: Arc<StreamsAggregator>,
    pub metrics: Arc<MetricsAggregator>,
}

/// Binds every listener on 127.0.0.1.
pub async fn bind(config: &Config) -> Result<Listeners, String> {
    let trace_agent_config = trace_agent::TraceAgentConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], config.trace_agent_port)),
        ..trace_agent::TraceAgentConfig::default()
    };
    let trace_agent = trace_agent::bind(&trace_agent_config).await.map_err(|e| {
        format!(
            "cannot listen on {} (trace agent): {e}",
            trace_agent_config.addr
        )
    })?;
    let statsd_addr = SocketAddr::from(([127, 0, 0, 1], config.dogstatsd_port));
    let dogstatsd = dogstatsd::bind(statsd_addr)
        .await
        .map_err(|e| format!("cannot listen on udp {statsd_addr} (DogStatsD): {e}"))?;
    Ok(Listeners {
        trace_agent,
        trace_agent_config,
        dogstatsd,
    })
}

/// Starts serving on every bound listener.
pub fn serve(listeners: Listeners, to: Destinations) {
    let agent = trace_agent::TraceAgent::new(&listeners.trace_agent_config, to.buffer)
        .with_checkpoints(to.streams);
    tokio::spawn(trace_agent::serve(listeners.trace_agent, Arc::new(agent)));
    tokio::spawn(dogstatsd::serve(listeners.dogstatsd, to.metrics));
}
