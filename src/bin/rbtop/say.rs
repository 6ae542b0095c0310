//! Writing to stdout and stderr without panicking when they are closed
//! (EPIPE): `println!` and `eprintln!` panic there, and a panic is exit 101.
//! Declared first in `main.rs` (`#[macro_use]`), so every module has them.

/// `eprintln!` that ignores a closed stderr (EPIPE) instead of panicking:
/// `rbtop … 2>&-` or a reader gone away must give the usual exit status,
/// not a panic and exit 101.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` with the same care.
macro_rules! say_inline {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}
