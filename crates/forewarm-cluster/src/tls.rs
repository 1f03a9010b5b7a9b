//! Mutual TLS between members: the cluster CA, node certificates, and the rustls
//! configurations of the cluster listener and of the calls to other members.
//!
//! `forewarm cluster ca --out DIR` writes `ca.pem` and `ca.key`; `forewarm cluster cert --ca
//! DIR --node NAME` writes `NAME.pem` and `NAME.key`, a certificate for the node named `NAME`
//! signed by that CA. A node certificate is valid for two names: the node's own (its
//! identity: what a member is checked against, see [`crate::server`]) and [`CLUSTER_NAME`]
//! (what a caller checks of a member it reaches by address only, a join seed say). Both sides
//! of every connection show a certificate; one not signed by the cluster CA fails the
//! handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::Deserialize;

/// The name every node certificate is valid for besides the node's own.
pub const CLUSTER_NAME: &str = "forewarm-cluster";
/// Subject of the cluster CA (a node certificate's issuer; [`node_cert`] signs with it).
const CA_SUBJECT: &str = "forewarm cluster CA";
/// How long a CA made by [`new_ca`] is valid.
const CA_VALID: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long a node certificate made by [`node_cert`] is valid.
const NODE_VALID: Duration = Duration::from_secs(825 * 86_400);

/// The `[cluster.tls]` table: where a node's TLS files are.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The cluster CA's certificate (PEM): what a member's certificate must be signed by.
    pub ca: PathBuf,
    /// This node's certificate (PEM), signed by the CA, valid for the node's name.
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `forewarm cluster ca` and `forewarm cluster cert` write into `dir` for node
    /// `name`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        Self {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// A node's TLS: the configuration its cluster listener accepts with and the one its calls to
/// other members connect with.
#[derive(Clone)]
pub struct ClusterTls {
    /// Accepts only callers showing a certificate signed by the cluster CA.
    pub server: Arc<ServerConfig>,
    /// Shows this node's certificate and accepts only members signed by the cluster CA.
    pub client: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: not a CA certificate: {e}", ca.display()))?;
    }
    Ok(Arc::new(roots))
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: not a PEM private key: {e}", path.display()))
}

/// The TLS of the client API (`tls_cert`, `tls_key`): any certificate chain and its key, no
/// client certificate asked for (clients authenticate with their tokens).
pub fn api_server(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs(cert)?, private_key(key)?)
        .map_err(|e| format!("{} with {}: {e}", cert.display(), key.display()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl ClusterTls {
    /// Load a node's TLS files; an error names the file and what is wrong with it.
    pub fn load(files: &TlsFiles) -> Result<Self, String> {
        let roots = roots(&files.ca)?;
        let chain = certs(&files.cert)?;
        let key = private_key(&files.key)?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
            .build()
            .map_err(|e| format!("{}: {e}", files.ca.display()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("{}: {e}", files.cert.display()))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("{}: {e}", files.cert.display()))?;
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The acceptor of the cluster listener.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.clone())
    }

    /// The connector of calls to members (transport sessions).
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.clone())
    }
}

/// The certificate a caller showed on the cluster listener (a request extension; the
/// handshake already checked that the cluster CA signed it).
#[derive(Debug, Clone)]
pub struct PeerCert(pub Arc<CertificateDer<'static>>);

impl PeerCert {
    /// Whether the certificate is valid for node `name`.
    pub fn is(&self, name: &str) -> bool {
        let Ok(server_name) = ServerName::try_from(name) else {
            return false;
        };
        ParsedCertificate::try_from(self.0.as_ref())
            .is_ok_and(|cert| rustls::client::verify_server_name(&cert, &server_name).is_ok())
    }
}

fn ca_params() -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, CA_SUBJECT);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn valid_for(params: &mut CertificateParams, valid: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: clocks of members a little behind still accept a fresh certificate.
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + valid;
}

