//! Files: a request target becomes a file beneath the root, safely, and a per-shard cache
//! keeps what serving it needs. No sockets, no HTTP framing, no unsafe.
#![forbid(unsafe_code)]

pub mod cache;
pub mod listing;
pub mod mime;
pub mod resolve;

pub use cache::{Cache, Content, Entry, Rep};
pub use resolve::{Root, Target, TargetError, normalize};
