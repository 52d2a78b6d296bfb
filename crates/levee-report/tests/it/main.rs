//! `levee-report` from real records: an incident file the edge wrote during
//! a drill flood (fixtures/flood.jsonl), the same with a block and a
//! damaged line, and findings in the shape `levee hunt --json` writes.
//! Golden files hold the stable renderings (`UPDATE_GOLDEN=1 cargo test
//! -p levee-report` rewrites them after a deliberate change).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod golden;
mod personal_data;
