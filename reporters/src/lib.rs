//! bosun-reporters
