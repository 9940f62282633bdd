//! The DogStatsD listener: UDP on `127.0.0.1:8125`, one datagram at a time into the metrics
//! aggregator. Parsing is in [`parse`]; aggregation in `aggregate::metrics`.

pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::UdpSocket;

use crate::aggregate::metrics::{MetricsAggregator, unix_secs};

/// The agent's default receive buffer; clients keep datagrams under it (the Python client's
/// UDP buffer is 1432 B, the largest agent setting 65 535 B).
const MAX_DATAGRAM: usize = 65_535;

/// Binds the DogStatsD socket (port 0 picks a free one, as tests do).
pub async fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(addr).await
}

/// Receives datagrams until the socket fails, aggregating each as it arrives.
pub async fn serve(socket: UdpSocket, aggregator: Arc<MetricsAggregator>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, _peer)) => {
                let outcome = aggregator.insert_datagram(&buf[..n], unix_secs(SystemTime::now()));
                if outcome.malformed > 0 {
                    tracing::debug!(
                        "dogstatsd: {} malformed line(s) skipped in a {n}-byte datagram",
                        outcome.malformed
                    );
                }
            }
            // A previous send's ICMP error surfaces here on some systems: not fatal.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => {
                tracing::warn!("dogstatsd: receive failed, listener stopped: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_reach_the_aggregator() {
        let socket = bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = socket.local_addr().expect("addr");
        let agg = Arc::new(MetricsAggregator::default());
        let task = tokio::spawn(serve(socket, agg.clone()));
        let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("client");
        client.send_to(b"a:1|c\nb:oops|c", addr).expect("send");
        client.send_to(b"a:2|c", addr).expect("send");
        let mut waited = 0;
        while agg
            .counters
            .packets
            .load(std::sync::atomic::Ordering::Relaxed)
            < 2
            && waited < 500
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            waited += 1;
        }
        task.abort();
        assert_eq!(
            agg.counters
                .malformed
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        let (series, _) = agg.take();
        assert_eq!(series[0].series[0].points[0].value, 3.0);
    }
}
