//! Nix store protocols at the byte level: the opening handshakes and a cheap
//! round-trip ping for `ssh://` (serve protocol, remote `nix-store --serve
//! --write`) and `ssh-ng://` (worker protocol, remote `nix-daemon --stdio`).
//!
//! Everything is generic over Tokio's `AsyncRead`/`AsyncWrite`, so the same
//! code runs over an ssh channel, a unix socket or a local child's pipes.
//! Every message is written and flushed whole before the reply is read, and
//! no length read from the peer is trusted beyond [`MAX_STRING`] bytes or
//! [`MAX_LIST`] items. A wrong magic waits a little for the rest of what the
//! peer said (see [`ProtocolError::WrongMagic`]), so it needs a runtime with
//! the time driver enabled.
//!
//! Timeouts are the caller's: wrap the futures in `tokio::time::timeout`.

mod error;
mod magic;
pub mod serve;
mod stderr;
mod text;
mod version;
mod wire;
pub mod worker;

pub use error::ProtocolError;
pub use version::ProtocolVersion;
pub use wire::{MAX_LIST, MAX_STRING};
