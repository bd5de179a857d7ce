//! `netreach assets DIR` (hidden): man pages and shell completions generated from the clap
//! definition itself, so they never drift from the options. The Debian package ships them
//! (scripts/deb runs this on the release binary before cargo-deb).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use crate::{Cli, Failure};

#[derive(Args)]
pub(crate) struct AssetsArgs {
    /// Where to write man/*.1 and completions/{netreach.bash,_netreach,netreach.fish}.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| Failure::from(format!("writing {}: {e}", path.display())))
}

/// netreach.1 for the tool, netreach-SUBCOMMAND.1 for each visible subcommand (named by
/// clap's display name, set by `Command::build`).
fn man_pages(command: &Command, dir: &Path) -> Result<(), Failure> {
    let name = command.get_display_name().unwrap_or(command.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page).map_err(|e| Failure::from(e.to_string()))?;
    write(&dir.join(format!("{name}.1")), &page)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        man_pages(sub, dir)?;
    }
    Ok(())
}

pub(crate) fn run(args: &AssetsArgs) -> Result<ExitCode, Failure> {
    let (man, completions) = (args.dir.join("man"), args.dir.join("completions"));
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).map_err(|e| Failure::from(format!("creating {}: {e}", dir.display())))?;
    }
    let mut command = Cli::command();
    command.build();
    man_pages(&command, &man)?;
    for (shell, file) in [(Shell::Bash, "netreach.bash"), (Shell::Zsh, "_netreach"), (Shell::Fish, "netreach.fish")] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, "netreach", &mut script);
        write(&completions.join(file), &script)?;
    }
    Ok(ExitCode::SUCCESS)
}
