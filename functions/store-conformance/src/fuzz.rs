//! Fuzzing of push and pull bodies and of mutator args through the whole API.
