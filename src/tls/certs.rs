//! Certificates and keys: loaded from PEM files (a chain, and a PKCS#8, SEC1 or PKCS#1
//! key), each checked against its key, and chosen by the name the client asks for (SNI).
//! A name no certificate covers, or no name, gets the default certificate, as nginx's
//! default server does.

use crate::http::date;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where certificates come from: pairs of (chain, key) files, the first the default, and a
/// directory of more (`NAME.crt` or `NAME.pem` with `NAME.key`; `default.*` is the default
/// when no pair is given).
#[derive(Clone, Debug, Default)]
pub struct CertSources {
    pub pairs: Vec<(PathBuf, PathBuf)>,
    pub dir: Option<PathBuf>,
}

/// A certificate warns at start and reload this long before it expires.
pub const EXPIRY_WARNING_DAYS: u64 = 14;

/// One certificate loaded, with what the start line says of it.
struct Loaded {
    key: Arc<CertifiedKey>,
    file: PathBuf,
    subject: String,
    /// DNS names it covers (its subjectAltName, else its CN), lowercase.
    names: Vec<String>,
    not_after: i64,
}

/// Every certificate loaded; the first is the default.
pub struct Certificates {
    loaded: Vec<Loaded>,
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Loaded, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificate {}: {}", cert.display(), pem_error(e)))?;
    if chain.is_empty() {
        return Err(format!("certificate {}: no CERTIFICATE block in it", cert.display()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("key {}: {}", key.display(), pem_error(e)))?;
    let certified = CertifiedKey::from_der(chain, der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("key {} does not match the certificate {}", key.display(), cert.display())
        }
        e => format!("certificate {} with key {}: {e}", cert.display(), key.display()),
    })?;
    let certified = Arc::new(certified);
    let (_, parsed) = x509_parser::parse_x509_certificate(certified.cert[0].as_ref())
        .map_err(|e| format!("certificate {}: {e}", cert.display()))?;
    let mut names: Vec<String> = match parsed.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names
            .extend(parsed.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).map(str::to_ascii_lowercase));
    }
    Ok(Loaded {
        key: Arc::clone(&certified),
        file: cert.to_path_buf(),
        subject: parsed.subject().to_string(),
        names,
        not_after: parsed.validity().not_after.timestamp(),
    })
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM block of the kind expected (a CERTIFICATE, or a PRIVATE KEY)".to_string(),
        e => format!("not valid PEM ({e:?})"),
    }
}

/// The (chain, key) pairs of `dir`, in name order, `default.*` first.
fn dir_pairs(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("--tls-cert-dir {}: {e}", dir.display()))?;
    let mut certs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("crt" | "pem")))
        .collect();
    certs.sort_by_key(|p| (p.file_stem().is_none_or(|s| s != "default"), p.clone()));
    if certs.is_empty() {
        return Err(format!("--tls-cert-dir {}: no NAME.crt or NAME.pem in it", dir.display()));
    }
    certs
        .into_iter()
        .map(|cert| {
            let key = cert.with_extension("key");
            if key.is_file() {
                Ok((cert, key))
            } else {
                Err(format!("certificate {} has no key: expected {}", cert.display(), key.display()))
            }
        })
        .collect()
}

impl Certificates {
    /// Load every certificate and key `sources` names; the error names the file and why.
    pub fn load(sources: &CertSources) -> Result<Certificates, String> {
        let provider = super::provider();
        let mut pairs = sources.pairs.clone();
        if let Some(dir) = &sources.dir {
            pairs.extend(dir_pairs(dir)?);
        }
        if pairs.is_empty() {
            return Err("no certificate: pass --tls-cert PEM --tls-key PEM, or --tls-cert-dir DIR".to_string());
        }
        let loaded = pairs.iter().map(|(cert, key)| load_pair(cert, key, &provider)).collect::<Result<_, _>>()?;
        Ok(Certificates { loaded })
    }

    /// One line per certificate for the start: its file, subject, names and expiry.
    pub fn describe(&self) -> Vec<String> {
        self.loaded
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "certificate {}{}: {}, names {}, expires {}",
                    c.file.display(),
                    if i == 0 { " (default)" } else { "" },
                    c.subject,
                    c.names.join(" "),
                    expiry(c.not_after)
                )
            })
            .collect()
    }

    /// Warnings for certificates that expire within `EXPIRY_WARNING_DAYS` of `now` (Unix
    /// seconds), or have.
    pub fn expiring(&self, now: u64) -> Vec<String> {
        let soon = now as i64 + (EXPIRY_WARNING_DAYS * 86_400) as i64;
        self.loaded
            .iter()
            .filter(|c| c.not_after <= soon)
            .map(|c| {
                let days = (c.not_after - now as i64).div_euclid(86_400);
                let when = if c.not_after <= now as i64 {
                    "has expired".to_string()
                } else {
                    format!("expires in {days} day{}", if days == 1 { "" } else { "s" })
                };
                format!(
                    "certificate {} ({}) {when}, on {}: renew it, then reload (SIGHUP)",
                    c.file.display(),
                    c.names.join(" "),
                    expiry(c.not_after)
                )
            })
            .collect()
    }

    /// The choice of certificate by SNI, for rustls.
    pub fn resolver(&self) -> Arc<dyn ResolvesServerCert> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        // Earlier certificates win a name two cover (the default first).
        for c in self.loaded.iter().rev() {
            for name in &c.names {
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.insert(suffix.to_string(), Arc::clone(&c.key)),
                    None => exact.insert(name.clone(), Arc::clone(&c.key)),
                };
            }
        }
        Arc::new(BySni { exact, wildcard, default: Arc::clone(&self.loaded[0].key) })
    }
}

fn expiry(not_after: i64) -> String {
    String::from_utf8_lossy(&date::format(not_after.max(0) as u64)).into_owned()
}

#[derive(Debug)]
struct BySni {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` filed under `example.com`: it covers one label more.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().map(str::to_ascii_lowercase).and_then(|name| {
            self.exact.get(&name).or_else(|| name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent)))
        });
        Some(Arc::clone(chosen.unwrap_or(&self.default)))
    }
}
