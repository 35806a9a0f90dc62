//! Migration phases and which frames each phase allows.
