//! Custom metrics from a handler, as DogStatsD datagrams to the extension (`127.0.0.1:8125`,
//! or `DD_DOGSTATSD_PORT`), which aggregates them and flushes them with the invocation.
//!
//! ```no_run
//! ddlambda::metrics::distribution("orders.value", 42.5, &["currency:eur"]);
//! ddlambda::metrics::count("orders.placed", 1.0, &["channel:web"]);
//! ddlambda::metrics::gauge("queue.depth", 17.0, &[]);
//! ```
//!
//! Each call formats one line into a thread-local buffer and makes one non-blocking `send`
//! on a connected UDP socket: no allocation after the first call on a thread, no lock, no
//! waiting. A datagram that cannot be sent (no extension listening, socket buffer full) is
//! dropped and counted in [`dropped`]; metrics never fail or slow the handler. Distributions
//! are what Datadog recommends in Lambda: they aggregate across concurrent sandboxes.
//!
//! Names may not contain `:`, `|`, `@` or line breaks and tags may not contain `|`, `,` or line
//! breaks: such characters are replaced with `_` so one bad name cannot corrupt the datagram.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

const DEFAULT_PORT: u16 = 8125;

static DEFAULT: OnceLock<Option<StatsdClient>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(256));
}

/// Sends a distribution sample (DogStatsD `d`) to the extension.
pub fn distribution(name: &str, value: f64, tags: &[&str]) {
    send_default(name, value, "d", tags);
}

/// Adds `value` to a count (DogStatsD `c`).
pub fn count(name: &str, value: f64, tags: &[&str]) {
    send_default(name, value, "c", tags);
}

/// Adds 1 to a count.
pub fn increment(name: &str, tags: &[&str]) {
    send_default(name, 1.0, "c", tags);
}

/// Sets a gauge (DogStatsD `g`; the last value in each 10 s interval wins).
pub fn gauge(name: &str, value: f64, tags: &[&str]) {
    send_default(name, value, "g", tags);
}

/// Datagrams dropped since start, by every client (not sent: no socket, or the send failed).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A DogStatsD client on its own socket; the free functions above share a default one that
/// targets `127.0.0.1:$DD_DOGSTATSD_PORT` (8125).
#[derive(Debug)]
pub struct StatsdClient {
    socket: UdpSocket,
}

impl StatsdClient {
    /// A client sending to `target`, from an ephemeral loopback port.
    pub fn connect(target: SocketAddr) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        socket.set_nonblocking(true)?;
        socket.connect(target)?;
        Ok(Self { socket })
    }

    pub fn distribution(&self, name: &str, value: f64, tags: &[&str]) {
        self.send(name, value, "d", tags);
    }

    pub fn count(&self, name: &str, value: f64, tags: &[&str]) {
        self.send(name, value, "c", tags);
    }

    pub fn gauge(&self, name: &str, value: f64, tags: &[&str]) {
        self.send(name, value, "g", tags);
    }

    fn send(&self, name: &str, value: f64, kind: &str, tags: &[&str]) {
        if !value.is_finite() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        LINE.with_borrow_mut(|line| {
            format_line(line, name, value, kind, tags);
            if self.socket.send(line.as_bytes()).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

fn default_client() -> Option<&'static StatsdClient> {
    DEFAULT
        .get_or_init(|| {
            let port = std::env::var("DD_DOGSTATSD_PORT")
                .ok()
                .and_then(|p| p.trim().parse::<u16>().ok())
                .filter(|p| *p != 0)
                .unwrap_or(DEFAULT_PORT);
            StatsdClient::connect(SocketAddr::from(([127, 0, 0, 1], port))).ok()
        })
        .as_ref()
}

fn send_default(name: &str, value: f64, kind: &str, tags: &[&str]) {
    match default_client() {
        Some(c) => c.send(name, value, kind, tags),
        None => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `name:value|kind|#tag,tag`, sanitized.
fn format_line(line: &mut String, name: &str, value: f64, kind: &str, tags: &[&str]) {
    line.clear();
    push_clean(line, name, &[':', '|', '@', '\n', '\r']);
    // `Display` of an f64 is the shortest exact form, which DogStatsD parses back exactly.
    let _ = write!(line, ":{value}|{kind}");
    let mut first = true;
    for tag in tags.iter().filter(|t| !t.is_empty()) {
        line.push_str(if first { "|#" } else { "," });
        first = false;
        push_clean(line, tag, &['|', ',', '\n', '\r']);
    }
}

fn push_clean(out: &mut String, s: &str, bad: &[char]) {
    for c in s.chars() {
        out.push(if bad.contains(&c) { '_' } else { c });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_well_formed_and_sanitized() {
        let mut l = String::new();
        format_line(
            &mut l,
            "orders.value",
            42.5,
            "d",
            &["currency:eur", "", "b:1"],
        );
        assert_eq!(l, "orders.value:42.5|d|#currency:eur,b:1");
        format_line(&mut l, "a:b|c", 1.0, "c", &[]);
        assert_eq!(l, "a_b_c:1|c");
        format_line(&mut l, "x", -0.001, "g", &["evil|tag,two\nlines"]);
        assert_eq!(l, "x:-0.001|g|#evil_tag_two_lines");
    }
}
