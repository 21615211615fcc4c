//! XML plumbing shared by the VAST and VMAP readers and writers: an element tree read with quick-xml, and an
//! indenting writer. Nothing here knows VAST.

pub(crate) mod read;
pub(crate) mod write;
