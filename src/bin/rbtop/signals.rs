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

/// A listener for the rest of a headless command, on a thread of its own:
/// a signal that comes while no runtime of the command waits for one
/// (tokio's handler has replaced the default action by then) is kept, not
/// lost, and a second one still exits at once.
pub struct SignalLatch {
    fired: tokio::sync::watch::Receiver<Option<Interrupted>>,
}

impl SignalLatch {
    pub fn start() -> SignalLatch {
        let (send, fired) = tokio::sync::watch::channel(None);
        std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let signal = shutdown_signal().await;
                let _ = send.send(Some(signal));
                // Kept running: the second signal's exit lives here.
                std::future::pending::<()>().await;
            });
        });
        SignalLatch { fired }
    }

    /// The signal, if one came.
    pub fn fired(&self) -> Option<Interrupted> {
        *self.fired.borrow()
    }

    /// Until a signal comes (at once if one came).
    pub async fn wait(&self) -> Interrupted {
        let mut fired = self.fired.clone();
        match fired.wait_for(Option::is_some).await {
            Ok(signal) => signal.expect("waited for Some"),
            Err(_) => std::future::pending().await,
        }
    }
}
