//! End-to-end tests: one test binary, one module per area (a single binary links once and
//! runs its tests in parallel).
mod streams_vectors;
mod layer_zip;
mod template_lint;
mod extract_differential;
mod extension_tracers;
mod extract_xray_datagram;
mod extract_trigger_tags;
mod streams_moto;
mod platform_lifecycle;
mod platform_failures;
mod platform_telemetry;
mod platform_shutdown;
mod wrapper_testagent;
mod wrapper_rie;
mod wrapper_platform;
mod metrics_dogstatsd;
mod metrics_platform;
mod extension_lifecycle;
mod rie_smoke;
mod platform_cli;
mod streams_forward;
mod extension_rie;
mod platform_api_errors;
mod extension_secrets;
mod demo;
