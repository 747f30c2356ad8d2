//! CustomResourceDefinitions: their resources are served once created, print their
//! columns, accept merge patches, and go away with the CRD.

use crate::common;

use common::TestCluster;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
          status:
            type: object
            properties:
              phase: {type: string}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_are_served_once_their_crd_exists() {
    let c = TestCluster::start().await;
    c.ok_stdin(&["apply", "-f", "-"], CRD).await;
    c.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ])
    .await;
    let out = c.ok_stdin(&["apply", "-f", "-"], "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n  color: red\n").await;
    assert!(out.contains("widget.example.com/w1 created"), "{out}");
    let table = c.ok(&["get", "wd"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SIZE", "AGE"]);
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("w1") && l.split_whitespace().nth(1) == Some("3")),
        "{table}"
    );

    // kubectl uses a JSON merge patch for custom resources.
    c.ok(&[
        "patch",
        "widget",
        "w1",
        "--type=merge",
        "-p",
        "{\"spec\":{\"size\":5}}",
    ])
    .await;
    assert_eq!(
        c.ok(&[
            "get",
            "widget",
            "w1",
            "-o",
            "jsonpath={.spec.size} {.metadata.generation}"
        ])
        .await,
        "5 2"
    );
    let resources = c.ok(&["api-resources", "--api-group=example.com"]).await;
    assert!(
        resources.contains("widgets") && resources.contains("wd") && resources.contains("Widget"),
        "{resources}"
    );

    c.ok(&["delete", "crd", "widgets.example.com"]).await;
    let gone = c
        .fails(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets",
        ])
        .await;
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
}
