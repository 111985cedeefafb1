//! ECR: the images of a repository, for `on_busy: queue` (`ecr:DescribeImages`).

use aws_sdk_ecr::types::{ImageDetail, TagStatus};
use aws_sdk_ecr::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "ECR";

/// One tagged image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub registry_id: String,
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Milliseconds since the epoch.
    pub pushed_at: i64,
}

#[derive(Debug, Clone)]
pub struct Ecr {
    client: LazyClient<Client>,
}

impl Ecr {
    pub fn new(client: Client) -> Self {
        Ecr {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// The client is built on first use.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Ecr {
            client: LazyClient::deferred(config, Client::new),
        }
    }

    /// Every tagged image of `repository`.
    pub async fn tagged_images(&self, repository: &str) -> Result<Vec<ImageInfo>, AwsError> {
        let mut images = Vec::new();
        let request = self
            .client
            .get()
            .describe_images()
            .repository_name(repository)
            .filter(
                aws_sdk_ecr::types::DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Tagged)
                    .build(),
            );
        let mut next_token: Option<String> = None;
        loop {
            let page = retry::call(SERVICE, "DescribeImages", || {
                request.clone().set_next_token(next_token.clone()).send()
            })
            .await?;
            images.extend(
                page.image_details
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(image_info),
            );
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(token) => next_token = Some(token),
                None => return Ok(images),
            }
        }
    }
}

fn image_info(detail: ImageDetail) -> Option<ImageInfo> {
    Some(ImageInfo {
        registry_id: detail.registry_id?,
        repository: detail.repository_name?,
        digest: detail.image_digest?,
        tags: detail.image_tags.unwrap_or_default(),
        pushed_at: detail
            .image_pushed_at
            .and_then(|t| t.to_millis().ok())
            .unwrap_or_default(),
    })
}
