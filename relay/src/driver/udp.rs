//! One worker's UDP socket with batched receive (`recvmmsg` and GRO through
//! the `quinn-udp` crate) on a tokio reactor.
//!
//! Sending goes through `quinn-udp` too (`sendmsg`, one datagram per call):
//! an SFU's fan-out sends to a different address per datagram, which GSO
//! cannot merge.
#![allow(clippy::disallowed_types)] // the driver owns the sockets

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams longer than this are dropped unread by the worker ("oversized").
/// WebRTC stacks keep datagrams under the path MTU, about 1200 bytes.
pub const MAX_DATAGRAM_LEN: usize = 1500;

/// Requested kernel socket buffer size, each way.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Size of one receive buffer: a full UDP datagram, or a GRO batch of them.
const RECV_BUF_LEN: usize = 64 * 1024;

/// Binds a worker's socket (blocking std socket, converted on the worker's
/// own runtime by [`BatchSocket::new`]).
pub fn bind(addr: SocketAddr) -> io::Result<StdUdpSocket> {
    let socket = StdUdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A received datagram, borrowed from the socket's buffers.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// Where it came from.
    pub source: SocketAddr,
    /// Its bytes.
    pub contents: &'a [u8],
}

/// A non-blocking UDP socket with batched receive.
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    bufs: Vec<Box<[u8]>>,
    metas: Vec<RecvMeta>,
    filled: usize,
}

impl BatchSocket {
    /// Takes over a socket from [`bind`]; must run inside a tokio runtime.
    pub fn new(socket: StdUdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // Room for bursts (a keyframe fanned out to hundreds of subscribers).
        // Best effort: the kernel caps these at net.core.{r,w}mem_max.
        let _ = state.set_recv_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size(UdpSockRef::from(&socket), SOCKET_BUFFER);
        let socket = UdpSocket::from_std(socket)?;
        let batch = BATCH_SIZE.max(1);
        let buf_len = if state.gro_segments() > 1 {
            RECV_BUF_LEN
        } else {
            MAX_DATAGRAM_LEN + 1
        };
        Ok(Self {
            socket,
            state,
            bufs: (0..batch)
                .map(|_| vec![0u8; buf_len].into_boxed_slice())
                .collect(),
            metas: vec![RecvMeta::default(); batch],
            filled: 0,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits until datagrams are ready, then receives one batch of them.
    /// Read them with [`BatchSocket::datagrams`].
    pub async fn recv_batch(&mut self) -> io::Result<()> {
        loop {
            self.socket.readable().await?;
            let Self {
                socket,
                state,
                bufs,
                metas,
                filled,
            } = self;
            let mut slices: Vec<IoSliceMut<'_>> =
                bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match socket.try_io(Interest::READABLE, || {
                state.recv(UdpSockRef::from(&*socket), &mut slices, metas)
            }) {
                Ok(n) => {
                    *filled = n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The datagrams of the last batch, GRO batches split at their stride.
    /// A datagram over [`MAX_DATAGRAM_LEN`] is yielded as is; the caller drops it.
    pub fn datagrams(&self) -> impl Iterator<Item = Datagram<'_>> {
        self.metas
            .iter()
            .zip(self.bufs.iter())
            .take(self.filled)
            .flat_map(|(meta, buf)| {
                let len = meta.len.min(buf.len());
                let stride = if meta.stride == 0 { len } else { meta.stride };
                buf.get(..len)
                    .unwrap_or_default()
                    .chunks(stride.max(1))
                    .map(move |contents| Datagram {
                        source: meta.addr,
                        contents,
                    })
            })
    }

    /// Sends one datagram, waiting for the socket to become writable if its
    /// buffer is full.
    pub async fn send(&self, destination: SocketAddr, contents: &[u8]) -> io::Result<()> {
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        };
        loop {
            match self.socket.try_io(Interest::WRITABLE, || {
                self.state
                    .try_send(UdpSockRef::from(&self.socket), &transmit)
            }) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn receives_a_batch_and_drops_nothing() {
        let rx = BatchSocket::new(bind("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
        let rx_addr = rx.local_addr().unwrap();
        let tx = BatchSocket::new(bind("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
        let tx_addr = tx.local_addr().unwrap();
        for i in 0..10u8 {
            tx.send(rx_addr, &[i; 100]).await.unwrap();
        }
        let mut rx = rx;
        let mut got = Vec::new();
        while got.len() < 10 {
            rx.recv_batch().await.unwrap();
            for d in rx.datagrams() {
                assert_eq!(d.source, tx_addr);
                got.push(d.contents.to_vec());
            }
        }
        let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
        assert_eq!(got, expected);
    }
}
