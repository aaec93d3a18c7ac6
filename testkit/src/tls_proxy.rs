//! A TLS-terminating proxy in front of a plaintext upstream (the Temporal dev server, which
//! speaks no TLS), with a throwaway CA: the server certificate is for `localhost` and
//! `127.0.0.1`, and the proxy requires a client certificate signed by the same CA (mutual
//! TLS). It lets a test connect the worker and gateway exactly as to a secured cluster.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// A running TLS proxy and the PEM files a client needs.
pub struct TlsProxy {
    /// `https://127.0.0.1:port`.
    pub url: String,
    /// The CA that signed the proxy's certificate.
    pub ca_pem: PathBuf,
    /// A client certificate and key the proxy accepts.
    pub client_cert_pem: PathBuf,
    /// Its private key.
    pub client_key_pem: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn leaf(name: &str, sans: Vec<String>, ca: &Issuer<'_, KeyPair>) -> (String, KeyPair, CertificateDer<'static>) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(sans).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.signed_by(&key, ca).expect("sign");
    (cert.pem(), key, cert.der().clone())
}

impl TlsProxy {
    /// Starts the proxy for `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> TlsProxy {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.distinguished_name.push(DnType::CommonName, "payments test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
        let ca_der = ca_cert.der().clone();
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let (_, server_key, server_der) = leaf("localhost", vec!["localhost".into(), "127.0.0.1".into()], &issuer);
        let (client_pem, client_key, _) = leaf("payments-worker", vec!["payments-worker".into()], &issuer);

        let mut roots = RootCertStore::empty();
        roots.add(ca_der.clone()).expect("CA root");
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("client verifier");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let mut config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_der, ca_der], key)
            .expect("server config");
        config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let (ca_pem, client_cert_pem, client_key_pem) = (
            write("ca.pem", &ca_pem),
            write("client.pem", &client_pem),
            write("client.key", &client_key.serialize_pem()),
        );

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let upstream = upstream.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let Ok(mut plain) = TcpStream::connect(&upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsProxy { url, ca_pem, client_cert_pem, client_key_pem, _dir: dir, task }
    }
}
