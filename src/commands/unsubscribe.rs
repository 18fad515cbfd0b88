//! `pressroom unsubscribe EMAIL | --token TOKEN`: add an address to the
//! suppression list. The token form verifies the HMAC of an unsubscribe
//! link, so a web form or CGI can call it with whatever a visitor sends.

use super::Result;
use chrono::Utc;
use tracing::info;

use super::InputError;
use crate::address::EmailAddress;
use crate::cli::{Global, UnsubscribeArgs};
use crate::delivery::ledger::Ledger;
use crate::email::verify_token;

pub fn run(global: &Global, args: &UnsubscribeArgs) -> Result<()> {
    let config = super::load_config(&global.root)?;
    let address = match (&args.email, &args.token) {
        (Some(email), _) => EmailAddress::parse(email).map_err(|e| InputError(e.to_string()))?,
        (None, Some(token)) => {
            let secret = super::secret()?;
            let list_id = config.email.list_id(&config.site);
            verify_token(token, &list_id, &secret).ok_or_else(|| {
                InputError(
                    "the unsubscribe token is not valid (altered, or signed with another secret)"
                        .into(),
                )
            })?
        }
        (None, None) => return Err(InputError("give an address or --token".into()).into()),
    };
    let path = super::ledger_path(&global.root, &config);
    let mut ledger = Ledger::open(&path)?;
    if ledger.unsubscribe(&address, "command", Utc::now())? {
        info!("{address} unsubscribed: no newsletter will be sent to it again");
    } else {
        info!("{address} was already unsubscribed");
    }
    Ok(())
}
