use serde_json::json;

use super::state::traffic_steps;

#[test]
fn traffic_steps_follow_the_strategy() {
    assert_eq!(traffic_steps("BLUE_GREEN", &json!({})), [(100.0, 0.0)]);
    assert_eq!(
        traffic_steps(
            "CANARY",
            &json!({"canaryConfiguration": {"canaryPercent": 20, "canaryBakeTimeInMinutes": 2}})
        ),
        [(20.0, 2.0), (100.0, 0.0)]
    );
    assert_eq!(
        traffic_steps(
            "LINEAR",
            &json!({"linearConfiguration": {"stepPercent": 25, "stepBakeTimeInMinutes": 1}})
        ),
        [(25.0, 1.0), (50.0, 1.0), (75.0, 1.0), (100.0, 0.0)]
    );
}
