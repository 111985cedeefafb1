//! The deployment marker: deploy-on-push writes the image tag and digest into the
//! CodeDeploy deployment description; the lifecycle hook reads them back for smoke
//! placeholders (`${image_tag}`, `${image_digest}`) without another AWS call.
//! Format: `... [greenlight service=web tag=v1.4.0 digest=sha256:…]`.

/// What a Greenlight-started deployment says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeploymentMarker {
    pub service: Option<String>,
    pub image_tag: Option<String>,
    pub image_digest: Option<String>,
}

impl DeploymentMarker {
    /// The bracketed marker appended to a deployment description.
    pub fn render(&self) -> String {
        let mut parts = vec!["greenlight".to_string()];
        for (key, value) in [
            ("service", &self.service),
            ("tag", &self.image_tag),
            ("digest", &self.image_digest),
        ] {
            if let Some(value) = value {
                parts.push(format!("{key}={value}"));
            }
        }
        format!("[{}]", parts.join(" "))
    }

    /// Reads the marker from a description; `None` when the deployment was not started by Greenlight.
    pub fn parse(description: &str) -> Option<DeploymentMarker> {
        let start = description.rfind("[greenlight")?;
        let end = start + description[start..].find(']')?;
        let mut marker = DeploymentMarker::default();
        for part in description[start + 1..end].split_whitespace().skip(1) {
            match part.split_once('=') {
                Some(("service", v)) => marker.service = Some(v.to_string()),
                Some(("tag", v)) => marker.image_tag = Some(v.to_string()),
                Some(("digest", v)) => marker.image_digest = Some(v.to_string()),
                _ => {}
            }
        }
        Some(marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_inside_a_description() {
        let marker = DeploymentMarker {
            service: Some("web".into()),
            image_tag: Some("v1.4.0".into()),
            image_digest: Some("sha256:abc".into()),
        };
        let description = format!("Deploy web-app:v1.4.0 {}", marker.render());
        assert_eq!(DeploymentMarker::parse(&description), Some(marker));
        assert_eq!(DeploymentMarker::parse("deployed by hand"), None);
    }
}
