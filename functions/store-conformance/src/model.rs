//! A reference model of the protocol and a property-based test of the engine against it.
