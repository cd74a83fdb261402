//! The app's rule of who may sync what: edit this module to plug in your own (see the
//! README, "Who may sync what"). Every route asks it through [`Authorizer::authorize`],
//! in both auth modes; the default is [`SpaceMembership`].

use crate::auth::{Authorizer, SpaceMembership};
use std::sync::Arc;

/// The rule every service of this app decides with.
pub fn authorizer() -> Arc<dyn Authorizer> {
    Arc::new(SpaceMembership)
}
