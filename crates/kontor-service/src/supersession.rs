//! Why a bank ended a consent early, when the hub can tell. Berlin Group banks expire a
//! person's recurring consent as soon as they authorise a newer one for the same third party
//! (NextGenPSD2 1.3.8, `POST /v1/consents`, side effects). Every tenant that reaches a bank with
//! the hub's credentials is that one third party, so a user linking the same bank in another
//! tenant's app ends the first tenant's connection. The hub saw that newer authorisation: a
//! connection at the same bank, authorised later, holding one of the same accounts.

use kontor_domain::bank::Standard;
use kontor_domain::connection::{Connection, FailureReason};

use crate::error::ServiceResult;
use crate::hub::Hub;

impl Hub {
    /// The reason to report for an active connection whose consent the bank says expired:
    /// [`FailureReason::Superseded`] when a newer authorisation by the same third party covers
    /// its accounts, `None` when the hub cannot tell. Best effort: a failure to look is logged
    /// and the expiry is reported without a reason.
    pub(crate) async fn expiry_reason(&self, connection: &Connection) -> Option<FailureReason> {
        match self.superseded(connection).await {
            Ok(true) => Some(FailureReason::Superseded),
            Ok(false) => None,
            Err(err) => {
                tracing::warn!(connection.id = %connection.id, error = %err, "could not tell whether the consent was superseded");
                None
            }
        }
    }

    async fn superseded(&self, connection: &Connection) -> ServiceResult<bool> {
        let (Some(bank), Some(authorised_at)) = (&connection.bank_id, connection.authorised_at)
        else {
            return Ok(false);
        };
        let berlin_group = self
            .directory()
            .get(bank)
            .is_some_and(|b| b.profile.standard == Standard::BerlinGroup);
        // A consent that reached its end expired; it was not superseded.
        let early = connection
            .valid_until
            .is_none_or(|until| self.clock().now() < until);
        if !berlin_group || !early {
            return Ok(false);
        }
        let accounts: Vec<String> = self
            .cell_of(&connection.id)
            .await?
            .connection_accounts(&connection.id)
            .await?
            .into_iter()
            .map(|a| a.bank_account_id)
            .collect();
        let third_party = self.directory().third_party(bank, &connection.tenant_id);
        // The newer authorisation may belong to any tenant, so to any cell.
        for (_, cell) in self.cells().iter() {
            let candidates = cell
                .authorised_sharing_accounts(bank, authorised_at, &accounts, &connection.id)
                .await?;
            if candidates
                .iter()
                .any(|c| self.directory().third_party(bank, &c.tenant_id) == third_party)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
