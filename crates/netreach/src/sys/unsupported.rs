//! Operating systems netreach has no kernel source for: opening fails with `Unsupported`.

use super::{Input, KernelConfig};
use crate::model::{Error, NetworkState};
use crate::path::RouteLookup;

/// No kernel source exists here (no value of this type can be made).
pub(crate) enum Kernel {}

/// Wakes nothing: there is no loop to wake.
pub(crate) struct Waker;

impl Waker {
    pub(crate) fn wake(&self) {}
}

impl Kernel {
    pub(crate) fn open(_: &KernelConfig) -> Result<(Kernel, NetworkState), Error> {
        Err(Error::unsupported(format!("netreach has no backend for {} yet", std::env::consts::OS)))
    }

    pub(crate) fn waker(&self) -> Waker {
        match *self {}
    }

    pub(crate) fn next(&mut self) -> Result<Input, String> {
        match *self {}
    }

    pub(crate) fn busy(&self) -> bool {
        match *self {}
    }
}

impl RouteLookup for Kernel {
    fn route(&mut self, _: &crate::path::Query) -> crate::path::Answer {
        match *self {}
    }
}
