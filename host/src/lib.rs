//! copa-host: patch vulnerable packages inside container images without rebuilding them.
//!
//! The flow is one-way: `cli -> engine -> {report, image, plugin, index, http, exec, summary, vex}`.
//! Nothing below `engine` knows about the command line: messages name a [`setting::Setting`],
//! which `cli` spells as its flag.

pub mod cli;
pub mod engine;
pub mod exec;
pub mod http;
pub mod image;
pub mod index;
pub mod model;
pub mod netrc;
pub mod plugin;
pub mod report;
pub mod setting;
pub mod summary;
pub mod terminal;
pub mod vex;
