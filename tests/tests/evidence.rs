//! Green's evidence through the real SDK against the emulator: its tasks found
//! among the service's (by the image digest they run), the stopped one first with
//! its reason, its `awslogs` lines read from the tail, the error line kept, a
//! planted access key and a check secret's value masked, and the calls bounded.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
use greenlight::evidence::{Capture, Green, Redactor, MAX_TASKS};
use greenlight_tests::aws::sdk_config;
use greenlight_tests::{moto, unique};

const GREEN: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BLUE: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
const PLANTED_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "pa55-w0rd-for-the-db";

/// Registers a task definition for `digest` logging through `driver`, runs
/// `count` tasks of it; returns their ids.
async fn run(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    family: &str,
    digest: &str,
    driver: LogDriver,
    count: i32,
) -> Vec<String> {
    let log = LogConfiguration::builder()
        .log_driver(driver)
        .options("awslogs-group", format!("/ecs/{family}"))
        .options("awslogs-stream-prefix", "app")
        .build()
        .unwrap();
    let td = ecs
        .register_task_definition()
        .family(family)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(format!(
                    "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{digest}"
                ))
                .memory(128)
                .log_configuration(log)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .task_definition
        .unwrap();
    let tasks = ecs
        .run_task()
        .cluster(cluster)
        .task_definition(td.task_definition_arn().unwrap())
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .count(count)
        .started_by("ecs-svc/1")
        .send()
        .await
        .unwrap();
    tasks
        .tasks()
        .iter()
        .map(|t| {
            t.task_arn()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

async fn write_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: &[(i64, String)],
) {
    let _ = logs.create_log_group().log_group_name(group).send().await;
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let events: Vec<InputLogEvent> = lines
        .iter()
        .map(|(at, m)| {
            InputLogEvent::builder()
                .timestamp(*at)
                .message(m)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn greens_stopped_task_its_reason_and_its_masked_error_line_are_captured() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let cluster = unique("evidence");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let family = unique("web");
    let blue = run(
        &ecs,
        &cluster,
        &format!("{family}-blue"),
        BLUE,
        LogDriver::Awslogs,
        2,
    )
    .await;
    let green = run(&ecs, &cluster, &family, GREEN, LogDriver::Awslogs, 2).await;
    ecs.stop_task()
        .cluster(&cluster)
        .task(&green[0])
        .reason("Essential container in task exited")
        .send()
        .await
        .unwrap();
    let now = now_ms();
    let group = format!("/ecs/{family}");
    let mut lines: Vec<(i64, String)> = (0..150)
        .map(|i| (now - 60_000 + i, format!("GET /items/{i} 200")))
        .collect();
    lines.push((
        now - 500,
        format!("FATAL: database login refused for key {PLANTED_KEY} password {SECRET}"),
    ));
    write_lines(&logs, &group, &format!("app/web/{}", green[0]), &lines).await;
    write_lines(
        &logs,
        &group,
        &format!("app/web/{}", green[1]),
        &[(now - 100, "serving".into())],
    )
    .await;

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let name = unique("db");
    secrets
        .create_secret()
        .name(&name)
        .secret_string(SECRET)
        .send()
        .await
        .unwrap();

    let capture = Capture::from_conf(&sdk);
    let evidence = capture
        .green(
            &Green {
                cluster: &cluster,
                service: "web",
                container: "web",
                image_digest: GREEN,
                at_ms: now,
            },
            Redactor::new(&[]),
            &[format!("secret:{name}")],
        )
        .await;

    let ids: Vec<&str> = evidence.tasks.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        2,
        "green's two tasks, not blue's: {ids:?} (blue {blue:?})"
    );
    assert_eq!(ids[0], green[0], "the stopped task comes first");
    assert_eq!(
        evidence.tasks[0].stopped_reason.as_deref(),
        Some("Essential container in task exited")
    );
    assert_eq!(evidence.log_group.as_deref(), Some(group.as_str()));
    let cause = evidence.likely_cause().unwrap();
    assert!(
        cause.starts_with("FATAL: database login refused"),
        "{cause}"
    );
    let all = serde_json::to_string(&evidence).unwrap();
    assert!(!all.contains(PLANTED_KEY), "the planted key leaked: {all}");
    assert!(!all.contains(SECRET), "the check secret leaked: {all}");
    assert!(evidence.logs.len() <= greenlight::evidence::MAX_LINES);
    assert!(
        evidence.logs.iter().any(|l| l.message == "serving"),
        "both tasks' lines"
    );
    assert!(evidence.gaps.is_empty(), "{:?}", evidence.gaps);
    // ListTasks ×2, DescribeTasks, DescribeTaskDefinition, GetLogEvents per task.
    assert_eq!(evidence.calls, 4 + 2);
    assert!(evidence.calls as usize <= 4 + MAX_TASKS);
}

#[tokio::test]
async fn logs_through_another_driver_are_skipped_and_said() {
    let sdk = sdk_config(&moto().endpoint).await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let cluster = unique("evidence");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let family = unique("web");
    run(&ecs, &cluster, &family, GREEN, LogDriver::Awsfirelens, 1).await;
    let evidence = Capture::from_conf(&sdk)
        .green(
            &Green {
                cluster: &cluster,
                service: "web",
                container: "web",
                image_digest: GREEN,
                at_ms: now_ms(),
            },
            Redactor::new(&[]),
            &[],
        )
        .await;
    assert_eq!(evidence.tasks.len(), 1);
    assert!(evidence.logs.is_empty());
    assert!(
        evidence
            .gaps
            .iter()
            .any(|g| g.contains("logs through awsfirelens")),
        "{:?}",
        evidence.gaps
    );
    assert_eq!(evidence.calls, 4, "no log read");
}
