//! Running the shards as another user (`--user`, `--group`): a shard takes its listeners,
//! opens its root, loads its certificates and opens the access log as root, then drops to
//! these ids for good before it serves a byte. The master stays root: it binds, makes the
//! ticket keys, reads certificates again at each reload and starts shards that open all of
//! that again.

use crate::config::Config;
use nix::unistd::{self, Gid, Group, Uid, User};

/// Whom a shard runs as.
pub struct Ids {
    pub uid: Uid,
    pub gid: Gid,
    pub user: String,
    pub group: String,
}

/// The ids `--user` and `--group` name: none without `--user`. Names are looked up in the
/// user database; a number is taken as an id, known there or not.
pub fn resolve(config: &Config) -> Result<Option<Ids>, String> {
    let Some(user_name) = config.user.as_deref() else {
        return match &config.group {
            Some(group) => {
                Err(format!("--group {group}: --group needs --user; pass --user NAME too, or leave --group out"))
            }
            None => Ok(None),
        };
    };
    let (uid, user, primary) = user_ids(user_name)?;
    let (gid, group) = match (config.group.as_deref(), primary) {
        (Some(group_name), _) => group_ids(group_name)?,
        (None, Some(gid)) => (gid, group_name(gid, &gid.to_string())?),
        (None, None) => {
            return Err(format!(
                "--user {user_name}: not in the user database, so it has no primary group; pass --group too"
            ));
        }
    };
    let euid = unistd::geteuid();
    if !euid.is_root() {
        return Err(format!(
            "--user {user_name}: --user needs the server to start as root (it runs as uid {euid}); start it as root, or leave --user out"
        ));
    }
    Ok(Some(Ids { uid, gid, user, group }))
}

/// The uid, name and primary group (when the user database knows it) of `--user NAME`.
fn user_ids(name: &str) -> Result<(Uid, String, Option<Gid>), String> {
    let lookup = |found: nix::Result<Option<User>>| {
        found.map_err(|e| format!("--user {name}: cannot look it up in the user database: {e}"))
    };
    if let Some(user) = lookup(User::from_name(name))? {
        return Ok((user.uid, user.name, Some(user.gid)));
    }
    let Ok(raw) = name.parse::<u32>() else {
        return Err(format!("--user {name}: no such user; create it or pass an existing one"));
    };
    let uid = Uid::from_raw(raw);
    Ok(match lookup(User::from_uid(uid))? {
        Some(user) => (uid, user.name, Some(user.gid)),
        None => (uid, name.to_string(), None),
    })
}

/// The gid and name of `--group NAME`.
fn group_ids(name: &str) -> Result<(Gid, String), String> {
    let found = Group::from_name(name).map_err(|e| format!("--group {name}: cannot look it up: {e}"))?;
    if let Some(group) = found {
        return Ok((group.gid, group.name));
    }
    match name.parse::<u32>() {
        Ok(raw) => Ok((Gid::from_raw(raw), group_name(Gid::from_raw(raw), name)?)),
        Err(_) => Err(format!("--group {name}: no such group; create it or pass an existing one")),
    }
}

/// The name of `gid`, or `otherwise` when the group database has none.
fn group_name(gid: Gid, otherwise: &str) -> Result<String, String> {
    let found = Group::from_gid(gid).map_err(|e| format!("group {gid}: cannot look it up: {e}"))?;
    Ok(found.map_or_else(|| otherwise.to_string(), |group| group.name))
}

/// Become `ids` for good: the groups first (only root may change them), then real,
/// effective and saved ids at once, so that nothing is left to switch back to; then make
/// sure of it.
pub fn drop_to(ids: &Ids) -> Result<(), String> {
    let who = format!("user {} ({}), group {} ({})", ids.user, ids.uid, ids.group, ids.gid);
    let cannot = |what: &str, e: nix::Error| format!("cannot run as {who}: {what}: {e}");
    unistd::setgroups(&[ids.gid]).map_err(|e| cannot("setgroups", e))?;
    unistd::setresgid(ids.gid, ids.gid, ids.gid).map_err(|e| cannot("setresgid", e))?;
    unistd::setresuid(ids.uid, ids.uid, ids.uid).map_err(|e| cannot("setresuid", e))?;
    let uids = unistd::getresuid().map_err(|e| cannot("getresuid", e))?;
    let gids = unistd::getresgid().map_err(|e| cannot("getresgid", e))?;
    let groups = unistd::getgroups().map_err(|e| cannot("getgroups", e))?;
    let now = (
        [uids.real, uids.effective, uids.saved, unistd::getuid(), unistd::geteuid()],
        [gids.real, gids.effective, gids.saved, unistd::getgid(), unistd::getegid()],
    );
    if now != ([ids.uid; 5], [ids.gid; 5]) || groups != [ids.gid] {
        return Err(format!(
            "cannot run as {who}: the ids are now uid {:?}, gid {:?}, groups {groups:?}",
            now.0.map(Uid::as_raw),
            now.1.map(Gid::as_raw)
        ));
    }
    // As root there is nothing to go back to.
    if !ids.uid.is_root() && (unistd::setuid(Uid::from_raw(0)).is_ok() || unistd::setgid(Gid::from_raw(0)).is_ok()) {
        return Err(format!("dropped to {who}, but root's ids can still be taken back; refusing to serve"));
    }
    Ok(())
}
