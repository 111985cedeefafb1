//! SDK configuration and fixtures against the emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// SDK configuration pointing every client at `endpoint`, with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(crate::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .load()
        .await
}

/// Two subnet ids of the emulator's default VPC (EC2 DescribeSubnets over the Query
/// protocol; avoids compiling the large EC2 SDK crate for one fixture).
pub async fn default_subnets(endpoint: &str) -> Vec<String> {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("Action=DescribeSubnets&Version=2016-11-15")
        .send()
        .await
        .expect("DescribeSubnets")
        .text()
        .await
        .expect("DescribeSubnets body");
    let mut subnets: Vec<String> = response
        .split("<subnetId>")
        .skip(1)
        .filter_map(|s| s.split("</subnetId>").next())
        .map(str::to_string)
        .collect();
    subnets.dedup();
    subnets.truncate(2);
    assert_eq!(
        subnets.len(),
        2,
        "emulator has no default subnets: {response}"
    );
    subnets
}
