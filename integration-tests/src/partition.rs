//! A TCP relay on a free loopback port that can cut every connection through it and refuse
//! new ones, as a network partition does, and then heal.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running relay; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let cut = Arc::new(watch::channel(false).0);
        let task = tokio::spawn(relay(listener, upstream, cut.clone()));
        Relay { addr, cut, task }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection through the relay and refuses new ones until [`Relay::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(listener: TcpListener, upstream: SocketAddr, cut: Arc<watch::Sender<bool>>) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        if *cut.borrow() {
            continue; // dropped: refused
        }
        let mut until_cut = cut.subscribe();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = until_cut.wait_for(|c| *c) => {}
            }
        });
    }
}
