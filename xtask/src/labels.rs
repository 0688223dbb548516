//! Every label the harness puts on what it makes on the engine, or reads
//! from what compose and a swarm stack make: one list, so that what `clean`,
//! `down --all` and a build's cleanup look for is spelled once.

/// Ties every container, network, volume and image to the checkout that
/// made it; its value is the checkout id.
pub const CHECKOUT_LABEL: &str = "org.libertem.dist-test.checkout";

/// On a project image, a numba cache volume and a cluster's objects: the
/// folder of the checkout that made it.
pub const ROOT_LABEL: &str = "org.libertem.dist-test.root";

/// Beside [`ROOT_LABEL`]: the machine that folder is on.
pub const HOST_LABEL: &str = "org.libertem.dist-test.host";

/// What checkouts share: `base`, `runtime` or `uv-cache`.
pub const SHARED_LABEL: &str = "org.libertem.dist-test.shared";

/// On a project image: the base image it was built on.
pub const BASE_LABEL: &str = "org.libertem.dist-test.base";

/// On a base image built from Debian's packages: the suite.
pub const BASE_SUITE_LABEL: &str = "org.libertem.dist-test.checkout.base";

/// Which project build files (and dependency image) an image's editable
/// install was made from.
pub const PROJECT_KEY_LABEL: &str = "org.libertem.dist-test.project-key";

/// The project an image was built for, by its tag (which stays on every
/// image of that project, the replaced ones too).
pub const PROJECT_LABEL: &str = "org.libertem.dist-test.project";

/// On a project image: the runtime volume it runs with.
pub const IMAGE_RUNTIME_LABEL: &str = "org.libertem.dist-test.runtime-volume";

/// Which checkout a runtime volume belonged to, when each had its own
/// (removed on the way).
pub const RUNTIME_LABEL: &str = "org.libertem.dist-test.runtime";

/// Which checkout a numba cache volume belongs to (not the cluster label:
/// removing a cluster keeps its cache).
pub const NUMBA_CACHE_LABEL: &str = "org.libertem.dist-test.numba-cache";

/// Every one-shot helper container (a copy into a volume, the test data
/// generator) carries this label with its checkout id, so that a command
/// that takes over from a killed holder can stop what it left running.
pub const HELPER_LABEL: &str = "org.libertem.dist-test.helper";

/// What compose puts on everything of a project.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// What a swarm stack's services and networks carry.
pub const STACK_LABEL: &str = "com.docker.stack.namespace";

/// What Docker puts on a swarm service's tasks: the service's name.
pub const SERVICE_NAME_LABEL: &str = "com.docker.swarm.service.name";
