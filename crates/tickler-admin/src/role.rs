//! Who may do what on the admin socket. Each connection gets a role from its peer's
//! credentials (SO_PEERCRED, checked once when it connects): an **app** creates, moves and
//! completes entities and reads them; an **operator** may also stop the daemon, move the
//! clock, pause, cancel, retry, export. Anyone else is refused.
//!
//! The lists are allow-lists: a command added to the protocol is an operator's until it is
//! put here on purpose, and a family's commands are an operator's unless the family says so.

use std::collections::BTreeSet;

use tokio::net::UnixStream;

use crate::family::Families;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    App,
    Operator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Operator => "operator",
        }
    }

    /// Whether this role may send `cmd`.
    pub fn may(self, cmd: &str, families: &Families) -> bool {
        match self {
            Role::Operator => true,
            Role::App => APP_COMMANDS.contains(&cmd) || families.app_may(cmd),
        }
    }
}

/// The generic commands an application may send: what changes its own entities, and reads.
pub const APP_COMMANDS: &[&str] = &[
    "status",
    "clock.now",
    "due.create",
    "due.move",
    "due.complete",
    "entity.create",
    "entity.move-anchor",
    "entity.move-anchors",
    "entity.set-attribute",
    "entity.complete",
    "entity.change-recipient",
    "group.join",
    "group.leave",
    "toggle",
    "show",
    "history",
    "list",
    "due",
    "explain",
    "watch",
];

/// Who gets which role on one socket. The daemon's own user and root are always operators
/// (on the main socket); nobody else gets in unless listed.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub operator_uids: Vec<u32>,
    pub operator_gids: Vec<u32>,
    pub app_uids: Vec<u32>,
    pub app_gids: Vec<u32>,
    /// The socket file's group: its members can open the socket (it becomes 0660 and a
    /// directory tickler creates 0750, owned by that group). Their role comes from the lists.
    pub group: Option<u32>,
    /// The application socket: whoever can open it is an app, root and the daemon's user
    /// included (the file's group decides who can).
    pub apps_only: bool,
    /// Where a peer's supplementary groups come from; `None`: its primary group only.
    pub groups_of: Option<SupplementaryGroups>,
}

/// A connected peer's user and groups (primary and supplementary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gids: BTreeSet<u32>,
}

impl Access {
    /// The access of the application socket, owned by `group`.
    pub fn apps_only(group: Option<u32>) -> Access {
        Access {
            group,
            apps_only: true,
            ..Access::default()
        }
    }

    /// The role of `peer`, or `None` if it may not use the socket.
    pub fn role(&self, daemon_uid: u32, peer: &Peer) -> Option<Role> {
        if self.apps_only {
            return Some(Role::App);
        }
        let in_groups = |gids: &[u32]| gids.iter().any(|gid| peer.gids.contains(gid));
        if peer.uid == daemon_uid
            || peer.uid == 0
            || self.operator_uids.contains(&peer.uid)
            || in_groups(&self.operator_gids)
        {
            Some(Role::Operator)
        } else if self.app_uids.contains(&peer.uid) || in_groups(&self.app_gids) {
            Some(Role::App)
        } else {
            None
        }
    }
}

/// How the daemon finds a process's supplementary groups (SO_PEERCRED carries only the primary
/// one): given by the binary, which reads `/proc/PID/status`; this crate reads no file.
pub type SupplementaryGroups = fn(pid: i32) -> Vec<u32>;

/// The peer of a connection: its uid and primary gid from SO_PEERCRED, and its supplementary
/// groups from `groups_of`. If the process is gone, only the primary group counts: a role is
/// never widened by a failed read.
pub fn peer(stream: &UnixStream, groups_of: Option<SupplementaryGroups>) -> std::io::Result<Peer> {
    let cred = stream.peer_cred()?;
    let mut gids = BTreeSet::from([cred.gid()]);
    if let (Some(pid), Some(groups_of)) = (cred.pid(), groups_of) {
        gids.extend(groups_of(pid));
    }
    Ok(Peer {
        uid: cred.uid(),
        gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAEMON: u32 = 1000;

    fn peer(uid: u32, gids: &[u32]) -> Peer {
        Peer {
            uid,
            gids: gids.iter().copied().collect(),
        }
    }

    #[test]
    fn the_daemons_user_and_root_are_operators_and_nobody_else_gets_in_by_default() {
        let access = Access::default();
        assert_eq!(
            access.role(DAEMON, &peer(DAEMON, &[DAEMON])),
            Some(Role::Operator)
        );
        assert_eq!(access.role(DAEMON, &peer(0, &[0])), Some(Role::Operator));
        assert_eq!(access.role(DAEMON, &peer(1002, &[1002])), None);
    }

    #[test]
    fn listed_users_and_groups_get_their_role_by_any_of_their_groups() {
        let access = Access {
            operator_uids: vec![1001],
            app_uids: vec![1002],
            app_gids: vec![33],
            ..Access::default()
        };
        assert_eq!(
            access.role(DAEMON, &peer(1001, &[1001])),
            Some(Role::Operator)
        );
        assert_eq!(access.role(DAEMON, &peer(1002, &[1002])), Some(Role::App));
        assert_eq!(
            access.role(DAEMON, &peer(1003, &[1003, 33])),
            Some(Role::App)
        );
        assert_eq!(access.role(DAEMON, &peer(1004, &[1004, 34])), None);
    }

    #[test]
    fn on_the_application_socket_everyone_is_an_app_root_included() {
        let access = Access::apps_only(Some(33));
        assert_eq!(access.role(DAEMON, &peer(0, &[0])), Some(Role::App));
        assert_eq!(
            access.role(DAEMON, &peer(DAEMON, &[DAEMON])),
            Some(Role::App)
        );
    }

    #[test]
    fn an_app_may_create_and_read_but_not_stop_the_daemon_or_move_the_clock() {
        let families = Families::default();
        for cmd in ["due.create", "show", "explain", "watch", "group.join"] {
            assert!(Role::App.may(cmd, &families), "{cmd}");
        }
        for cmd in [
            "shutdown",
            "clock.advance",
            "clock.set",
            "pause",
            "cancel",
            "retry",
        ] {
            assert!(!Role::App.may(cmd, &families), "{cmd}");
        }
        for cmd in [
            "snapshot", "export", "failures", "metrics", "backfill", "no.such",
        ] {
            assert!(!Role::App.may(cmd, &families), "{cmd}");
            assert!(Role::Operator.may(cmd, &families), "{cmd}");
        }
    }

    #[test]
    fn every_app_command_is_a_command_of_the_protocol() {
        for cmd in APP_COMMANDS {
            assert!(crate::protocol::COMMANDS.contains(cmd), "{cmd}");
        }
    }
}
