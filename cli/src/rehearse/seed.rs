//! The emulator's and stand-ins' resources, seeded through their own APIs: the
//! ECS service, the CodeDeploy group, the load balancer, CloudWatch's Query protocol.

use aws_config::SdkConfig;
use serde_json::{json, Value};

use crate::rehearse::fixture::{ACCOUNT, ALARM, ECS_HOOK};

/// The load balancer's ELBv2 resources in the emulator.
pub(crate) type ElbSeed = greenlight_standins::elb_fixture::BlueGreenElb;

/// A load balancer (in a VPC with two subnets, as ELBv2 requires), target groups
/// `<name>-blue` and `<name>-green`, listeners 80 and 8080 and a forward rule on each.
pub(crate) async fn seed_load_balancer(
    sdk: &SdkConfig,
    moto: &str,
    name: &str,
) -> Result<ElbSeed, String> {
    let vpc = query_call(
        moto,
        "ec2",
        "2016-11-15",
        &[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")],
    )
    .await
    .map(|xml| xml_value(&xml, "vpcId"))?;
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let xml = query_call(
            moto,
            "ec2",
            "2016-11-15",
            &[
                ("Action", "CreateSubnet"),
                ("VpcId", &vpc),
                ("CidrBlock", cidr),
                ("AvailabilityZone", zone),
            ],
        )
        .await?;
        subnets.push(xml_value(&xml, "subnetId"));
    }
    greenlight_standins::elb_fixture::create(
        &aws_sdk_elasticloadbalancingv2::Client::new(sdk),
        name,
        aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal,
        subnets,
    )
    .await
}

