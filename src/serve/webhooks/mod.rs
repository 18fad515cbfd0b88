//! Provider webhooks for bounces and complaints.

pub mod sns;