/// Write a file that only its owner may read or write.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn write_public(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Make a cluster CA in `dir` (created if missing): `ca.pem` and `ca.key` (owner-only). An
/// existing CA is never overwritten: its certificates would stop being accepted.
pub fn new_ca(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (pem, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    for path in [&pem, &key] {
        if path.exists() {
            return Err(format!(
                "{} exists: a cluster CA is already there (remove it to start a new cluster)",
                path.display()
            ));
        }
    }
    let key_pair = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = ca_params()?;
    valid_for(&mut params, CA_VALID);
    let cert = params.self_signed(&key_pair).map_err(|e| e.to_string())?;
    write_private(&key, &key_pair.serialize_pem())?;
    write_public(&pem, &cert.pem())
}

/// Issue a certificate for node `name` with the CA in `ca_dir`, written to `out` as
/// `NAME.pem` and `NAME.key` (owner-only), and check that it is accepted by the CA's
/// certificate. Returns the files a node of that name is configured with.
pub fn node_cert(ca_dir: &Path, name: &str, out: &Path) -> Result<TlsFiles, String> {
    if name == CLUSTER_NAME || ServerName::try_from(name).is_err() {
        return Err(format!(
            "node name {name:?}: a node certificate needs a DNS-style name (letters, digits, '-', '.') other than {CLUSTER_NAME}"
        ));
    }
    let ca_key_path = ca_dir.join("ca.key");
    let ca_key_pem = String::from_utf8(read(&ca_key_path)?)
        .map_err(|_| format!("{}: not PEM text", ca_key_path.display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .map_err(|e| format!("{}: not a PEM private key: {e}", ca_key_path.display()))?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut params = CertificateParams::new(vec![name.to_owned(), CLUSTER_NAME.to_owned()])
        .map_err(|e| e.to_string())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    valid_for(&mut params, NODE_VALID);
    let key_pair = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params
        .signed_by(&key_pair, &issuer)
        .map_err(|e| e.to_string())?;
    // The CA's certificate must accept what its key signed (a ca.pem of another CA beside
    // this ca.key would otherwise surface only as failed handshakes).
    let ca_pem = ca_dir.join("ca.pem");
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca_pem)?, provider())
        .build()
        .map_err(|e| format!("{}: {e}", ca_pem.display()))?;
    verifier
        .verify_client_cert(cert.der(), &[], UnixTime::now())
        .map_err(|e| {
            format!(
                "{} does not accept a certificate signed with {}: {e}",
                ca_pem.display(),
                ca_key_path.display()
            )
        })?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let files = TlsFiles {
        ca: ca_pem,
        cert: out.join(format!("{name}.pem")),
        key: out.join(format!("{name}.key")),
    };
    write_private(&files.key, &key_pair.serialize_pem())?;
    write_public(&files.cert, &cert.pem())?;
    Ok(files)
}

/// A cluster CA in `dir` (made when missing) and a certificate for each of `names` (made when
/// missing; an existing one is kept), in the order of `names`: what `forewarm up --regions`
/// and the compose cluster's first start run.
pub fn ensure(dir: &Path, names: &[&str]) -> Result<Vec<TlsFiles>, String> {
    if !dir.join("ca.key").exists() {
        new_ca(dir)?;
    }
    names
        .iter()
        .map(|name| {
            let files = TlsFiles::in_dir(dir, name);
            if files.cert.exists() && files.key.exists() {
                Ok(files)
            } else {
                node_cert(dir, name, dir)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_node_and_the_cluster_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        new_ca(dir.path()).expect("ca");
        let files = node_cert(dir.path(), "us-east-1", dir.path()).expect("cert");
        ClusterTls::load(&files).expect("loads");
        let der = certs(&files.cert).expect("pem").remove(0);
        let peer = PeerCert(Arc::new(der));
        assert!(peer.is("us-east-1"));
        assert!(peer.is(CLUSTER_NAME));
        assert!(!peer.is("us-east-2"));
        assert!(!peer.is("not a name"));
    }

    #[test]
    fn a_second_ca_is_refused_and_a_key_of_another_ca_is_caught() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        new_ca(a.path()).expect("ca a");
        let again = new_ca(a.path()).expect_err("a CA is never overwritten");
        assert!(again.contains("ca.pem exists"), "{again}");
        new_ca(b.path()).expect("ca b");
        // a's certificate beside b's key: what the key signs is not accepted.
        std::fs::copy(a.path().join("ca.pem"), b.path().join("ca.pem")).expect("copy");
        let e = node_cert(b.path(), "n1", b.path()).expect_err("mismatched CA");
        assert!(e.contains("does not accept"), "{e}");
        let e = node_cert(a.path(), "forewarm-cluster", a.path()).expect_err("reserved");
        assert!(e.contains("DNS-style name"), "{e}");
    }

    #[test]
    fn ensure_makes_what_is_missing_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = ensure(dir.path(), &["a", "b"]).expect("first run");
        let a = std::fs::read(&first[0].cert).expect("a.pem");
        std::fs::remove_file(&first[1].cert).expect("b.pem gone");
        let again = ensure(dir.path(), &["a", "b"]).expect("second run");
        assert_eq!(again, first);
        assert_eq!(std::fs::read(&again[0].cert).expect("a.pem"), a, "a kept");
        ClusterTls::load(&again[1]).expect("b made again, signed by the same CA");
    }
}
