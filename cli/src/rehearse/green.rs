//! Green's tasks in the rehearsal, as the image's behaviour says. When an engine
//! installs green, one task starts in the ECS stand-in and writes its lines to the
//! emulator's CloudWatch Logs (`/ecs/<service>`, stream `app/web/<task id>`, as
//! `awslogs` names them). A broken image's container logs a fatal line, with an AWS
//! access key planted before it that must never leave the account unmasked, and
//! exits 1. A degrading or slow image keeps running and logs the errors its users
//! meet. When the engine rolls green back, its running tasks are stopped (SIGTERM:
//! exit 143).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::SdkConfig;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use greenlight_standins::ecs::{EcsStandIn, Stopped};
use greenlight_standins::lb::Behavior;

/// The line a broken image dies with: scenarios look for it in what people get.
pub(crate) const FATAL_LINE: &str = "FATAL: DATABASE_URL is not set; cannot start (exit 1)";
/// The broken image's exit code.
pub(crate) const BROKEN_EXIT: i32 = 1;
/// Planted in the broken image's log: it must be masked everywhere.
pub(crate) const PLANTED_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

/// Plays green's tasks for the engines.
pub(crate) struct GreenTasks {
    /// The ECS stand-in the functions read tasks from (set once it exists).
    pub ecs: Arc<OnceLock<EcsStandIn>>,
    pub sdk: SdkConfig,
    pub behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
    /// Green's image per service, while installed.
    installed: Mutex<HashMap<String, String>>,
}

impl GreenTasks {
    pub(crate) fn new(
        sdk: SdkConfig,
        behaviors: Arc<Mutex<HashMap<String, Behavior>>>,
    ) -> GreenTasks {
        GreenTasks {
            ecs: Arc::default(),
            sdk,
            behaviors,
            installed: Mutex::default(),
        }
    }

    /// The Greenlight service an engine's group or service name belongs to.
    fn service(group: &str) -> &'static str {
        if group.contains("staging") {
            "web-staging"
        } else {
            "web"
        }
    }

    /// Green (`image`) was installed for `group`: its task starts and logs.
    pub(crate) fn installed(self: &Arc<Self>, group: &str, image: &str) {
        let service = Self::service(group);
        self.installed
            .lock()
            .unwrap()
            .insert(service.into(), image.into());
        let this = Arc::clone(self);
        let image = image.to_string();
        tokio::spawn(async move { this.start(service, &image).await });
    }

    /// Green was rolled back for `group`: its running tasks are stopped.
    pub(crate) fn rolled_back(&self, group: &str) {
        let service = Self::service(group);
        let (Some(ecs), Some(image)) = (
            self.ecs.get(),
            self.installed.lock().unwrap().remove(service),
        ) else {
            return;
        };
        ecs.stop_tasks(
            service,
            &image,
            None,
            &Stopped {
                at: now_seconds(),
                code: "ServiceSchedulerInitiated".into(),
                reason: "Scaling activity initiated by the deployment's rollback".into(),
                exit_code: 143,
            },
        );
    }

    async fn start(&self, service: &str, image: &str) {
        let Some(ecs) = self.ecs.get() else { return };
        let digest = image.rsplit('@').next().unwrap_or(image);
        let behavior = self.behaviors.lock().unwrap().get(digest).cloned();
        // Green's task definition: the revision deploy-on-push just registered.
        let task_definition = aws_sdk_ecs::Client::new(&self.sdk)
            .describe_task_definition()
            .task_definition(service)
            .send()
            .await
            .ok()
            .and_then(|o| o.task_definition)
            .and_then(|t| t.task_definition_arn)
            .unwrap_or_default();
        let arn = ecs.start_task("prod", service, &task_definition, "web", image);
        let id = arn.rsplit('/').next().unwrap_or_default().to_string();
        let version = behavior
            .as_ref()
            .map(|b| b.version().to_string())
            .unwrap_or_default();
        let mut lines = vec![
            format!("starting web {version}"),
            "listening on :8080".to_string(),
        ];
        match &behavior {
            Some(Behavior::Broken { .. }) => {
                lines = vec![
                    format!("starting web {version}"),
                    format!("using AWS credentials {PLANTED_KEY} from the environment"),
                    FATAL_LINE.to_string(),
                ];
            }
            Some(Behavior::Degrading { .. }) => {
                lines.push("ERROR: GET /orders -> 500: pricing client panicked: index out of range".into())
            }
            Some(Behavior::Slow { .. }) => lines.push(
                "ERROR: GET /orders took 52 ms, over its 10 ms budget: the cache is disabled in this build".into(),
            ),
            _ => lines.push("GET /health 200".into()),
        }
        self.write(service, &id, &lines).await;
        if matches!(behavior, Some(Behavior::Broken { .. })) {
            ecs.stop_tasks(
                service,
                image,
                Some(&arn),
                &Stopped {
                    at: now_seconds(),
                    code: "EssentialContainerExited".into(),
                    reason: "Essential container in task exited".into(),
                    exit_code: BROKEN_EXIT,
                },
            );
        }
    }

    async fn write(&self, service: &str, task_id: &str, lines: &[String]) {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.sdk);
        let group = format!("/ecs/{service}");
        let stream = format!("app/web/{task_id}");
        let _ = logs.create_log_group().log_group_name(&group).send().await;
        let _ = logs
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .send()
            .await;
        let at = (now_seconds() * 1000.0) as i64;
        let events: Vec<InputLogEvent> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| {
                InputLogEvent::builder()
                    .timestamp(at + i as i64)
                    .message(line)
                    .build()
                    .ok()
            })
            .collect();
        let _ = logs
            .put_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .set_log_events(Some(events))
            .send()
            .await;
    }
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
