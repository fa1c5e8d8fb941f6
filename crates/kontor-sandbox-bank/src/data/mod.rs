//! Deterministic bank data: users, their accounts, and 24 months of realistic entries.

pub mod book;
pub mod calendar;
mod generator;
pub mod model;
mod spending;
pub mod templates;
pub mod users;
