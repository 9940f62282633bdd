//! End-to-end tests: one test binary, one module per area (a single binary links once and
//! runs its tests in parallel).
