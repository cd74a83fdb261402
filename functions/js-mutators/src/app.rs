//! The product's mutators: the app's JavaScript module, `client/src/mutators.js`, compiled
//! into the binary, with the Rust mutators of [`sync_core::mutators::app`] that stay Rust
//! on top. `increment` is the JavaScript one, so the tutorial's counter runs the same code
//! in the browser and on the server.

use crate::{Config, JsMutators, LoadError};
use std::sync::OnceLock;
use sync_core::Registry;
use sync_core::mutators::app::{DeleteItem, SetItem};

/// The app's mutators module, as the browser bundles it.
pub const SOURCE: &str = include_str!("../../../client/src/mutators.js");

/// The engines of [`SOURCE`], loaded once per process: every service of the process (and
/// every invocation of a warm Lambda) shares them.
static LOADED: OnceLock<Result<JsMutators, String>> = OnceLock::new();

/// Every mutator the server knows: the JavaScript ones of [`SOURCE`], and the Rust
/// `setItem` and `deleteItem`, which win over their JavaScript twins.
pub fn registry() -> Result<Registry, LoadError> {
    let loaded = LOADED
        .get_or_init(|| JsMutators::load(SOURCE, Config::default()).map_err(|e| e.to_string()));
    match loaded {
        Ok(js) => Ok(rust().or_else(js.registry())),
        Err(e) => Err(LoadError::Module(e.clone())),
    }
}

/// [`registry`], for wiring that cannot fail: [`SOURCE`] is part of the binary and this
/// crate's tests load it, so failing here is a build defect, reported at start-up.
pub fn registry_or_panic() -> Registry {
    registry().unwrap_or_else(|e| panic!("the compiled-in mutators do not load: {e}"))
}

/// The Rust mutators the product keeps.
fn rust() -> Registry {
    Registry::new()
        .with("setItem", SetItem)
        .with("deleteItem", DeleteItem)
}
