//! `tickler dashboard`: the web dashboard's login tokens, read from (or rotated in) the data
//! directory. Works while the daemon runs: it reads the token files at each login and request.

use std::path::Path;

use serde_json::json;
use tickler::dashboard_tokens::TokenFiles;
use tickler_admin::dashboard::Clearance;

use crate::DashboardCmd;

pub fn run(data_dir: &Path, cmd: DashboardCmd, json: bool) -> anyhow::Result<()> {
    if !data_dir.is_dir() {
        anyhow::bail!(
            "the data directory {} does not exist: start the daemon once (`tickler serve`) to \
             create it, or point --config at the right configuration",
            data_dir.display()
        );
    }
    let clearance = |operator: bool| {
        if operator {
            Clearance::Operator
        } else {
            Clearance::ReadOnly
        }
    };
    let (clearance, token) = match cmd {
        DashboardCmd::Token { operator } => {
            TokenFiles::ensure(data_dir)?;
            let clearance = clearance(operator);
            (clearance, TokenFiles::read(data_dir, clearance)?)
        }
        DashboardCmd::RotateToken { operator } => {
            let clearance = clearance(operator);
            (clearance, TokenFiles::rotate(data_dir, clearance)?)
        }
    };
    if json {
        out!(
            "{}",
            json!({ "clearance": clearance.name(), "token": token })
        );
    } else {
        out!("{token}");
    }
    Ok(())
}
