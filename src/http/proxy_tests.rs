//! The PROXY header parser, whole, cut and hostile, and `Net`. Each header is checked for
//! its exact length and source, and that every strict prefix of it is `Partial`.

use super::*;
use proptest::prelude::*;
use std::net::SocketAddrV6;

#[track_caller]
fn whole(input: &[u8]) -> Option<SocketAddr> {
    for cut in 0..input.len() {
        assert_eq!(parse(&input[..cut]), Ok(Parsed::Partial), "{:?} cut at {cut}", input.escape_ascii().to_string());
    }
    let mut followed = input.to_vec();
    followed.extend_from_slice(b"GET / HTTP/1.1\r\n");
    match parse(&followed) {
        Ok(Parsed::Complete { len, source }) => {
            assert_eq!(len, input.len(), "{:?}", input.escape_ascii().to_string());
            assert_eq!(parse(input), Ok(Parsed::Complete { len, source }));
            source
        }
        other => panic!("{:?}: {other:?}", input.escape_ascii().to_string()),
    }
}

#[track_caller]
fn refused(input: &[u8], want: ProxyError) {
    assert_eq!(parse(input), Err(want), "{:?}", input.escape_ascii().to_string());
}

fn at(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn v2(version_command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut header = V2_SIGNATURE.to_vec();
    header.extend_from_slice(&[version_command, family]);
    header.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    header.extend_from_slice(body);
    header
}

const V4_BODY: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x01, 0xbb];

#[test]
fn v1_tcp4_and_tcp6() {
    assert_eq!(whole(b"PROXY TCP4 192.0.2.1 198.51.100.2 12345 443\r\n"), at("192.0.2.1:12345"));
    assert_eq!(whole(b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), at("0.0.0.0:0"));
    assert_eq!(whole(b"PROXY TCP6 2001:db8::1 ::1 65535 80\r\n"), at("[2001:db8::1]:65535"));
    assert_eq!(whole(b"PROXY TCP6 ::ffff:10.0.0.1 :: 1 2\r\n"), at("[::ffff:10.0.0.1]:1"));
    // The spec's longest TCP6 line, 104 bytes.
    let f = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let longest = format!("PROXY TCP6 {f} {f} 65535 65535\r\n");
    assert_eq!(longest.len(), 104);
    assert_eq!(whole(longest.as_bytes()), Some(SocketAddr::new(f.parse().unwrap(), 65535)));
}

#[test]
fn v1_unknown_ignores_the_rest_of_its_line() {
    assert_eq!(whole(b"PROXY UNKNOWN\r\n"), None);
    assert_eq!(whole(b"PROXY UNKNOWN ffff::1 \x00 anything\n at all\r\n"), None);
    refused(b"PROXY UNKNOWNX\r\n", Malformed);
    refused(b"PROXY UNKNOWN\rX", Malformed);
}

#[test]
fn v1_is_at_most_107_bytes() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(105, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(whole(&line), None);
    line.insert(20, b'x');
    refused(&line, TooLong);
    refused(&line[..107], TooLong);
    refused(&line[..200.min(line.len())], TooLong);
    // A line longer than the spec's 107 bytes only by its IPv6 addresses' dotted form.
    let q = "0000:0000:0000:0000:0000:ffff:255.255.255.255";
    let line = format!("PROXY TCP6 {q} {q} 65535 65535\r\n");
    assert!(line.len() > 107);
    refused(line.as_bytes(), TooLong);
}

#[test]
fn v1_malformed_lines() {
    for line in [
        "PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
        "PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n",
        "PROXY TCP4 192.0.2.1\r\n",
        "PROXY TCP4\r\n",
        "PROXY \r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4\t192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 010.0.0.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 10.0.0.1 198.51.100.02 1 2\r\n",
        "PROXY TCP4 10.0.0 198.51.100.2 1 2\r\n",
        "PROXY TCP4 10.0.0.256 198.51.100.2 1 2\r\n",
        "PROXY TCP4 ::1 198.51.100.2 1 2\r\n",
        "PROXY TCP6 10.0.0.1 ::1 1 2\r\n",
        "PROXY TCP6 ::1 1::2::3 1 2\r\n",
        "PROXY TCP6 ::1%eth0 ::1 1 2\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 01 2\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 1 65536\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 +1 2\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 -1 2\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\r\n",
        "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\rX",
    ] {
        refused(line.as_bytes(), Malformed);
    }
}

