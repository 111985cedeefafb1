#[test]
fn a_parameter_arn_names_both_spellings() {
    assert_eq!(
        super::store::parameter_names("arn:aws:ssm:us-east-1:1:parameter/greenlight/config"),
        ["/greenlight/config", "greenlight/config"]
    );
    assert_eq!(
        super::store::parameter_names("/greenlight/config"),
        ["/greenlight/config"]
    );
}

use super::*;

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

#[test]
fn exactly_one_source_is_taken_and_named() {
    assert_eq!(
        ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_SSM, "/greenlight/config")])).unwrap(),
        ConfigSource::Ssm("/greenlight/config".into())
    );
    assert_eq!(
        ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_S3, "s3://cfg/greenlight.yaml")])).unwrap(),
        ConfigSource::S3 {
            bucket: "cfg".into(),
            key: "greenlight.yaml".into()
        }
    );
    let both = ConfigSource::from_lookup(lookup(&[
        (ENV_CONFIG, "services: []"),
        (ENV_CONFIG_S3, "s3://a/b"),
    ]))
    .unwrap_err();
    assert!(
        both.to_string()
            .contains("GREENLIGHT_CONFIG, GREENLIGHT_CONFIG_S3"),
        "{both}"
    );
    let bad =
        ConfigSource::from_lookup(lookup(&[(ENV_CONFIG_S3, "s3://bucket-only")])).unwrap_err();
    assert!(bad.to_string().contains("GREENLIGHT_CONFIG_S3"), "{bad}");
    assert!(ConfigSource::from_lookup(lookup(&[]))
        .unwrap_err()
        .to_string()
        .contains(ENV_CONFIG_SSM));
}

#[test]
fn the_cli_takes_ssm_s3_or_a_path() {
    assert_eq!(
        ConfigSource::from_argument("ssm:/a/b").unwrap(),
        ConfigSource::Ssm("/a/b".into())
    );
    assert!(matches!(
        ConfigSource::from_argument("s3://b/k.yaml").unwrap(),
        ConfigSource::S3 { .. }
    ));
    assert_eq!(
        ConfigSource::from_argument("greenlight.yaml").unwrap(),
        ConfigSource::File("greenlight.yaml".into())
    );
}
