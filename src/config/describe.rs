//! The effective configuration, as `--check-config` prints it: every setting with the
//! value it has after the file and the flags, in the file's own syntax.

use super::Config;
use crate::site::{HostSpec, StatusClass, TrailingSlash};
use std::fmt::Write;

impl Config {
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let q = |v: &dyn std::fmt::Display| format!("{:?}", v.to_string());
        let _ = writeln!(s, "root = {}", q(&self.root.display()));
        let _ = writeln!(s, "shards = {}", self.shard_count());
        let _ = writeln!(s, "backend = {}", q(&format!("{:?}", self.backend).to_lowercase()));
        for (key, value) in [
            ("max_request_line", self.max_request_line as u64),
            ("max_header_bytes", self.max_header_bytes as u64),
            ("max_headers", self.max_headers as u64),
            ("max_body", self.max_body),
            ("keepalive_timeout", self.keepalive_timeout),
            ("request_timeout", self.request_timeout),
            ("send_timeout", self.send_timeout),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            let _ = writeln!(s, "{key} = {value}");
        }
        let _ = writeln!(s, "access_log = {}", q(&self.access_log));
        let optional = [
            ("status_listen", self.status_listen.map(|a| a.to_string())),
            ("pid_file", self.pid_file.as_ref().map(|p| p.display().to_string())),
            ("user", self.user.clone()),
            ("group", self.group.clone()),
            ("tls_cert_dir", self.tls_cert_dir.as_ref().map(|p| p.display().to_string())),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                let _ = writeln!(s, "{key} = {}", q(&value));
            }
        }
        for (cert, key) in self.cert_sources().pairs {
            let _ = writeln!(s, "# certificate {} with key {}", cert.display(), key.display());
        }
        for (addr, tls, rules) in self.listener_rules() {
            let _ = write!(s, "\n[[listen]]\naddress = {}\ntls = {tls}\n", q(&addr));
            if let Some(nets) = &rules.proxy_from {
                let nets: Vec<String> = nets.iter().map(|n| q(n)).collect();
                let _ = writeln!(s, "proxy_protocol = true\nproxy_from = [{}]", nets.join(", "));
            }
            if let Some(port) = rules.redirect_to_https {
                let _ = writeln!(s, "redirect_to_https = true  # to port {port}");
            }
        }
        if let Some(site) = self.file.as_ref().map(|f| &f.site) {
            for (i, host) in site.hosts.iter().enumerate() {
                let _ = writeln!(s, "{}", if i == 0 { "\n# the default host" } else { "\n[[host]]" });
                describe_host(&mut s, host, i == 0);
            }
        }
        s
    }
}

fn describe_host(s: &mut String, host: &HostSpec, default: bool) {
    let text = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    let path = |b: &[u8]| format!("{:?}", format!("/{}", String::from_utf8_lossy(b)));
    if !default {
        let names: Vec<String> = host.names.iter().map(|n| format!("{n:?}")).collect();
        let _ = writeln!(s, "names = [{}]\nroot = {:?}", names.join(", "), host.root.display().to_string());
    }
    let index: Vec<String> = host.index.iter().map(|n| text(n)).collect();
    let _ = writeln!(s, "index = [{}]", index.join(", "));
    if let Some(fallback) = &host.fallback {
        let _ = writeln!(s, "fallback = {}\nfallback_extensions = {}", path(fallback), host.fallback_extensions);
    }
    let slash = match host.trailing_slash {
        TrailingSlash::Add => "add",
        TrailingSlash::Remove => "remove",
        TrailingSlash::Off => "off",
    };
    let _ = writeln!(s, "trailing_slash = {slash:?}");
    let listing: Vec<String> = host.listing.iter().map(|g| format!("{:?}", g.as_str())).collect();
    let _ = writeln!(s, "listing = [{}]", listing.join(", "));
    for (class, page) in &host.error_pages {
        let status = match class {
            StatusClass::One(n) => n.to_string(),
            StatusClass::Hundred(h) => format!("{}0x", h / 100),
        };
        let _ = writeln!(s, "error_pages.{status} = {}", path(page));
    }
    for rule in &host.headers {
        let _ = write!(s, "# headers for {:?}:", rule.glob.as_str());
        for (name, value) in &rule.set {
            let _ = write!(s, " set {}: {}", String::from_utf8_lossy(name), String::from_utf8_lossy(value));
        }
        for name in &rule.remove {
            let _ = write!(s, " remove {}", String::from_utf8_lossy(name));
        }
        let _ = writeln!(s, "{}", if rule.tls_only { " (TLS only)" } else { "" });
    }
    for rule in &host.redirects {
        let _ = writeln!(s, "# a redirect from {:?}", rule.from().as_str());
    }
}
