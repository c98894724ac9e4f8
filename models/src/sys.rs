//! The descriptor limit, which every model raises to see where it stops.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::io;

/// RLIMIT_NOFILE's soft limit up to its hard one.
pub fn raise_nofile() -> io::Result<()> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    Ok(setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?)
}
