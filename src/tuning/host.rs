//! Reading the host's limits (and raising RLIMIT_NOFILE), the only part of tuning that
//! touches the system.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::io;

/// The limits that decide capacity, as read from this host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub cap_sys_resource: bool,
    pub nr_open: Option<u64>,
    pub file_max: Option<u64>,
    pub files_in_use: Option<u64>,
    pub somaxconn: Option<u64>,
    pub mem_available: Option<u64>,
    pub io_uring_disabled: Option<u64>,
    /// CPUs this process may run on.
    pub cpus: u64,
}

fn proc_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

impl Host {
    pub fn read() -> io::Result<Host> {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        // CapEff is a hex mask; CAP_SYS_RESOURCE is bit 24.
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_available = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024);
        Ok(Host {
            nofile_soft: soft,
            nofile_hard: hard,
            cap_sys_resource: cap_eff & (1 << 24) != 0,
            nr_open: proc_u64("/proc/sys/fs/nr_open"),
            file_max: proc_u64("/proc/sys/fs/file-max"),
            files_in_use: proc_u64("/proc/sys/fs/file-nr"),
            somaxconn: proc_u64("/proc/sys/net/core/somaxconn"),
            mem_available,
            io_uring_disabled: proc_u64("/proc/sys/kernel/io_uring_disabled"),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        })
    }
}

/// Set RLIMIT_NOFILE to `hard` for both soft and hard (raising hard needs
/// CAP_SYS_RESOURCE); workers inherit it.
pub fn raise_nofile(hard: u64) -> io::Result<()> {
    Ok(setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?)
}
