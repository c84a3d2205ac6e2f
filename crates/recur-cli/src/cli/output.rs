//! Standard output for every command: a write error (a closed pipe, a full disk) names
//! `stdout` and ends the command with a message and status 1, instead of the panic of
//! `println!`.

use std::io::{self, StdoutLock, Write};

/// The locked standard output, whose errors say `stdout: ...`.
pub struct Stdout(StdoutLock<'static>);

/// Standard output (locked for the command's life).
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

fn named(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("stdout: {e}"))
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(named)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(named)
    }
}
