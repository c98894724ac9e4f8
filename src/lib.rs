//! c10k-server: a sharded static-file HTTP/1.1 (and HTTPS) server. Layers, bottom up: `http` (parse,
//! encode) → `log` (the server's own lines) → `stats` (counters shared with the master) →
//! `files` (resolve, cache) → `conn` (the protocol state machine) → `access` (the access
//! log, fed by the lifecycle's events) → `transport` (how bytes are carried) → `tls`
//! (rustls as a transport: certificates, ticket keys, records) → `lifecycle`
//! (slab, timers, admission, every decision about a connection's life) → `driver` (the
//! kernel) → `shard` (one reactor per core) → `master` (workers, supervision, signals,
//! reloads, the status listener). No module imports one above it. See DESIGN.md.

pub mod access;
pub mod config;
pub mod conn;
pub mod driver;
pub mod files;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod http;
pub mod lifecycle;
pub mod log;
pub mod master;
pub mod shard;
pub mod site;
pub mod stats;
pub mod tls;
pub mod transport;
pub mod tuning;
