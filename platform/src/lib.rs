//! A local AWS Lambda platform.
