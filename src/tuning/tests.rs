use super::*;

/// This development machine: hard nofile 20000, no CAP_SYS_RESOURCE, plenty of memory.
fn dev_box() -> Host {
    Host {
        nofile_soft: 1024,
        nofile_hard: 20_000,
        cap_sys_resource: false,
        nr_open: Some(1_048_576),
        file_max: Some(2_466_177),
        files_in_use: Some(3_000),
        somaxconn: Some(4096),
        mem_available: Some(20 << 30),
        io_uring_disabled: Some(0),
        cpus: 2,
    }
}

#[test]
fn capacity_is_shards_times_per_process_fds() {
    let p = plan(&dev_box(), 2, None, true).unwrap();
    assert_eq!(p.per_shard, 20_000 - RESERVE_FDS);
    assert_eq!(p.capacity, 2 * (20_000 - RESERVE_FDS));
    assert_eq!((p.binding, p.nofile, p.raise_hard_to), (Limit::Nofile, 20_000, None));
    assert!(p.warnings.is_empty(), "nothing stands between this host and 10,000: {:?}", p.warnings);
}

#[test]
fn a_warning_only_when_a_limit_stands_below_the_default_target() {
    let host = Host { nofile_hard: 1024, ..dev_box() };
    let p = plan(&host, 1, None, false).unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    let w = &p.warnings[0];
    assert!(w.starts_with("this server can hold 768 connections, fewer than 10000: RLIMIT_NOFILE hard is 1024"), "{w}");
    let enough = plan(&Host { cpus: 32, ..host }, 20, None, false).unwrap();
    assert!(enough.warnings.is_empty(), "20 shards × 768 hold 10,000: {:?}", enough.warnings);
}

#[test]
fn target_within_capacity_starts() {
    let p = plan(&dev_box(), 2, Some(30_000), false).unwrap();
    assert_eq!(p.capacity, 2 * (20_000 - RESERVE_FDS));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn target_beyond_nofile_without_cap_is_refused_with_the_fix() {
    let Refusal(msg) = plan(&dev_box(), 2, Some(100_000), false).unwrap_err();
    assert!(msg.contains("RLIMIT_NOFILE hard is 20000"), "{msg}");
    assert!(msg.contains("LimitNOFILE=50256"), "{msg}");
    assert!(msg.contains("--shards 6 (6 processes on 2 CPUs: they share the cores"), "{msg}");
    let Refusal(msg) = plan(&Host { cpus: 8, ..dev_box() }, 2, Some(100_000), false).unwrap_err();
    assert!(msg.ends_with("--shards 6"), "within the CPUs, no cost to name: {msg}");
}

#[test]
fn more_shards_than_cpus_is_said_with_why() {
    let p = plan(&dev_box(), 64, None, false).unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("64 shards on 2 CPUs: shards share the cores"), "{:?}", p.warnings);
    assert!(plan(&dev_box(), 2, None, false).unwrap().warnings.is_empty());
}

#[test]
fn more_shards_lift_the_nofile_bound() {
    assert!(plan(&dev_box(), 6, Some(100_000), false).is_ok());
}

#[test]
fn cap_sys_resource_raises_the_hard_limit_up_to_nr_open() {
    let host = Host { cap_sys_resource: true, ..dev_box() };
    let p = plan(&host, 2, Some(100_000), false).unwrap();
    assert_eq!(p.raise_hard_to, Some(50_000 + RESERVE_FDS));
    assert_eq!(p.per_shard, 50_000);
    let tight = Host { nr_open: Some(30_000), ..host };
    let Refusal(msg) = plan(&tight, 2, Some(100_000), false).unwrap_err();
    assert!(msg.contains("fs.nr_open is 30000") && msg.contains("sysctl -w fs.nr_open=50256"), "{msg}");
}

#[test]
fn file_max_binds_when_lower() {
    let host = Host { file_max: Some(20_000), files_in_use: Some(2_000), ..dev_box() };
    let p = plan(&host, 2, None, false).unwrap();
    assert_eq!((p.binding, p.capacity), (Limit::FileMax, 20_000 - 2_000 - 2 * RESERVE_FDS));
    assert_eq!(p.per_shard, p.capacity.div_ceil(2));
    let Refusal(msg) = plan(&host, 2, Some(30_000), false).unwrap_err();
    assert!(msg.contains("fs.file-max is 20000") && msg.contains("sysctl -w fs.file-max="), "{msg}");
}

#[test]
fn memory_binds_on_a_small_host() {
    let host = Host { mem_available: Some(100 << 20), ..dev_box() };
    let p = plan(&host, 2, None, false).unwrap();
    assert_eq!((p.binding, p.capacity), (Limit::Memory, (100 << 20) / BYTES_PER_CONN));
    assert!(plan(&host, 2, Some(50_000), false).unwrap_err().0.contains("MiB of memory"));
}

#[test]
fn small_backlog_and_disabled_uring_warn() {
    let host = Host { somaxconn: Some(128), io_uring_disabled: Some(2), ..dev_box() };
    let p = plan(&host, 1, Some(1_000), true).unwrap();
    assert!(p.warnings.iter().any(|w| w.contains("somaxconn is 128")), "{:?}", p.warnings);
    assert!(p.warnings.iter().any(|w| w.contains("io_uring_disabled=2")), "{:?}", p.warnings);
    let epoll = plan(&host, 1, Some(1_000), false).unwrap();
    assert!(!epoll.warnings.iter().any(|w| w.contains("io_uring")));
}

#[test]
fn capacity_line_reads_like_the_issue() {
    let host = dev_box();
    let line = capacity_line(&host, &plan(&host, 2, None, false).unwrap());
    assert!(line.starts_with("capacity: 2 shards × 19,744 = 39,488 connections (RLIMIT_NOFILE hard 20000;"), "{line}");
    assert!(line.contains("no CAP_SYS_RESOURCE to raise it") && line.contains("fs.file-max 2466177"), "{line}");
}
