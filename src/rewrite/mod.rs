//! Graph rewrites that help execution providers; every pass is exact or carries a tolerance, and
//! `verify` proves it by running both graphs.

pub mod fuse_io;