/// Refused before the line ends, once no more bytes could make it valid.
#[test]
fn v1_refuses_as_soon_as_it_is_certain() {
    for start in [
        "PROXY X",
        "PROXY TCP5",
        "PROXY TCP4X",
        "PROXY UNKNOWNX",
        "PROXY TCP4  ",
        "PROXY TCP4 1.2..",
        "PROXY TCP4 1.2.3.4.",
        "PROXY TCP4 256",
        "PROXY TCP4 01",
        "PROXY TCP4 1:",
        "PROXY TCP6 1:::",
        "PROXY TCP6 1::2::",
        "PROXY TCP6 12345",
        "PROXY TCP6 1:2:3:4:5:6:7:8:",
        "PROXY TCP6 1:2:3:4:5:6:7::8",
        "PROXY TCP6 ::1.2.3.4:",
        "PROXY TCP6 1:2:3:4:5:1.",
        "PROXY TCP6 ::1:2:3:4:5:6:7.",
        "PROXY TCP6 ::a.",
        "PROXY TCP6 ::01.",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r",
    ] {
        refused(start.as_bytes(), Malformed);
    }
    for start in ["PROXY TCP6 ::ffff:1.2.3.", "PROXY TCP6 1:2:3:4:5:6:7", "PROXY TCP4 1.2.3.4 5.6.7.8 6553"] {
        assert_eq!(parse(start.as_bytes()), Ok(Parsed::Partial), "{start}");
    }
}

#[test]
fn not_proxy_at_the_first_byte_that_says_so() {
    for input in
        [&b"GET / HTTP/1.1\r\n"[..], b"\x16\x03\x01", b"PROXX", b"PROXYFIND / HTTP/1.1", b"proxy ", b"\r\n\r\n\x01"]
    {
        refused(input, NotProxy);
    }
    for input in [&b""[..], b"P", b"PROXY", b"\r", b"\r\n\r\n\0\r\nQUIT"] {
        assert_eq!(parse(input), Ok(Parsed::Partial), "{input:?}");
    }
}

