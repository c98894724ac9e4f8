//! `epoll` and `uring`: the production shard, unchanged (the same `Shard` the server's
//! workers run, on one core, with its timeouts), for the other models to be measured
//! against. What the course ended with (edge-triggered epoll), and where this project
//! went after it (io_uring).

use crate::{Docroot, Served};
use c10k_server::driver::{Driver, Sizing};
use c10k_server::lifecycle::Timeouts;
use c10k_server::shard::{Shard, Stop};
use nix::sys::resource::{Resource, getrlimit};
use std::net::TcpListener;

pub fn run<D: Driver>(listener: TcpListener, docroot: &Docroot) -> Served {
    // Every descriptor but a few for the listener, the ring and the files served.
    let (nofile, _) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let sizing = Sizing { max_conns: nofile.saturating_sub(64).max(64) as usize, recv_buffers: None };
    let shard = Shard::<D>::new(vec![listener], docroot.ctx(4096), Timeouts::default(), sizing)?;
    // Nothing sets the flags: the model serves until it is killed.
    shard.run(&Stop::default(), 0)
}
