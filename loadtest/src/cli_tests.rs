//! The flags' parsing and validation.

use super::*;

#[test]
fn urls() {
    let u = parse_url("http://127.0.0.1:8080/index.html?x=1").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 8080, "/index.html?x=1"));
    assert_eq!(parse_url("http://localhost").unwrap().path, "/");
    assert_eq!(parse_url("http://localhost").unwrap().port, 80);
    let v6 = parse_url("http://[::1]:81/a").unwrap();
    assert_eq!((v6.host.as_str(), v6.port, v6.authority.as_str()), ("::1", 81, "[::1]:81"));
    for bad in ["https://x/", "ftp://x/", "x:80/", "http://:80/", "http://h:0/", "http://h:99999/", "http://h/a b"] {
        assert!(parse_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_and_sources() {
    assert_eq!(parse_duration("-", "1.5").unwrap(), Duration::from_millis(1500));
    assert_eq!(parse_duration("-", "250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("-", "2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("-", "0").is_err() && parse_duration("-", "x").is_err());
    let s = parse_sources("127.0.0.2-127.0.0.4,10.0.0.1").unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(s[2], "127.0.0.4".parse::<IpAddr>().unwrap());
    assert!(parse_sources("127.0.0.4-127.0.0.2").is_err() && parse_sources("nope").is_err());
}

#[test]
fn shares_add_up() {
    for (total, parts) in [(10, 3), (4, 4), (5, 2), (0, 3)] {
        assert_eq!((0..parts).map(|i| share(total, parts, i)).sum::<usize>(), total);
    }
}

#[test]
fn mixed_hosts_are_refused() {
    let args = Args::parse_from(["c10k-load", "--url", "http://127.0.0.1:1/a", "--url", "http://127.0.0.1:2/b"]);
    assert!(Config::from_args(args).unwrap_err().contains("share one host:port"));
}

fn config(args: &[&str]) -> Result<Config, String> {
    Config::from_args(Args::parse_from([&["c10k-load", "--url", "http://127.0.0.1:9/"][..], args].concat()))
}

#[test]
fn warmup_is_seconds_or_none_and_needs_active_connections() {
    let cfg = config(&["--warmup", "2"]).unwrap();
    assert_eq!((cfg.warmup, cfg.open_first), (Some(Duration::from_secs(2)), true));
    for zero in ["0", "0s", "0ms", "0.0"] {
        assert_eq!(config(&["--warmup", zero]).unwrap().warmup, Some(Duration::ZERO), "{zero}");
    }
    assert_eq!(config(&["--warmup", "500ms"]).unwrap().warmup, Some(Duration::from_millis(500)));
    assert_eq!(config(&[]).unwrap().warmup, None);
    assert!(!config(&[]).unwrap().open_first);
    // With --new-conn no connection is kept: only the seconds of load warm the server.
    let cfg = config(&["--warmup", "1", "--new-conn"]).unwrap();
    assert_eq!((cfg.warmup, cfg.open_first), (Some(Duration::from_secs(1)), false));
    for (args, says) in [
        (&["--warmup", "x"][..], "--warmup x: expected a number of seconds"),
        (&["--warmup=-1"], "--warmup -1: expected a number of seconds"),
        (&["--warmup", "1", "--conns", "0", "--idle", "5"], "--warmup applies to the active connections"),
        (&["--warmup", "1", "--load-during-ramp"], "drop one of them"),
        (&["--warmup", "0", "--new-conn"], "--warmup 0 with --new-conn warms nothing"),
    ] {
        let e = config(args).unwrap_err();
        assert!(e.starts_with(says) || e.contains(says), "{args:?}: {e}");
    }
}

#[test]
fn workers_get_the_warmup_and_the_groups() {
    let cfg = config(&["--procs", "2", "--warmup", "1.5", "--tls", "--tls-kx", "p256"]).unwrap();
    let args = worker_args(&cfg, 0);
    assert!(args.windows(2).any(|w| w == ["--warmup", "1.5"]), "{args:?}");
    assert!(args.windows(2).any(|w| w == ["--tls-kx", "p256"]), "{args:?}");
    let plain = worker_args(&config(&["--procs", "2"]).unwrap(), 0);
    assert!(!plain.iter().any(|a| a == "--warmup" || a == "--tls-kx"), "{plain:?}");
}