#[test]
fn v2_tcp4_and_tcp6() {
    assert_eq!(whole(&v2(0x21, 0x11, &V4_BODY)), at("192.0.2.1:12345"));
    let mut body = [0u8; 36];
    body[..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
    body[32..34].copy_from_slice(&8080u16.to_be_bytes());
    let source = SocketAddr::V6(SocketAddrV6::new("2001:db8::7".parse().unwrap(), 8080, 0, 0));
    assert_eq!(whole(&v2(0x21, 0x21, &body)), Some(source));
}

/// TLVs count in the length and are skipped, well formed or not.
#[test]
fn v2_skips_tlvs() {
    let mut body = V4_BODY.to_vec();
    body.extend_from_slice(&[0x02, 0x00, 0x0b]);
    body.extend_from_slice(b"example.com");
    body.extend_from_slice(&[0x04, 0xff, 0xff]);
    let header = v2(0x21, 0x11, &body);
    assert_eq!(header.len(), 16 + 12 + 14 + 3);
    assert_eq!(whole(&header), at("192.0.2.1:12345"));
    let mut body = V4_BODY.to_vec();
    body.resize(MAX_V2_BODY, 0xaa);
    assert_eq!(whole(&v2(0x21, 0x11, &body)), at("192.0.2.1:12345"));
}

#[test]
fn v2_without_a_tcp_client() {
    // LOCAL ignores its family and whatever body it has.
    assert_eq!(whole(&v2(0x20, 0x00, &[])), None);
    assert_eq!(whole(&v2(0x20, 0x11, &V4_BODY)), None);
    assert_eq!(whole(&v2(0x20, 0x99, &[1, 2, 3])), None);
    assert_eq!(whole(&v2(0x21, 0x00, &[])), None);
    assert_eq!(whole(&v2(0x21, 0x00, &[7; 5])), None);
    assert_eq!(whole(&v2(0x21, 0x12, &V4_BODY)), None);
    assert_eq!(whole(&v2(0x21, 0x22, &[1; 36])), None);
    assert_eq!(whole(&v2(0x21, 0x31, &[b'/'; 216])), None);
    assert_eq!(whole(&v2(0x21, 0x32, &[b'/'; 220])), None);
}

#[test]
fn v2_refused() {
    for (version_command, family, body_len) in [(0x21, 0x11, 11), (0x21, 0x21, 35), (0x21, 0x21, 12), (0x21, 0x12, 0)] {
        refused(&v2(version_command, family, &vec![0; body_len]), Malformed);
    }
    // Refused from the head alone, at the byte that decides: version and command, family.
    for (head, decided_at) in [
        ([0x11, 0x11], 13),
        ([0x31, 0x11], 13),
        ([0x01, 0x00], 13),
        ([0x22, 0x11], 13),
        ([0x2f, 0x11], 13),
        ([0x21, 0x13], 14),
        ([0x21, 0x41], 14),
    ] {
        let input = v2(head[0], head[1], &V4_BODY);
        assert_eq!(parse(&input[..decided_at - 1]), Ok(Parsed::Partial), "{head:x?}");
        refused(&input[..decided_at], Malformed);
        refused(&input, Malformed);
    }
    let mut head = v2(0x21, 0x11, &V4_BODY)[..16].to_vec();
    head[14..16].copy_from_slice(&u16::try_from(MAX_V2_BODY + 1).unwrap().to_be_bytes());
    refused(&head, TooLong);
    head[14..16].copy_from_slice(&[0xff, 0xff]);
    refused(&head, TooLong);
    head[14..16].copy_from_slice(&u16::try_from(MAX_V2_BODY).unwrap().to_be_bytes());
    assert_eq!(parse(&head), Ok(Parsed::Partial));
    assert_eq!(MAX_HEADER, 1040);
}

#[test]
fn net_parse_and_display() {
    for (text, shown) in [
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.0.0.1", "10.0.0.1/32"),
        ("10.0.0.1/32", "10.0.0.1/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::1", "::1/128"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("::/0", "::/0"),
        ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"),
    ] {
        let net = Net::parse(text).unwrap();
        assert_eq!(net.to_string(), shown);
        assert_eq!(Net::parse(shown), Ok(net));
    }
    let expected = "expected an address or address/prefix such as 10.0.0.0/8 or ::1";
    for text in ["", "/8", "10.0.0", "010.0.0.0/8", "host.example", "fe80::1%eth0", " 10.0.0.0/8"] {
        assert!(Net::parse(text).unwrap_err().contains(expected), "{text}");
    }
    for text in ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/-1", "10.0.0.0/8 ", "::/129", "::/256"] {
        assert!(Net::parse(text).unwrap_err().contains("prefix of an IPv"), "{text}");
    }
    assert!(Net::parse("10.0.0.1/8").unwrap_err().contains("did you mean 10.0.0.0/8"));
    assert!(Net::parse("2001:db8::1/32").unwrap_err().contains("did you mean 2001:db8::/32"));
    assert!(Net::parse("10.0.0.1/0").unwrap_err().contains("did you mean 0.0.0.0/0"));
}

#[test]
fn net_contains() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let net = |s: &str| Net::parse(s).unwrap();
    for (n, inside, outside) in [
        ("10.0.0.0/8", "10.255.0.1", "11.0.0.0"),
        ("10.0.0.0/8", "::ffff:10.1.2.3", "::ffff:11.0.0.0"),
        ("10.0.0.0/8", "10.0.0.0", "::a00:1"),
        ("192.0.2.7", "192.0.2.7", "192.0.2.6"),
        ("192.0.2.7", "::ffff:192.0.2.7", "192.0.2.8"),
        ("0.0.0.0/0", "255.255.255.255", "::1"),
        ("0.0.0.0/0", "::ffff:1.2.3.4", "2001:db8::1"),
        ("::ffff:10.0.0.0/104", "10.9.9.9", "11.0.0.0"),
        ("::ffff:192.0.2.7", "192.0.2.7", "192.0.2.6"),
        ("2001:db8::/32", "2001:db8:ffff::1", "2001:db9::"),
        ("::1", "::1", "::2"),
        ("::1", "::1", "127.0.0.1"),
        ("::/0", "2001:db8::1", "fe80::1"),
        ("::/0", "1.2.3.4", "1.2.3.4"),
    ] {
        assert!(net(n).contains(ip(inside)), "{n} holds {inside}");
        if n != "::/0" {
            assert!(!net(n).contains(ip(outside)), "{n} lacks {outside}");
        }
    }
}

/// Std's parser is the reference for the address fields: a field is valid exactly when std
/// takes it, every start of a valid one is a `Prefix`, and a `Prefix` has a valid ending.
#[track_caller]
fn agrees_with_std(text: &str, scan: fn(&[u8]) -> Scan, is_address: fn(&str) -> bool, endings: &[String]) {
    let got = scan(text.as_bytes());
    assert_eq!(got == Scan::Valid, is_address(text), "{text:?}: {got:?}");
    if is_address(text) {
        for cut in 0..text.len() {
            assert_ne!(scan(&text.as_bytes()[..cut]), Scan::Invalid, "{text:?} cut at {cut}");
        }
    }
    if got == Scan::Prefix {
        assert!(endings.iter().any(|e| is_address(&format!("{text}{e}"))), "{text:?} has no valid ending");
    }
}

fn endings() -> Vec<String> {
    let mut all = vec![":".to_string(), "::".to_string()];
    for k in 0..8 {
        all.extend([":0".repeat(k), format!("0{}", ":0".repeat(k)), ".0".repeat(k), format!("0{}", ".0".repeat(k))]);
    }
    all
}

