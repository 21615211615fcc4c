//! Stitching unit tests.
