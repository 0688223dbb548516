//! What commands share: the shell, the checkout, the tools and how much to
//! print. `main` makes an [`Invocation`]; commands that drive Docker turn it
//! into a [`Ctx`] once their checks have passed.

use anyhow::Result;
use xshell::Shell;

use crate::docker::compose::Flavour;
use crate::docker::Docker;
use crate::tools;
use crate::ui::Ui;
use crate::workspace::{Location, Workspace};

/// What `main` knows before any check: the shell (in the workspace root),
/// where the checkout and its config are, the verbosity, and whether a
/// command may wait for another command of the checkout (not with
/// `--fail-if-busy`).
pub struct Invocation {
    pub sh: Shell,
    pub loc: Location,
    pub ui: Ui,
    pub wait: bool,
}

/// Whether a command builds images (and so needs a BuildKit client).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Needs {
    Engine,
    Builder,
}

impl Invocation {
    pub fn new(loc: Location, ui: Ui, wait: bool) -> Result<Invocation> {
        let sh = Shell::new()?;
        sh.change_dir(&loc.root);
        Ok(Invocation { sh, loc, ui, wait })
    }

    pub fn workspace(&self) -> Result<Workspace> {
        Workspace::load(&self.loc)
    }

    /// The tools present, the engine up (and a BuildKit client, if
    /// `needs` says so), then the workspace: in this order, so that a
    /// missing tool is reported before anything is written.
    pub fn docker(&self, needs: Needs) -> Result<Ctx<'_>> {
        let remembered = self.loc.root.join("target/dist-test/tools.json");
        let tools = tools::detect_remembered(&self.sh, &remembered)?;
        let docker = Docker::new(&self.sh, tools.docker, self.ui);
        docker.check_engine()?;
        if needs == Needs::Builder {
            docker.clients.builder()?;
        }
        let ws = self.workspace()?;
        Ok(Ctx {
            sh: &self.sh,
            ui: self.ui,
            wait: self.wait,
            docker,
            compose: tools.compose,
            ws,
        })
    }
}

/// The context of everything that touches Docker.
pub struct Ctx<'a> {
    pub sh: &'a Shell,
    pub ui: Ui,
    /// Wait for another command that holds a lock of the checkout (else fail).
    pub wait: bool,
    pub docker: Docker<'a>,
    pub compose: Flavour,
    pub ws: Workspace,
}