fn ipv6_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u128>().prop_map(|bits| Ipv6Addr::from_bits(bits).to_string()),
        (any::<u64>(), 0u32..64).prop_map(|(bits, zeros)| Ipv6Addr::from_bits(u128::from(bits) << zeros).to_string()),
        (any::<[u16; 6]>(), any::<[u8; 4]>()).prop_map(|(groups, quad)| {
            let groups: Vec<String> = groups.iter().map(|g| format!("{g:X}")).collect();
            format!("{}:{}", groups.join(":"), Ipv4Addr::from(quad))
        }),
        any::<[u8; 4]>().prop_map(|q| format!("::ffff:{}", Ipv4Addr::from(q))),
        "[0-9a-fA-F:.]{0,46}",
        "(::)?([0-9a-f]{1,5}:{1,2}){0,8}[0-9a-f]{0,4}(\\.[0-9]{1,3}){0,4}",
    ]
}

fn header() -> impl Strategy<Value = (Vec<u8>, Option<SocketAddr>)> {
    let v1 = (any::<IpAddr>(), any::<u128>(), any::<u16>(), any::<u16>()).prop_map(|(source, bits, p, q)| {
        let (tcp, destination) = match source {
            IpAddr::V4(_) => ("TCP4", IpAddr::V4(Ipv4Addr::from_bits(bits as u32))),
            IpAddr::V6(_) => ("TCP6", IpAddr::V6(Ipv6Addr::from_bits(bits))),
        };
        let line = format!("PROXY {tcp} {source} {destination} {p} {q}\r\n");
        (line.into_bytes(), Some(SocketAddr::new(source, p)))
    });
    let v2_tcp4 = (any::<[u8; 12]>(), proptest::collection::vec(any::<u8>(), 0..40)).prop_map(|(addresses, tlvs)| {
        let ip = Ipv4Addr::new(addresses[0], addresses[1], addresses[2], addresses[3]);
        let source = SocketAddr::new(ip.into(), u16::from_be_bytes([addresses[8], addresses[9]]));
        (v2(0x21, 0x11, &[&addresses[..], &tlvs].concat()), Some(source))
    });
    let v2_local = proptest::collection::vec(any::<u8>(), 0..40).prop_map(|body| (v2(0x20, 0x00, &body), None));
    prop_oneof![v1, v2_tcp4, v2_local, Just((b"PROXY UNKNOWN\r\n".to_vec(), None))]
}

/// Inputs that get past the signatures, some long enough to reach the limits.
fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n);
    prop_oneof![
        bytes(64),
        bytes(300).prop_map(|b| [V1_SIGNATURE, &b].concat()),
        "[ TCPUNKOW46.:0-9a-f\r\n]{0,200}".prop_map(|s| [V1_SIGNATURE, s.as_bytes()].concat()),
        (any::<[u8; 4]>(), bytes(1500)).prop_map(|(h, b)| [V2_SIGNATURE, &h, &b].concat()),
        (any::<u16>(), bytes(1500)).prop_map(|(n, b)| [V2_SIGNATURE, &[0x21, 0x11], &n.to_be_bytes(), &b].concat()),
    ]
}

proptest! {
    // Many cases: most random texts fail in their first bytes, and the forms that matter are
    // a few among many ("::" and a quad after six groups).
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]
    #[test]
    fn address_fields_agree_with_std(text in ipv6_text(), quad in "[0-9.]{0,16}", port in "[0-9]{0,6}") {
        let endings = endings();
        agrees_with_std(&text, scan_ipv6, |s| s.parse::<Ipv6Addr>().is_ok(), &endings);
        agrees_with_std(&quad, scan_ipv4, |s| s.parse::<Ipv4Addr>().is_ok(), &endings);
        let is_port = |s: &str| s.parse::<u16>().is_ok() && (s == "0" || !s.starts_with('0'));
        agrees_with_std(&port, scan_port, is_port, &endings);
    }
}

proptest! {
    #[test]
    fn a_header_fed_in_pieces_is_partial_until_its_last_byte((header, source) in header(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(header.len());
        prop_assert_eq!(parse(&header[..cut]), Ok(Parsed::Partial));
        let with_more = [&header[..], b"\x16\x03\x01 rest"].concat();
        prop_assert_eq!(parse(&with_more), Ok(Parsed::Complete { len: header.len(), source }));
    }

    /// Never a panic, never `Partial` past `MAX_HEADER`, and no answer but `Partial` changes
    /// when more bytes come.
    #[test]
    fn hostile_input(input in hostile(), cut in any::<prop::sample::Index>()) {
        let answer = parse(&input);
        if answer == Ok(Parsed::Partial) {
            prop_assert!(input.len() < MAX_HEADER);
        }
        if let Ok(Parsed::Complete { len, .. }) = answer {
            prop_assert!(len <= input.len() && len <= MAX_HEADER);
        }
        let early = parse(&input[..cut.index(input.len() + 1)]);
        if early != Ok(Parsed::Partial) {
            prop_assert_eq!(early, answer);
        }
    }
}
