//! SNS: publishing notifications (`sns:Publish`).

use std::future::Future;

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::{retry, AwsError, LazyClient};

const SERVICE: &str = "SNS";

/// One SNS publish, already rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub topic_arn: String,
    pub subject: String,
    /// With `MessageStructure=json`: a JSON object of protocol → message (`default` required).
    pub message: String,
    pub attributes: Vec<(String, String)>,
}

pub trait Publisher: Send + Sync {
    /// Publishes and returns the message id.
    fn publish(
        &self,
        publication: &Publication,
    ) -> impl Future<Output = Result<String, AwsError>> + Send;
}

#[derive(Debug, Clone)]
pub struct Sns {
    client: LazyClient<Client>,
}

impl Sns {
    pub fn new(client: Client) -> Self {
        Sns {
            client: LazyClient::ready(client, Client::new),
        }
    }

    /// Built at init: for functions that notify on every invocation.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Sns::new(Client::new(config))
    }

    /// Built at the first publish: for alarm-rollback, whose usual invocation (an alarm
    /// with nothing in flight) publishes nothing.
    pub fn deferred(config: &aws_config::SdkConfig) -> Self {
        Sns {
            client: LazyClient::deferred(config, Client::new),
        }
    }
}

impl Publisher for Sns {
    async fn publish(&self, publication: &Publication) -> Result<String, AwsError> {
        let mut request = self
            .client
            .get()
            .publish()
            .topic_arn(&publication.topic_arn)
            .subject(&publication.subject)
            .message(&publication.message)
            .message_structure("json");
        for (name, value) in &publication.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| {
                    AwsError::unexpected(SERVICE, "Publish", format!("attribute {name}: {e}"))
                })?;
            request = request.message_attributes(name, attribute);
        }
        let output = retry::call(SERVICE, "Publish", || request.clone().send()).await?;
        Ok(output.message_id.unwrap_or_default())
    }
}
