use super::Checker;
use crate::error::{Error, Result};
use crate::fixture::Fixture;

fn unsupported(fx: &Fixture) -> Result<()> {
    Err(Error::tensor(
        "conformance",
        "case.kind",
        format!("unsupported kind `{}`", fx.kind()),
    ))
}
pub(super) fn run(fx: &Fixture, _chk: &mut Checker) -> Result<()> {
    unsupported(fx)
}
