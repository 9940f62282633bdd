//! End-to-end tests: one test binary, one module per area (a single binary links once and
//! runs its tests in parallel).
mod streams_vectors;
mod layer_zip;
mod template_lint;
mod extract_differential;
