//! Small, dependency-free building blocks: money, IBANs, randomness and the simulated clock.

pub mod clock;
pub mod dates;
pub mod iban;
pub mod money;
pub mod rng;
