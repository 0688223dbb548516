//! What commands share: the shell, the checkout, the tools and how much to
//! print. `main` makes an [`Invocation`]; commands that drive Docker turn it
//! into a [`Ctx`] once their checks have passed.

use anyhow::Result;
use xshell::Shell;

use crate::tools::{self, Tools};
use crate::ui::Ui;
use crate::workspace::{Location, Workspace};

/// What `main` knows before any check: the shell (in the workspace root),
/// where the checkout and its config are, and the verbosity.
pub struct Invocation {
    pub sh: Shell,
    pub loc: Location,
    pub ui: Ui,
}

/// Whether a command builds images (and so needs a BuildKit client).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Needs {
    Engine,
    Builder,
}

impl Invocation {
    pub fn new(loc: Location, ui: Ui) -> Result<Invocation> {
        let sh = Shell::new()?;
        sh.change_dir(&loc.root);
        Ok(Invocation { sh, loc, ui })
    }

    pub fn workspace(&self) -> Result<Workspace> {
        Workspace::load(&self.loc)
    }

    /// The tools present, the engine up (and a BuildKit client, if
    /// `needs` says so), then the workspace: in this order, so that a
    /// missing tool is reported before anything is written.
    pub fn docker(&self, needs: Needs) -> Result<Ctx<'_>> {
        let tools = tools::detect(&self.sh)?;
        tools.docker.check_engine(&self.sh)?;
        if needs == Needs::Builder {
            tools.docker.builder()?;
        }
        let ws = self.workspace()?;
        Ok(Ctx {
            sh: &self.sh,
            ui: self.ui,
            tools,
            ws,
        })
    }
}

/// The context of everything that touches Docker.
pub struct Ctx<'a> {
    pub sh: &'a Shell,
    pub ui: Ui,
    pub tools: Tools,
    pub ws: Workspace,
}
