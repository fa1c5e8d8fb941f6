//! The sandbox's customers. Everyone logs in with the same password and one-time code, so that
//! people, scripts and browser tests need nothing but this file.

/// The password of every sandbox user.
pub const PASSWORD: &str = "sandbox";
/// The one-time SCA code every sandbox user "receives".
pub const ONE_TIME_CODE: &str = "123456";

/// Where a user lives, which decides what their main bank account looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    Germany,
    France,
    UnitedKingdom,
}

/// A sandbox user (PSU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxUser {
    /// Login name at every bank.
    pub username: &'static str,
    /// Account holder name as the banks show it.
    pub full_name: &'static str,
    pub home: Home,
}

/// All sandbox users.
pub const USERS: [SandboxUser; 3] = [
    SandboxUser {
        username: "alice",
        full_name: "Alice Schneider",
        home: Home::Germany,
    },
    SandboxUser {
        username: "bob",
        full_name: "Bob Thompson",
        home: Home::UnitedKingdom,
    },
    SandboxUser {
        username: "carol",
        full_name: "Carol Dubois",
        home: Home::France,
    },
];

/// Finds a user by login name.
pub fn find(username: &str) -> Option<&'static SandboxUser> {
    USERS.iter().find(|u| u.username == username)
}
