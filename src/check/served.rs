//! The settings the webhook runs with, read from its `GET /settings` through the API server's
//! service proxy (as the `ca-bundle` step reads `GET /certificate`): the `nodes` step
//! describes the delivery the server is configured for, the dry runs plan as it does.

use kube::Client;

use super::Configured;
use crate::served::{SETTINGS_PATH, ServedSettings};

/// The server's settings, or why they could not be read (said in the steps that need them).
pub(super) type Served = Result<ServedSettings, String>;

pub(super) async fn served_settings(client: &Client, configured: &Configured) -> Served {
    let (_, served) = configured.served(client, SETTINGS_PATH).await;
    match served {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|err| format!("{SETTINGS_PATH} of the webhook is not its settings ({err})")),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(format!(
            "the webhook does not show its settings ({SETTINGS_PATH}: 404, a version older than this check?)"
        )),
        Err(err) => Err(format!(
            "cannot read the webhook's {SETTINGS_PATH} through the service proxy ({err})"
        )),
    }
}
