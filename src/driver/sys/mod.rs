//! Socket, file and process calls, each a thin wrapper that returns `io::Result`, grouped
//! by job: the shards' sockets (`socket`), what a worker inherits from the master
//! (`inherit`), the shared counters' and the ticket keys' memfds (`memfd`), fork for the
//! models (`process`), the master's status listener (`status_io`), steering new
//! connections to the shards that serve (`steer`) and the access log's file (`logfile`).
//! Everything is re-exported here, so callers name `sys::X` whichever file holds it.

mod inherit;
mod logfile;
mod memfd;
mod process;
mod socket;
mod status_io;
mod steer;

pub use inherit::{
    Inherited, LISTEN_FD_ENV, READY_FD_ENV, STATS_BLOCKS_ENV, STATS_FD_ENV, TICKETS_FD_ENV, set_inheritable,
    take_inherited,
};
pub use logfile::LogFile;
pub use memfd::{map_stats, sealed_memfd, stats_memfd};
pub use process::fork_single_threaded;
pub use socket::{
    SEND_LOWAT, accept, check_port_free, prepare_accepted, read, reset_on_close, reuseport_listener, send_file,
    send_file_len, shutdown_write, write,
};
pub use status_io::status_listener;
pub use steer::steer_to;
