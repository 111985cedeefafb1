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
