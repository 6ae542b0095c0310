//! The signals that end a command (Ctrl-C, SIGTERM, SIGHUP), shared by
//! `rbtop check` and the dashboard so both exit the same way.

/// Which signal stopped a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupted {
    Int,
    Term,
    Hup,
}

impl Interrupted {
    /// 128 + the signal number, as a shell reports a process killed by it.
    pub fn exit_status(self) -> u8 {
        match self {
            Interrupted::Hup => 129,
            Interrupted::Int => 130,
            Interrupted::Term => 143,
        }
    }
}

/// The first Ctrl-C, SIGTERM or SIGHUP: the caller then stops and closes
/// every session. Closing is bounded, but an operator who insists gets out
/// now: a second signal exits at once.
pub async fn shutdown_signal() -> Interrupted {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return Interrupted::Int;
    };
    let first = tokio::select! {
        _ = tokio::signal::ctrl_c() => Interrupted::Int,
        _ = term.recv() => Interrupted::Term,
        _ = hup.recv() => Interrupted::Hup,
    };
    let code = first.exit_status();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        say!("rbtop: interrupted twice; exiting without closing sessions");
        std::process::exit(code.into());
    });
    first
}