/// The ECS-native service's deployment configuration: a 10% canary for 5 minutes,
/// Greenlight's hook where smoke checks belong, and a PAUSE hook when asked.
pub(crate) fn ecs_deployment_configuration(hook_arn: &str, pause_at: Option<&str>) -> Value {
    let mut hooks = vec![
        json!({"targetType": "AWS_LAMBDA", "hookTargetArn": hook_arn,
        "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/greenlight-ecs-hook-invoke"),
        "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]}),
    ];
    if let Some(stage) = pause_at {
        hooks.push(json!({"targetType": "PAUSE", "lifecycleStages": [stage],
            "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}));
    }
    json!({"strategy": "CANARY", "bakeTimeInMinutes": 0,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
        "lifecycleHooks": hooks})
}

/// A CloudWatch call over the Query protocol. The Rust SDK's CloudWatch client speaks
/// the newer RPCv2 CBOR protocol, which the moto emulator (5.2.5) answers with 404;
/// the Query protocol is what moto implements.
pub(crate) async fn cloudwatch(endpoint: &str, params: &[(&str, &str)]) -> Result<(), String> {
    query_call(endpoint, "monitoring", "2010-08-01", params)
        .await
        .map(|_| ())
}

/// A call over the AWS Query protocol (form-encoded POST, XML answer) to the emulator.
pub(crate) async fn query_call(
    endpoint: &str,
    signing_name: &str,
    version: &str,
    params: &[(&str, &str)],
) -> Result<String, String> {
    let mut body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    body.push(format!("Version={version}"));
    let body = body.join("&");
    let host = endpoint.trim_start_matches("http://");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{signing_name}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = reqwest_like::Client::plain().raw(host, request).await?;
    if status == 200 {
        Ok(answer)
    } else {
        Err(format!(
            "{signing_name} {:?}: HTTP {status}: {answer}",
            params.first()
        ))
    }
}

pub(crate) fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A tiny HTTP client for the stand-ins (plain HTTP/1.1 on loopback).
pub(crate) mod reqwest_like {
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    pub struct Client {
        endpoint: String,
        /// The JSON 1.1 target prefix of the service called.
        target: &'static str,
    }

    impl Client {
        /// A CodeDeploy client.
        pub fn new(endpoint: &str) -> Client {
            Client {
                endpoint: endpoint.trim_start_matches("http://").to_string(),
                target: "CodeDeploy_20141006",
            }
        }

        /// An ECS client.
        pub fn ecs(endpoint: &str) -> Client {
            Client {
                endpoint: endpoint.trim_start_matches("http://").to_string(),
                target: "AmazonEC2ContainerServiceV20141113",
            }
        }

        pub fn plain() -> Client {
            Client {
                endpoint: String::new(),
                target: "",
            }
        }

        pub async fn raw(&self, host: &str, request: String) -> Result<(u16, String), String> {
            self.send(host, request).await
        }

        async fn send(&self, host: &str, request: String) -> Result<(u16, String), String> {
            let mut stream = tokio::net::TcpStream::connect(host)
                .await
                .map_err(|e| e.to_string())?;
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut response = String::new();
            stream
                .read_to_string(&mut response)
                .await
                .map_err(|e| e.to_string())?;
            let status = response
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let body = response
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            Ok((status, body))
        }

        /// A JSON 1.1 call.
        pub async fn call(&self, operation: &str, input: Value) -> Result<Value, String> {
            let body = input.to_string();
            let request = format!(
                "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: {}.{operation}\r\nContent-Type: application/x-amz-json-1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                self.endpoint,
                self.target,
                body.len()
            );
            let (status, body) = self.send(&self.endpoint, request).await?;
            if status != 200 {
                return Err(format!("{operation}: HTTP {status}: {body}"));
            }
            serde_json::from_str(&body).map_err(|e| e.to_string())
        }

        pub async fn get(&self, url: &str) -> Result<(u16, String), String> {
            let rest = url.trim_start_matches("http://");
            let (host, path) = rest
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((rest, "/".into()));
            let request =
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            self.send(host, request).await
        }
    }
}

/// Points a listener rule at one of the pair with a weighted forward (all to `to`).
pub(crate) async fn forward_rule(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    rule: &str,
    pair: &[String; 2],
    to: &str,
) -> Result<(), String> {
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ForwardActionConfig, TargetGroupTuple,
    };
    let mut forward = ForwardActionConfig::builder();
    for tg in pair {
        forward = forward.target_groups(
            TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(if tg == to { 100 } else { 0 })
                .build(),
        );
    }
    let action = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(forward.build())
        .build();
    elb.modify_rule()
        .rule_arn(rule)
        .actions(action)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("ModifyRule: {e:?}"))
}

/// The text of the first `<name>` element of an XML answer.
pub(crate) fn xml_value(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    xml.split_once(&open)
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(value, _)| value.to_string())
        .unwrap_or_default()
}

/// The ECS-native service: cluster prod, service web behind the load balancer's
/// rules, a canary of 10% for 5 (compressed) minutes, Greenlight's hook at
/// POST_TEST_TRAFFIC_SHIFT and POST_PRODUCTION_TRAFFIC_SHIFT, and optionally a
/// PAUSE hook at `pause_at`. Through the ECS stand-in, as a user's template would.
pub(crate) async fn seed_ecs_native(
    endpoint: &str,
    image: &str,
    elb: &ElbSeed,
    service: &str,
) -> Result<(), String> {
    let client = reqwest_like::Client::ecs(endpoint);
    let hook_arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{ECS_HOOK}");
    {
        client
            .call("CreateCluster", json!({"clusterName": "prod"}))
            .await?;
        let registered = client
            .call(
                "RegisterTaskDefinition",
                json!({"family": service, "containerDefinitions": [{"name": "web", "image": image, "memory": 256,
                    "portMappings": [{"containerPort": 8080}],
                    "logConfiguration": {"logDriver": "awslogs", "options": {
                        "awslogs-group": format!("/ecs/{service}"), "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "app"}}}]}),
            )
            .await?;
        let td = registered["taskDefinition"]["taskDefinitionArn"].clone();
        client
            .call(
                "CreateService",
                json!({"cluster": "prod", "serviceName": service, "taskDefinition": td, "desiredCount": 2,
                    "deploymentController": {"type": "ECS"},
                    "deploymentConfiguration": ecs_deployment_configuration(&hook_arn, None),
                    "loadBalancers": [{"targetGroupArn": elb.blue,
                        "containerName": "web", "containerPort": 8080,
                        "advancedConfiguration": {
                            "alternateTargetGroupArn": elb.green,
                            "productionListenerRule": elb.production_rule,
                            "testListenerRule": elb.test_rule,
                            "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsInfrastructureRoleForLoadBalancers")}}]}),
            )
            .await?;
    }
    Ok(())
}

/// The application `web-app` and its group `web-dg` (service `prod/web`, alarm
/// `web-5xx`).
pub(crate) async fn seed_codedeploy(endpoint: &str, elb: &ElbSeed) -> Result<(), String> {
    reqwest_like::Client::new(endpoint)
        .call(
            "CreateApplication",
            json!({"applicationName": "web-app", "computePlatform": "ECS"}),
        )
        .await?;
    seed_codedeploy_group(endpoint, elb, "web-dg", "web", ALARM).await
}

/// A blue/green deployment group of `web-app` for `prod/<service>` behind `elb`,
/// stopped by `alarm`.
pub(crate) async fn seed_codedeploy_group(
    endpoint: &str,
    elb: &ElbSeed,
    group: &str,
    service: &str,
    alarm: &str,
) -> Result<(), String> {
    // The target groups are named after the load balancer (`<name>-blue`).
    let prefix = elb
        .blue
        .rsplit(":targetgroup/")
        .next()
        .and_then(|tg| tg.split('/').next())
        .and_then(|name| name.strip_suffix("-blue"))
        .unwrap_or("web");
    let client = reqwest_like::Client::new(endpoint);
    client
        .call(
            "CreateDeploymentGroup",
            json!({
                "applicationName": "web-app",
                "deploymentGroupName": group,
                "serviceRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/ecsCodeDeployRole"),
                "deploymentConfigName": "CodeDeployDefault.ECSCanary10Percent5Minutes",
                "deploymentStyle": {"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                "ecsServices": [{"serviceName": service, "clusterName": "prod"}],
                "autoRollbackConfiguration": {"enabled": true, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
                "alarmConfiguration": {"enabled": true, "alarms": [{"name": alarm}]},
                "loadBalancerInfo": {"targetGroupPairInfoList": [{
                    "targetGroups": [{"name": format!("{prefix}-blue")}, {"name": format!("{prefix}-green")}],
                    "prodTrafficRoute": {"listenerArns": [elb.production_listener]},
                    "testTrafficRoute": {"listenerArns": [elb.test_listener]}
                }]}
            }),
        )
        .await?;
    Ok(())
}
