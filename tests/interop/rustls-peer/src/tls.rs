//! TLS 1.3 as Istio's ztunnel sets it up (SPEC.md §2.1): AES-256-GCM then
//! AES-128-GCM, ALPN h2, no SNI, no client resumption, mutual
//! authentication with SPIFFE SAN checks; everything else (key exchange
//! groups, session tickets sent by the server) left at rustls's defaults,
//! as Istio leaves them.
use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig,
    SignatureScheme,
};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spiffe {
    pub td: String,
    pub ns: String,
    pub sa: String,
}

impl Spiffe {
    /// SPEC §4: exactly spiffe://<td>/ns/<ns>/sa/<sa>.
    pub fn parse(uri: &str) -> Option<Spiffe> {
        let rest = uri.strip_prefix("spiffe://")?;
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != 5 || parts[1] != "ns" || parts[3] != "sa" || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(Spiffe { td: parts[0].into(), ns: parts[2].into(), sa: parts[4].into() })
    }
}

impl fmt::Display for Spiffe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/ns/{}/sa/{}", self.td, self.ns, self.sa)
    }
}

/// Every URI SAN of the certificate that parses as SPIFFE, in order.
pub fn spiffe_sans(der: &CertificateDer<'_>) -> Vec<Spiffe> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Spiffe::parse(u),
            _ => None,
        })
        .collect()
}

fn provider() -> Arc<CryptoProvider> {
    let mut p = aws_lc_rs::default_provider();
    p.cipher_suites = vec![
        aws_lc_rs::cipher_suite::TLS13_AES_256_GCM_SHA384,
        aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ];
    Arc::new(p)
}

pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub roots: Arc<RootCertStore>,
}

/// CERT_DIR/cert-chain.pem + CERT_DIR/key.pem (ztunnel-ctl ca mint), and the
/// trust bundle (every certificate in ROOTS becomes a trust anchor).
pub fn load_identity(cert_dir: &str, roots_pem: &str) -> Result<Identity, BoxError> {
    let chain = CertificateDer::pem_file_iter(format!("{cert_dir}/cert-chain.pem"))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(format!("{cert_dir}/key.pem"))?;
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(roots_pem)? {
        roots.add(c?)?;
    }
    Ok(Identity { chain, key, roots: Arc::new(roots) })
}

/// Client side: chain to the bundle with server-auth EKU, no hostname; then
/// any SPIFFE SAN equal to any expected identity (SPEC §2.1).
#[derive(Debug)]
struct SanVerifier {
    roots: Arc<RootCertStore>,
    expected: Vec<Spiffe>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for SanVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let got = spiffe_sans(end_entity);
        if got.iter().any(|id| self.expected.contains(id)) {
            return Ok(ServerCertVerified::assertion());
        }
        let want: Vec<String> = self.expected.iter().map(|i| i.to_string()).collect();
        let got: Vec<String> = got.iter().map(|i| i.to_string()).collect();
        Err(Error::General(format!(
            "peer did not present the expected SAN ({}), got [{}]",
            want.join(","),
            got.join(",")
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Server side: the client certificate must chain to the bundle with
/// client-auth EKU and carry a SPIFFE SAN of our trust domain, else the
/// handshake fails (SPEC §2.1).
#[derive(Debug)]
struct TrustDomainVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
}

impl ClientCertVerifier for TrustDomainVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if spiffe_sans(end_entity).iter().any(|id| id.td == self.trust_domain) {
            return Ok(ClientCertVerified::assertion());
        }
        Err(Error::General(format!("client has no SPIFFE identity in trust domain {}", self.trust_domain)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

pub fn client_config(id: Identity, expected: Vec<Spiffe>) -> Result<ClientConfig, BoxError> {
    let provider = provider();
    let verifier = Arc::new(SanVerifier { roots: id.roots.clone(), expected, provider: provider.clone() });
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(id.chain, id.key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg.enable_sni = false;
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(cfg)
}

pub fn server_config(id: Identity, trust_domain: &str) -> Result<ServerConfig, BoxError> {
    let provider = provider();
    let inner = WebPkiClientVerifier::builder_with_provider(id.roots.clone(), provider.clone()).build()?;
    let verifier = Arc::new(TrustDomainVerifier { inner, trust_domain: trust_domain.to_string() });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.chain, id.key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}
