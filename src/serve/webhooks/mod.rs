//! Provider webhooks for bounces and complaints.

pub mod postmark;
pub mod ses;
pub mod sns;
