//! Who may sync what.
//!
//! The transport authenticates (a verified JWT's subject, or nobody in the `none` mode)
//! and hands the user to the library; the library decides, with one hook an app can
//! replace: [`Authorizer::authorize`]`(user, space, action)`. The default,
//! [`SpaceMembership`], gives each space an owner (its creator) and members, and may open
//! a space to anyone with its link (the tutorial's mode).
//!
//! A refusal is either [`Refusal::Forbidden`] (403: the user may know the space exists)
//! or [`Refusal::Hidden`] (404: telling "exists" would leak it).

use crate::ids::SpaceId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The user of an anonymous request (the `none` auth mode).
pub const ANONYMOUS: &str = "";

/// Most members one space may have: the list travels with every push and pull read.
pub const MAX_MEMBERS: usize = 1_000;
/// Longest user ID accepted (a JWT subject).
pub const MAX_USER_BYTES: usize = 256;

/// Who, besides the owner and the members, may use a space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkAccess {
    /// Anyone who has the space's ID (its link) may read and write it.
    Open,
    /// Only its owner and members.
    Members,
}

impl LinkAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkAccess::Open => "open",
            LinkAccess::Members => "members",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "open" => Some(LinkAccess::Open),
            "members" => Some(LinkAccess::Members),
            _ => None,
        }
    }
}

/// Who may use a space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpaceAccess {
    /// The user who created it ([`ANONYMOUS`] for spaces created without sign-in).
    pub owner: String,
    pub members: BTreeSet<String>,
    pub link: LinkAccess,
}

impl SpaceAccess {
    /// What spaces created before access was recorded have: open to anyone, owned by
    /// nobody.
    pub fn legacy() -> Self {
        Self {
            owner: ANONYMOUS.to_owned(),
            members: BTreeSet::new(),
            link: LinkAccess::Open,
        }
    }

    pub fn new(owner: &str, link: LinkAccess) -> Self {
        Self {
            owner: owner.to_owned(),
            members: BTreeSet::new(),
            link,
        }
    }

    pub fn is_owner(&self, user: &str) -> bool {
        self.owner == user
    }

    /// The owner or a member.
    pub fn is_member(&self, user: &str) -> bool {
        self.is_owner(user) || self.members.contains(user)
    }
}

/// A change of a space's access, by its owner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessChange {
    pub add: BTreeSet<String>,
    pub remove: BTreeSet<String>,
    pub link: Option<LinkAccess>,
}

impl AccessChange {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.link.is_none()
    }

    /// `access` with the change applied (removals after additions; the owner stays).
    pub fn applied_to(&self, access: &SpaceAccess) -> SpaceAccess {
        let mut next = access.clone();
        next.members.extend(self.add.iter().cloned());
        for user in &self.remove {
            next.members.remove(user);
        }
        next.members.remove(&next.owner);
        if let Some(link) = self.link {
            next.link = link;
        }
        next
    }
}

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateSpace,
    /// `spaceExists`: answered `false` rather than refused.
    CheckExists,
    Pull,
    Push,
    /// Open a poke socket.
    Subscribe,
    ReadAccess,
    ChangeAccess,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::CreateSpace => "createSpace",
            Action::CheckExists => "spaceExists",
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Subscribe => "subscribe",
            Action::ReadAccess => "readAccess",
            Action::ChangeAccess => "changeAccess",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 403: the user may know the space exists, and may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the user may not learn whether the space exists.
    #[error("space not found")]
    Hidden,
}

/// The rule of who may do what. `access` is `None` for a space that does not exist yet
/// (only [`Action::CreateSpace`] is asked about one).
pub trait Authorizer: Send + Sync {
    fn authorize(
        &self,
        user: &str,
        space: &SpaceId,
        access: Option<&SpaceAccess>,
        action: Action,
    ) -> Result<(), Refusal>;
}

/// The default rule: owners and members may do everything but change access, which is
/// the owner's; an open space lets anyone use it; nobody else learns it exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpaceMembership;

impl Authorizer for SpaceMembership {
    fn authorize(
        &self,
        user: &str,
        _space: &SpaceId,
        access: Option<&SpaceAccess>,
        action: Action,
    ) -> Result<(), Refusal> {
        let Some(access) = access else {
            return match action {
                Action::CreateSpace => Ok(()),
                _ => Err(Refusal::Hidden),
            };
        };
        let member = access.is_member(user);
        let open = access.link == LinkAccess::Open;
        match action {
            Action::CreateSpace => Ok(()),
            Action::CheckExists
            | Action::Pull
            | Action::Push
            | Action::Subscribe
            | Action::ReadAccess => {
                if member || open {
                    Ok(())
                } else {
                    Err(Refusal::Hidden)
                }
            }
            Action::ChangeAccess => {
                if access.is_owner(user) {
                    Ok(())
                } else if member || open {
                    Err(Refusal::Forbidden(
                        "only the space's owner may change who has access".into(),
                    ))
                } else {
                    Err(Refusal::Hidden)
                }
            }
        }
    }
}

