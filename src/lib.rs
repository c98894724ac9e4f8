//! c10k-server: a sharded static-file HTTP/1.1 server. Layers, bottom up: `http` (parse,
//! encode) → `files` (resolve, cache) → `conn` (state machine) → `driver` (the kernel) →
//! `shard` (one reactor per core) → `master` (workers, signals). See DESIGN.md.

pub mod config;
pub mod conn;
pub mod driver;
pub mod files;
pub mod http;
pub mod master;
pub mod shard;
pub mod tuning;
