//! The process-wide wrapper state: configuration, the extraction chain, data-streams settings
//! and the transport, set up once per sandbox.

use std::sync::{Arc, OnceLock};

use crate::config::Config;
use crate::extract::{Chain, Registry};
use crate::streams::StreamsConfig;
use crate::transport::Transport;

/// Everything an invocation needs from the process. Cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    chain: Chain,
    streams: StreamsConfig,
    transport: Transport,
}

static GLOBAL: OnceLock<Tracer> = OnceLock::new();

impl Tracer {
    /// A tracer with explicit parts (tests, or code that configures the wrapper by hand).
    pub fn new(config: Config, chain: Chain, streams: StreamsConfig) -> Self {
        let transport = Transport::new(config.agent_addr.clone(), config.trace_enabled);
        crate::handler::install_panic_hook();
        Self {
            inner: Arc::new(Inner {
                config,
                chain,
                streams,
                transport,
            }),
        }
    }

    /// Configured from the environment, with the built-in extractors.
    pub fn from_env() -> Self {
        Self::from_env_with(&Registry::new())
    }

    /// Configured from the environment; `DD_TRACE_EXTRACTOR` may name an extractor of
    /// `registry`.
    pub fn from_env_with(registry: &Registry) -> Self {
        Self::new(
            Config::from_env(),
            Chain::from_env_or_log(registry),
            StreamsConfig::from_env(),
        )
    }

    /// The process-wide tracer: the one passed to [`Tracer::install`], else one configured
    /// from the environment on first use.
    pub fn global() -> &'static Tracer {
        GLOBAL.get_or_init(Tracer::from_env)
    }

    /// Makes `self` the process-wide tracer. Returns `false` (and changes nothing) if one is
    /// already in use.
    pub fn install(self) -> bool {
        GLOBAL.set(self).is_ok()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn chain(&self) -> &Chain {
        &self.inner.chain
    }

    pub fn streams(&self) -> &StreamsConfig {
        &self.inner.streams
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Waits until everything handed to the transport so far has been sent (or written to
    /// stdout). Useful before a process exits, and in tests.
    pub async fn flush(&self) {
        self.inner.transport.flush().await;
    }
}
