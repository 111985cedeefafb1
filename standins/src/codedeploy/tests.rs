use super::state::{base36, parse_config, Shift};

#[test]
fn deployment_configs_parse_into_shifts() {
    assert_eq!(
        parse_config("CodeDeployDefault.ECSAllAtOnce"),
        Shift::AllAtOnce
    );
    assert_eq!(
        parse_config("CodeDeployDefault.ECSCanary10Percent5Minutes"),
        Shift::Canary {
            percent: 10,
            minutes: 5
        }
    );
    assert_eq!(
        parse_config("CodeDeployDefault.ECSLinear10PercentEvery1Minutes"),
        Shift::Linear {
            percent: 10,
            minutes: 1
        }
    );
}

#[test]
fn ids_look_like_codedeploy_ids() {
    let id = format!("d-{}", base36(123_456_789, 9));
    assert_eq!(id.len(), 11);
    assert!(id[2..]
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
}
