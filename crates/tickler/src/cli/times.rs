//! Resolving the instants a command was given as shorthands (`now+7d`, `2030-01-01`): the
//! daemon's clock and an entity's zone are asked for only when an argument needs them.

use std::path::Path;

use tickler::{EntityId, Timestamp, Zone};
use tickler_admin::protocol::EntityArg;
use tickler_admin::time_arg::{TimeArg, TimeContext};
use tickler_admin::{Client, Request};

pub struct Times<'a> {
    socket: &'a Path,
    now: Option<Timestamp>,
}

impl Times<'_> {
    pub fn new(socket: &Path) -> Times<'_> {
        Times { socket, now: None }
    }

    /// `arg` as an instant: local times in `zone`, else in the zone of `entity`, else UTC.
    pub async fn at(
        &mut self,
        arg: TimeArg,
        zone: Option<Zone>,
        entity: Option<&EntityId>,
    ) -> anyhow::Result<Timestamp> {
        let now = match arg.needs_now() {
            true => self.now().await?,
            false => Timestamp::from_millis(0).expect("the epoch is an instant"),
        };
        let zone = match (zone, entity) {
            (Some(zone), _) => zone,
            (None, Some(entity)) if arg.needs_zone() => self.zone_of(entity).await?,
            _ => Zone::UTC,
        };
        Ok(arg.resolve(TimeContext { now, zone }))
    }

    pub async fn maybe(
        &mut self,
        arg: Option<TimeArg>,
        zone: Option<Zone>,
        entity: Option<&EntityId>,
    ) -> anyhow::Result<Option<Timestamp>> {
        match arg {
            Some(arg) => Ok(Some(self.at(arg, zone, entity).await?)),
            None => Ok(None),
        }
    }

    /// The daemon's clock (a manual clock is wherever it was moved).
    pub async fn now(&mut self) -> anyhow::Result<Timestamp> {
        if let Some(now) = self.now {
            return Ok(now);
        }
        let reply = Client::connect(self.socket)
            .await?
            .call(Request::ClockNow)
            .await?;
        let now = reply
            .result
            .as_ref()
            .and_then(|result| result["now"].as_str())
            .and_then(|text| Timestamp::parse(text).ok())
            .ok_or_else(|| anyhow::anyhow!("the daemon did not say what time it is"))?;
        self.now = Some(now);
        Ok(now)
    }

    /// The entity's zone; UTC for an entity the daemon does not have (the command itself
    /// then says so).
    async fn zone_of(&self, entity: &EntityId) -> anyhow::Result<Zone> {
        let request = Request::Show(EntityArg {
            entity: entity.clone(),
        });
        let reply = Client::connect(self.socket).await?.call(request).await?;
        Ok(reply
            .result
            .as_ref()
            .and_then(|result| result["zone"].as_str())
            .and_then(|name| Zone::parse(name).ok())
            .unwrap_or(Zone::UTC))
    }
}
