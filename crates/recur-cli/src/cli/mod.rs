//! The `recur` subcommands; each file is one command. They only parse, call the library, print.

pub mod eval;
pub mod import;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod output;
pub mod quickstart;
pub mod serve;
pub mod shard;
pub mod train;
pub mod translate;
