//! The detector's integration tests: scenarios through the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cold_start;
mod scenarios;
