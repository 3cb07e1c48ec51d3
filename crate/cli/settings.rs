//! `lens2logit settings`: every setting's default and range, as the page builds its controls
//! from them (`--json`) and as the README's table lists them (`--markdown`).

use clap::Args;

use lens2logit::spec::settings::{describe, markdown};

#[derive(Args)]
pub struct SettingsArgs {
    /// The description the page reads (JSON), instead of the table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: SettingsArgs) -> Result<(), String> {
    match args.json {
        true => println!("{}", describe()),
        false => print!("{}", markdown()),
    }
    Ok(())
}
