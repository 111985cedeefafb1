//! The CloudWatch stand-in on its own, through the real aws-sdk-cloudwatch client
//! (which speaks rpc-v2-cbor): what it claims of GetMetricData.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};
use greenlight_standins::cloudwatch::CloudWatchStandIn;
use greenlight_standins::http::serve;

async fn client(standin: &CloudWatchStandIn) -> aws_sdk_cloudwatch::Client {
    let addr = serve(standin.handler()).await.unwrap();
    let conf = aws_sdk_cloudwatch::Config::builder()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .build();
    aws_sdk_cloudwatch::Client::from_conf(conf)
}

fn requests(id: &str, tg: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/ApplicationELB")
                        .metric_name("RequestCount")
                        .dimensions(Dimension::builder().name("TargetGroup").value(tg).build())
                        .dimensions(
                            Dimension::builder()
                                .name("LoadBalancer")
                                .value("app/web/1")
                                .build(),
                        )
                        .build(),
                )
                .period(60)
                .stat("Sum")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn get_metric_data_answers_in_cbor_with_only_the_periods_that_have_data() {
    let standin = CloudWatchStandIn::new();
    let dims = [
        ("TargetGroup", "targetgroup/green/1"),
        ("LoadBalancer", "app/web/1"),
    ];
    for (t, v) in [(1_000_020, 120.0), (1_000_080, 130.0), (1_000_200, 90.0)] {
        standin.put("AWS/ApplicationELB", "RequestCount", &dims, "Sum", t, v);
    }
    // Another target group and another statistic must not leak into the answer.
    standin.put(
        "AWS/ApplicationELB",
        "RequestCount",
        &[
            ("TargetGroup", "targetgroup/blue/2"),
            ("LoadBalancer", "app/web/1"),
        ],
        "Sum",
        1_000_020,
        999.0,
    );
    standin.put(
        "AWS/ApplicationELB",
        "RequestCount",
        &dims,
        "Average",
        1_000_020,
        5.0,
    );
    let cw = client(&standin).await;

    let out = cw
        .get_metric_data()
        .metric_data_queries(requests("green", "targetgroup/green/1"))
        .metric_data_queries(requests("nothing", "targetgroup/none/3"))
        .start_time(DateTime::from_secs(1_000_000))
        .end_time(DateTime::from_secs(1_000_180))
        .send()
        .await
        .unwrap();

    let green = &out.metric_data_results()[0];
    assert_eq!(green.id(), Some("green"));
    assert_eq!(green.status_code(), Some(&StatusCode::Complete));
    // Newest first by default; the datapoint at 1_000_200 is past EndTime.
    assert_eq!(green.values(), [130.0, 120.0]);
    assert_eq!(
        green
            .timestamps()
            .iter()
            .map(|t| t.secs())
            .collect::<Vec<_>>(),
        [1_000_080, 1_000_020]
    );
    assert!(
        out.metric_data_results()[1].values().is_empty(),
        "no data is no datapoint"
    );

    let ascending = cw
        .get_metric_data()
        .metric_data_queries(requests("green", "targetgroup/green/1"))
        .start_time(DateTime::from_secs(1_000_000))
        .end_time(DateTime::from_secs(1_000_300))
        .scan_by(ScanBy::TimestampAscending)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ascending.metric_data_results()[0].values(),
        [120.0, 130.0, 90.0]
    );
    assert_eq!(standin.calls(), 2);
}

#[tokio::test]
async fn a_missing_time_range_is_an_error_the_sdk_reads() {
    let standin = CloudWatchStandIn::new();
    let cw = client(&standin).await;
    let err = cw
        .get_metric_data()
        .metric_data_queries(requests("green", "targetgroup/green/1"))
        .send()
        .await
        .unwrap_err();
    let message = format!("{}", aws_sdk_cloudwatch::error::DisplayErrorContext(&err));
    assert!(
        message.contains("StartTime and EndTime are required"),
        "{message}"
    );
}
