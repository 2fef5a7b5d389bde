//! Accepting connections: TLS when asked (`--tls-cert`, `--tls-key`, rustls), a cap on
//! the connections served at once, a deadline for the TLS handshake and for each
//! request's head (hyper's `header_read_timeout`), and a graceful stop that finishes
//! the requests in flight (hyper-util's `GracefulShutdown`).
//!
//! A connection over the cap is closed as soon as it is accepted: the clients already
//! connected keep being served, and the newcomer may retry.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How long the requests in flight may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(30);

/// What the accept loop enforces.
#[derive(Debug, Clone)]
pub struct Accepting {
    /// Connections served at once; more are closed when accepted.
    pub max_connections: usize,
    /// The time a client has to send a request's head (and to finish a TLS handshake).
    pub head_timeout: Duration,
}

/// Reads a certificate chain and its private key (PEM files) into a TLS acceptor.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{} holds no certificate (PEM, BEGIN CERTIFICATE)",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and the key do not make a TLS server: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, calls
/// `stopping`, and waits (at most [`DRAIN`]) for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    accepting: Accepting,
    shutdown: impl Future<Output = ()>,
    stopping: impl FnOnce(),
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(accepting.max_connections));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before it was
                    // taken: wait a moment rather than spin.
                    eprintln!("warning: accepting a connection failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            eprintln!(
                "refused a connection from {peer}: {} connections are open (--max-connections)",
                accepting.max_connections
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(accepting.head_timeout);
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let head_timeout = accepting.head_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(head_timeout, acceptor.accept(stream)).await
                    else {
                        return; // no handshake in time, or not TLS at all
                    };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(connection).await;
                }
            }
        });
    }
    drop(listener);
    stopping();
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "warning: some requests were still running {DRAIN:?} after the stop; ending them"
        );
    }
}
