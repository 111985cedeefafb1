//! Pinning an image into a service's own task definition: the rendered task
//! definition, its tags, the deployment's description and the pipeline's
//! idempotency token. Pure; the backends register and start with them.

use aws_sdk_ecs::types::{ContainerDefinition, Tag, TaskDefinition};

use crate::marker::DeploymentMarker;

/// The image a deployment pins: where it was pushed and by which digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedImage<'a> {
    pub repository: &'a str,
    pub tag: &'a str,
    pub digest: &'a str,
    /// `<registry>/<repository>@<digest>`.
    pub uri: &'a str,
}

/// Tag keys Greenlight writes on the task definitions it registers.
pub const TAG_IMAGE_TAG: &str = "greenlight:image-tag";

pub(crate) const TAG_IMAGE_DIGEST: &str = "greenlight:image-digest";

pub(crate) const TAG_SERVICE: &str = "greenlight:service";

/// Why a task definition could not be rendered. Retrying cannot help: config or
/// task definition must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("task definition {family} has no container named {container:?} (it has: {available}); fix services[].container")]
    NoSuchContainer {
        family: String,
        container: String,
        available: String,
    },
    #[error("container {container:?} of task definition {family} has no port mapping; set services[].container_port")]
    NoPort { family: String, container: String },
}

/// The current task definition with `container`'s image replaced by `image`
/// (digest-pinned); every other field as it was. Also returns the container port
/// (config override, else the container's first port mapping).
pub(crate) fn render_task_definition(
    current: &TaskDefinition,
    container: &str,
    image: &str,
    port_override: Option<u16>,
) -> Result<(TaskDefinition, u16), RenderError> {
    let family = current.family().unwrap_or("?").to_string();
    let containers = current.container_definitions();
    let Some(index) = containers.iter().position(|c| c.name() == Some(container)) else {
        return Err(RenderError::NoSuchContainer {
            family,
            container: container.to_string(),
            available: containers
                .iter()
                .filter_map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let port = match port_override {
        Some(port) => port,
        None => containers[index]
            .port_mappings()
            .iter()
            .find_map(|m| m.container_port())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or(RenderError::NoPort {
                family: family.clone(),
                container: container.to_string(),
            })?,
    };
    let mut rendered = current.clone();
    let mut definitions: Vec<ContainerDefinition> = containers.to_vec();
    definitions[index].image = Some(image.to_string());
    rendered.container_definitions = Some(definitions);
    Ok((rendered, port))
}

/// The existing tags, minus Greenlight's previous ones, plus this push's.
pub(crate) fn render_tags(
    existing: &[Tag],
    service: &str,
    image_tag: &str,
    digest: &str,
) -> Vec<Tag> {
    let ours = [TAG_IMAGE_TAG, TAG_IMAGE_DIGEST, TAG_SERVICE];
    let mut tags: Vec<Tag> = existing
        .iter()
        .filter(|t| !t.key().is_some_and(|k| ours.contains(&k)))
        .cloned()
        .collect();
    for (key, value) in [
        (TAG_SERVICE, service),
        (TAG_IMAGE_TAG, image_tag),
        (TAG_IMAGE_DIGEST, digest),
    ] {
        tags.push(Tag::builder().key(key).value(value).build());
    }
    tags
}

/// The deployment description: readable, with the marker the hook reads back.
pub fn description(service: &str, repository: &str, tag: &str, digest: &str) -> String {
    let marker = DeploymentMarker {
        service: Some(service.to_string()),
        image_tag: Some(tag.to_string()),
        image_digest: Some(digest.to_string()),
    };
    format!(
        "Greenlight: {repository}:{tag} ({}) {}",
        short_digest(digest),
        marker.render()
    )
}

pub fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// The digest `container` runs in `task_definition`, when its image is pinned by
/// digest (as every image Greenlight deploys is).
pub fn serving_digest(task_definition: &TaskDefinition, container: &str) -> Option<String> {
    let image = task_definition
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some(container))?
        .image()?;
    let (_, digest) = image.rsplit_once('@')?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

/// CodePipeline's idempotency token for a push: one execution per service and digest.
pub(crate) fn pipeline_token(service: &str, digest: &str) -> String {
    let clean: String = service
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("greenlight-{clean}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{NetworkMode, PortMapping};

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn task_definition() -> TaskDefinition {
        TaskDefinition::builder()
            .family("web")
            .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7")
            .revision(7)
            .network_mode(NetworkMode::Awsvpc)
            .cpu("256")
            .memory("512")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("sidecar")
                    .image("public.ecr.aws/envoy:1")
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("web")
                    .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/web-app:v1")
                    .port_mappings(PortMapping::builder().container_port(8080).build())
                    .build(),
            )
            .build()
    }

    #[test]
    fn only_the_named_containers_image_changes() {
        let current = task_definition();
        let (rendered, port) =
            render_task_definition(&current, "web", "repo@sha256:ab", None).unwrap();
        assert_eq!(port, 8080);
        assert_eq!(
            rendered.container_definitions()[1].image(),
            Some("repo@sha256:ab")
        );
        assert_eq!(
            rendered.container_definitions()[0],
            current.container_definitions()[0]
        );
        let mut expected = current.clone();
        expected.container_definitions = rendered.container_definitions.clone();
        assert_eq!(rendered, expected, "nothing else changed");
    }

    #[test]
    fn a_missing_container_or_port_names_both_sides() {
        let err = render_task_definition(&task_definition(), "api", "x", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "task definition web has no container named \"api\" (it has: sidecar, web); fix services[].container"
        );
        let err = render_task_definition(&task_definition(), "sidecar", "x", None).unwrap_err();
        assert!(matches!(err, RenderError::NoPort { .. }));
        let (_, port) =
            render_task_definition(&task_definition(), "sidecar", "x", Some(9000)).unwrap();
        assert_eq!(port, 9000);
    }

    #[test]
    fn tags_keep_the_users_and_replace_greenlights() {
        let existing = [
            Tag::builder().key("team").value("platform").build(),
            Tag::builder().key(TAG_IMAGE_TAG).value("v0").build(),
        ];
        let tags = render_tags(&existing, "web", "v1", DIGEST);
        let pairs: Vec<_> = tags
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("team", "platform"),
                (TAG_SERVICE, "web"),
                (TAG_IMAGE_TAG, "v1"),
                (TAG_IMAGE_DIGEST, DIGEST)
            ]
        );
    }

    #[test]
    fn the_serving_digest_is_read_from_a_pinned_image_only() {
        let mut td = task_definition();
        assert_eq!(serving_digest(&td, "web"), None, "tag, not digest");
        let mut containers = td.container_definitions().to_vec();
        containers[1].image = Some(format!(
            "123.dkr.ecr.us-east-1.amazonaws.com/web-app@{DIGEST}"
        ));
        td.container_definitions = Some(containers);
        assert_eq!(serving_digest(&td, "web").as_deref(), Some(DIGEST));
        assert_eq!(serving_digest(&td, "api"), None);
    }

    #[test]
    fn pipeline_tokens_are_per_service_and_digest_and_valid() {
        let token = pipeline_token("web app!", DIGEST);
        assert!(
            token.len() <= 128 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{token}"
        );
        assert_eq!(token, pipeline_token("web app!", DIGEST));
        assert_ne!(token, pipeline_token("web app!", OTHER));
    }
}
