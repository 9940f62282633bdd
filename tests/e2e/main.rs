//! End-to-end tests: one test binary, one module per area (a single binary links once and
//! runs its tests in parallel).
mod demo;
mod extension_lifecycle;
mod extension_rie;
mod extension_secrets;
mod extension_tracers;
mod extract_differential;
mod extract_trigger_tags;
mod extract_xray_datagram;
mod layer_zip;
mod metrics_dogstatsd;
mod metrics_platform;
mod platform_api_errors;
mod platform_cli;
mod platform_failures;
mod platform_lifecycle;
mod platform_shutdown;
mod platform_telemetry;
mod rie_smoke;
mod streams_forward;
mod streams_moto;
mod streams_vectors;
mod template_lint;
mod wrapper_followups;
mod wrapper_platform;
mod wrapper_rie;
mod wrapper_testagent;
