//! The deployment paths the rehearsal stands up, and the stand-in engine of each.

use greenlight_standins::codedeploy::CodeDeployStandIn;
use greenlight_standins::ecs::EcsStandIn;
use serde::Serialize;

/// Which deployment path(s) to rehearse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathChoice {
    Codedeploy,
    EcsNative,
    Both,
}

/// One deployment path, as the stack runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployPath {
    Codedeploy,
    EcsNative,
}

/// The engine running deployments, read alike on both paths.
pub(crate) enum Engine {
    CodeDeploy(CodeDeployStandIn),
    Ecs(EcsStandIn),
}

impl DeployPath {
    pub(crate) fn label(self) -> &'static str {
        match self {
            DeployPath::Codedeploy => "CodeDeploy",
            DeployPath::EcsNative => "ECS-native",
        }
    }

    pub(crate) fn slug(self) -> &'static str {
        match self {
            DeployPath::Codedeploy => "codedeploy",
            DeployPath::EcsNative => "ecs-native",
        }
    }

    /// Hook notifications a healthy deployment sends: CodeDeploy's AfterAllowTraffic
    /// hook announces its analysis as such (one plain hook_passed, for
    /// AfterAllowTestTraffic); ECS-native's POST_TEST and POST_PRODUCTION stages both
    /// pass as hooks, the analysis at the first production step apart.
    pub(crate) fn hooks_passed_when_healthy(self) -> usize {
        match self {
            DeployPath::Codedeploy => 1,
            DeployPath::EcsNative => 2,
        }
    }

    /// Whether `greenlight status` shows the deployment's hooks: ECS lists each hook
    /// once, with its latest status; CodeDeploy lists each hooked lifecycle event, the
    /// smoke-test one passed by now.
    pub(crate) fn shows_hooks(self, hooks: &[greenlight::deploy::HookResult]) -> bool {
        match self {
            DeployPath::Codedeploy => hooks.iter().any(|h| h.status == "Succeeded"),
            DeployPath::EcsNative => !hooks.is_empty(),
        }
    }

    /// Whether the engine pauses for approval (ECS's PAUSE hook; CodeDeploy has none).
    pub(crate) fn pauses(self) -> bool {
        self == DeployPath::EcsNative
    }
}

impl Engine {
    /// Succeeded, Failed, Stopped, or the engine's in-flight status.
    pub(crate) fn status(&self, id: &str) -> Option<String> {
        match self {
            Engine::CodeDeploy(c) => c.status(id),
            Engine::Ecs(e) => e.outcome(id),
        }
    }

    pub(crate) fn deployment_ids(&self) -> Vec<String> {
        match self {
            Engine::CodeDeploy(c) => c.deployment_ids(),
            Engine::Ecs(e) => e.deployment_arns(),
        }
    }
}