/// Who is asking, and the rule that decides for them: what the engine authorizes with.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The authenticated user ([`ANONYMOUS`] without sign-in).
    pub user: &'a str,
    pub authorizer: &'a dyn Authorizer,
}

impl<'a> Caller<'a> {
    pub fn authorize(
        &self,
        space: &SpaceId,
        access: Option<&SpaceAccess>,
        action: Action,
    ) -> Result<(), Refusal> {
        self.authorizer.authorize(self.user, space, access, action)
    }
}

/// A user under the default rule, [`SpaceMembership`].
impl<'a> From<&'a str> for Caller<'a> {
    fn from(user: &'a str) -> Self {
        Caller {
            user,
            authorizer: &SpaceMembership,
        }
    }
}

/// How a service decides access: the rule (the app's, from [`crate::access_rules`]), and
/// what new spaces are.
#[derive(Clone)]
pub struct AccessPolicy {
    pub authorizer: Arc<dyn Authorizer>,
    /// What a new space is when its creator does not say.
    pub default_link: LinkAccess,
    /// Most spaces one signed-in user may own.
    pub max_spaces_per_user: Option<usize>,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("default_link", &self.default_link)
            .field("max_spaces_per_user", &self.max_spaces_per_user)
            .finish_non_exhaustive()
    }
}

/// Most spaces a signed-in user may own by default.
pub const DEFAULT_MAX_SPACES_PER_USER: usize = 1_000;

impl AccessPolicy {
    /// Without sign-in (the `none` auth mode): every space open to anyone with its link.
    pub fn anonymous() -> Self {
        Self {
            authorizer: crate::access_rules::authorizer(),
            default_link: LinkAccess::Open,
            max_spaces_per_user: None,
        }
    }

    /// With sign-in (the `jwt` auth mode): new spaces are their owner's and members'.
    pub fn signed_in() -> Self {
        Self {
            authorizer: crate::access_rules::authorizer(),
            default_link: LinkAccess::Members,
            max_spaces_per_user: Some(DEFAULT_MAX_SPACES_PER_USER),
        }
    }

    /// The same policy deciding with `authorizer`: an app's own rule.
    pub fn with_authorizer(mut self, authorizer: Arc<dyn Authorizer>) -> Self {
        self.authorizer = authorizer;
        self
    }

    pub fn caller<'a>(&'a self, user: &'a str) -> Caller<'a> {
        Caller {
            user,
            authorizer: self.authorizer.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> SpaceId {
        SpaceId::parse("s").unwrap()
    }

    fn private() -> SpaceAccess {
        let mut access = SpaceAccess::new("alice", LinkAccess::Members);
        access.members.insert("bob".into());
        access
    }

    #[test]
    fn members_use_a_private_space_and_strangers_do_not_learn_it_exists() {
        let rule = SpaceMembership;
        let access = private();
        for action in [
            Action::Pull,
            Action::Push,
            Action::Subscribe,
            Action::ReadAccess,
        ] {
            for user in ["alice", "bob"] {
                assert_eq!(
                    rule.authorize(user, &space(), Some(&access), action),
                    Ok(())
                );
            }
            assert_eq!(
                rule.authorize("mallory", &space(), Some(&access), action),
                Err(Refusal::Hidden),
                "{action:?}"
            );
        }
        assert_eq!(
            rule.authorize("alice", &space(), Some(&access), Action::ChangeAccess),
            Ok(())
        );
        assert!(matches!(
            rule.authorize("bob", &space(), Some(&access), Action::ChangeAccess),
            Err(Refusal::Forbidden(_))
        ));
        assert_eq!(
            rule.authorize("mallory", &space(), Some(&access), Action::ChangeAccess),
            Err(Refusal::Hidden)
        );
    }

    #[test]
    fn an_open_space_lets_anyone_in_but_only_its_owner_changes_access() {
        let rule = SpaceMembership;
        let open = SpaceAccess::new("alice", LinkAccess::Open);
        assert_eq!(
            rule.authorize("mallory", &space(), Some(&open), Action::Push),
            Ok(())
        );
        assert!(matches!(
            rule.authorize("mallory", &space(), Some(&open), Action::ChangeAccess),
            Err(Refusal::Forbidden(_))
        ));
        let legacy = SpaceAccess::legacy();
        assert_eq!(
            rule.authorize(ANONYMOUS, &space(), Some(&legacy), Action::ChangeAccess),
            Ok(()),
            "the tutorial's anonymous spaces stay fully usable without sign-in"
        );
    }

    #[test]
    fn access_changes_keep_the_owner_out_of_the_members() {
        let change = AccessChange {
            add: ["carol".to_owned(), "alice".to_owned()].into(),
            remove: ["bob".to_owned()].into(),
            link: Some(LinkAccess::Open),
        };
        let next = change.applied_to(&private());
        assert_eq!(next.members, ["carol".to_owned()].into());
        assert_eq!(
            (next.owner.as_str(), next.link),
            ("alice", LinkAccess::Open)
        );
    }
}
