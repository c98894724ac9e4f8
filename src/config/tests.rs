//! The flags' parsers and checks.

use super::*;

#[test]
fn cpu_affinity_takes_auto_off_and_lists() {
    assert_eq!(parse_affinity("auto"), Ok(CpuAffinity::Auto));
    assert_eq!(parse_affinity("off"), Ok(CpuAffinity::Off));
    assert_eq!(parse_affinity("0,2,4-6"), Ok(CpuAffinity::List(vec![0, 2, 4, 5, 6])));
    for bad in ["", "x", "3-1", "1,,2", "-1"] {
        assert!(parse_affinity(bad).is_err_and(|e| e.contains("such as 0,2,4-7")), "{bad:?}");
    }
    let list = parse_affinity("1,3").unwrap();
    assert_eq!((0..3).map(|i| list.core_for(i, &[0, 1])).collect::<Vec<_>>(), [Some(1), Some(3), Some(1)]);
    assert_eq!(CpuAffinity::Auto.core_for(3, &[0, 1]), Some(1));
    assert_eq!(CpuAffinity::Off.core_for(0, &[0, 1]), None);
}

/// Every size flag takes the same suffixes, and says so in `--help`.
#[test]
fn every_size_takes_a_suffix() {
    assert_eq!(parse_request_line("8k"), Ok(8192));
    assert_eq!(parse_header_bytes("1m"), Ok(1 << 20));
    assert_eq!(parse_bytes("2g"), Ok(2 << 30));
    assert_eq!(parse_request_line("16"), Ok(16));
    let help = <Config as clap::CommandFactory>::command().render_long_help().to_string();
    for flag in ["--max-request-line", "--max-header-bytes", "--max-body"] {
        let at = help.find(flag).unwrap_or_else(|| panic!("{flag} in --help"));
        let text: String = help[at..].lines().take(4).collect();
        assert!(text.contains("k, m or g"), "{flag}: {text}");
    }
}

fn parse(args: &[&str]) -> Config {
    Config::try_parse_from(std::iter::once("c10k-server").chain(args.iter().copied())).unwrap()
}

/// A later --listen overrides an earlier one; the TLS flags add up, in order; without
/// --tls-listen the plain listener is the default one, with it there is none unless asked.
#[test]
fn listeners_come_plain_first_then_tls_in_order() {
    let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(parse(&[]).listeners(), [(DEFAULT_LISTEN, false)]);
    assert_eq!(
        parse(&["--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2"]).listeners(),
        [(addr("127.0.0.1:2"), false)]
    );
    let tls_only = parse(&["--tls-listen", "127.0.0.1:3", "--tls-listen", "[::1]:4", "--tls-cert-dir", "d"]);
    assert_eq!(tls_only.listeners(), [(addr("127.0.0.1:3"), true), (addr("[::1]:4"), true)]);
    let both = parse(&["--tls-listen", "127.0.0.1:3", "--listen", "127.0.0.1:2", "--tls-cert", "a", "--tls-key", "ak"]);
    assert_eq!(both.listeners(), [(addr("127.0.0.1:2"), false), (addr("127.0.0.1:3"), true)]);
    let pairs = parse(&["--tls-cert", "a", "--tls-cert", "b", "--tls-key", "ak", "--tls-key", "bk"]).cert_sources();
    let path = |s: &str| PathBuf::from(s);
    assert_eq!(pairs.pairs, [(path("a"), path("ak")), (path("b"), path("bk"))]);
    assert_eq!(pairs.dir, None);
}

#[test]
fn flags_that_do_not_go_together_say_what_to_do() {
    let cases: &[(&[&str], &str)] = &[
        (&["--tls-listen", "127.0.0.1:1", "--tls-cert", "a"], "1 --tls-cert and 0 --tls-key: pass one --tls-key"),
        (&["--tls-listen", "127.0.0.1:1"], "--tls-listen needs a certificate: pass --tls-cert PEM --tls-key PEM"),
        (&["--tls-cert", "a", "--tls-key", "b"], "--tls-cert without --tls-listen: pass --tls-listen ADDR:PORT"),
        (&["--tls-cert-dir", "d"], "--tls-cert-dir without --tls-listen"),
        (
            &["--listen", "127.0.0.1:1", "--tls-listen", "127.0.0.1:1", "--tls-cert-dir", "d"],
            "127.0.0.1:1 is given to --listen and --tls-listen: give each listener an address of its own",
        ),
        (
            &["--tls-listen", "127.0.0.1:1", "--tls-listen", "127.0.0.1:1", "--tls-cert-dir", "d"],
            "is given to --tls-listen twice",
        ),
    ];
    for &(args, want) in cases {
        let why = parse(args).check().expect_err("accepted");
        assert!(why.contains(want), "{args:?}: {why:?} does not say {want:?}");
    }
    // Port 0 is a new port each time.
    let zeros = ["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"];
    assert_eq!(parse(&[&zeros[..], &["--tls-cert-dir", "d"]].concat()).check(), Ok(()));
}
