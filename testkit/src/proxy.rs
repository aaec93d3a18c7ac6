//! A TCP proxy a test can cut: between a component and a real dependency (the gateway and
//! Temporal, the worker and PostgreSQL), it forwards bytes both ways until told otherwise.
//!
//! - `Open` forwards.
//! - `Refuse`: the dependency is down: open connections are closed and new ones are closed as
//!   soon as they are accepted (what a client sees of a dead host behind a load balancer).
//! - `Stall`: the dependency hangs: connections stay open but nothing is forwarded either way,
//!   so calls wait for their own timeouts.

use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes forwarded per read.
const BUFFER_BYTES: usize = 16 * 1024;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Forward.
    Open,
    /// Close every connection.
    Refuse,
    /// Hold every connection, forwarding nothing.
    Stall,
}

/// A running proxy; dropping it stops accepting (open connections end with their peers).
pub struct Proxy {
    /// `host:port` to connect to instead of the upstream.
    pub addr: String,
    mode: Arc<watch::Sender<ProxyMode>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on 127.0.0.1, port 0, in front of `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let (tx, _) = watch::channel(ProxyMode::Open);
        let mode = Arc::new(tx);
        let upstream = upstream.to_owned();
        let accept_mode = Arc::clone(&mode);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let rx = accept_mode.subscribe();
                if *rx.borrow() == ProxyMode::Refuse {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        forward(client, server, rx).await;
                    }
                });
            }
        });
        Proxy { addr, mode, accept }
    }

    /// Switches the mode; open connections follow at once.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.mode.send_replace(ProxyMode::Refuse);
    }
}

/// Copies both ways while the mode allows; returns (closing both) when it says Refuse or a
/// side closes.
async fn forward(client: TcpStream, server: TcpStream, mut mode: watch::Receiver<ProxyMode>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (mut up, mut down) = (vec![0u8; BUFFER_BYTES], vec![0u8; BUFFER_BYTES]);
    loop {
        let current = *mode.borrow_and_update();
        match current {
            ProxyMode::Refuse => return,
            ProxyMode::Stall => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            ProxyMode::Open => tokio::select! {
                changed = mode.changed() => if changed.is_err() { return },
                read = client_read.read(&mut up) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if server_write.write_all(&up[..n]).await.is_err() { return },
                },
                read = server_read.read(&mut down) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => if client_write.write_all(&down[..n]).await.is_err() { return },
                },
            },
        }
    }
}
