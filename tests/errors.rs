//! Bad input answers what a real cluster answers, and leaves stored data untouched.

use crate::common;

use common::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_namespace_is_already_exists() {
    let c = TestCluster::start().await;
    c.ok(&["create", "namespace", "dup"]).await;
    let err = c.fails(&["create", "namespace", "dup"]).await;
    assert_eq!(
        err.trim(),
        "Error from server (AlreadyExists): namespaces \"dup\" already exists"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_name_is_unprocessable_with_the_dns_1123_message() {
    let c = TestCluster::start().await;
    let err = c
        .fails_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
        )
        .await;
    assert!(
        err.contains("The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        "{err}"
    );
    let pod = c.fails_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello-Pod\nspec:\n  containers:\n  - name: c\n    image: minke/hello\n").await;
    assert!(
        pod.contains(
            "The Pod \"hello-Pod\" is invalid: metadata.name: Invalid value: \"hello-Pod\""
        ),
        "{pod}"
    );
    assert_eq!(
        c.ok(&["get", "cm,pods", "-o", "name"]).await,
        "",
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_update_is_a_conflict_and_changes_nothing() {
    let c = TestCluster::start().await;
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '1'\n",
    )
    .await;
    let stale = c.ok(&["get", "cm", "x", "-o", "yaml"]).await;
    c.ok(&["patch", "cm", "x", "-p", "{\"data\":{\"a\":\"2\"}}"])
        .await;
    let err = c
        .fails_stdin(
            &["replace", "-f", "-"],
            &stale.replace("a: \"1\"", "a: \"3\""),
        )
        .await;
    assert!(
        err.contains("Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );
    assert_eq!(
        c.ok(&["get", "cm", "x", "-o", "jsonpath={.data.a}"]).await,
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_mib_configmap_is_too_large_and_a_1_5_mib_one_is_invalid() {
    let c = TestCluster::start().await;
    let big = "x".repeat(4 * 1024 * 1024);
    let path = c.path("big.txt");
    std::fs::write(&path, &big).expect("write");
    let err = c
        .fails(&[
            "create",
            "configmap",
            "big",
            &format!("--from-file=data={}", path.display()),
        ])
        .await;
    assert!(
        err.contains("Request entity too large: limit is 3145728"),
        "{err}"
    );
    let mid = c.path("mid.yaml");
    std::fs::write(
        &mid,
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mid\ndata:\n  data: {}\n",
            "y".repeat(1536 * 1024)
        ),
    )
    .expect("write");
    // `create`, not `apply`: apply's last-applied annotation would double the body.
    let err = c.fails(&["create", "-f", &mid.display().to_string()]).await;
    assert!(
        err.contains(
            "The ConfigMap \"mid\" is invalid: []: Too long: may not be more than 1048576 bytes"
        ),
        "{err}"
    );
    assert_eq!(
        c.ok(&["get", "cm", "-o", "name"])
            .await
            .lines()
            .filter(|l| !l.contains("kube-root-ca"))
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_unknown_kinds_are_refused() {
    let c = TestCluster::start().await;
    let yaml = c
        .fails_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
        )
        .await;
    assert!(
        yaml.contains("error converting YAML to JSON") || yaml.contains("yaml:"),
        "{yaml}"
    );
    let raw = c.path("bad.json");
    std::fs::write(&raw, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",").expect("write");
    let server = c
        .fails(&[
            "create",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
            "-f",
            &raw.display().to_string(),
        ])
        .await;
    assert!(
        server.contains("BadRequest") || server.contains("error decoding JSON"),
        "{server}"
    );
    let unknown = c
        .fails_stdin(
            &["apply", "-f", "-"],
            "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata:\n  name: f\n",
        )
        .await;
    assert!(
        unknown.contains("no matches for kind \"Frobnicator\" in version \"example.com/v1\""),
        "{unknown}"
    );
    let strict = c
        .fails_stdin(
            &["apply", "-f", "-"],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\nbogus: 1\n",
        )
        .await;
    assert!(strict.contains("unknown field \"bogus\""), "{strict}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_bomb_is_refused_with_bad_request() {
    let c = TestCluster::start().await;
    let mut doc = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\na0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        doc.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            vec![format!("*a{}", i - 1); 9].join(",")
        ));
    }
    let client = reqwest_like_post(
        &c,
        "/api/v1/namespaces/default/configmaps",
        "application/yaml",
        doc,
    )
    .await;
    assert_eq!(client.0, 400, "{}", client.1);
}

/// POST raw bytes over HTTPS with the cluster's token and CA (what a client that
/// skips kubectl's own YAML parsing would send).
async fn reqwest_like_post(
    c: &TestCluster,
    path: &str,
    content_type: &str,
    body: String,
) -> (u16, String) {
    let ca = c.path("ca.crt");
    std::fs::write(&ca, c.cluster.ca_pem()).expect("ca");
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--cacert",
            &ca.display().to_string(),
            "-H",
            &format!("Authorization: Bearer {}", c.cluster.token()),
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            "@-",
            &format!("{}{path}", c.cluster.server_url()),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut child = out;
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(body.as_bytes()).await.expect("body");
    }
    let out = child.wait_with_output().await.expect("curl output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_are_unauthorized() {
    let c = TestCluster::start().await;
    let ca = c.path("ca.crt");
    std::fs::write(&ca, c.cluster.ca_pem()).expect("ca");
    let curl = |path: &str| {
        let url = format!("{}{path}", c.cluster.server_url());
        let ca = ca.display().to_string();
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-sS", "--cacert", &ca, "-w", "\n%{http_code}", &url])
                .output()
                .await
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let denied = curl("/api/v1/namespaces").await;
    assert!(denied.ends_with("\n401"), "{denied}");
    let status: serde_json::Value =
        serde_json::from_str(denied.rsplit_once('\n').map(|(b, _)| b).unwrap_or(""))
            .expect("status json");
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("Unauthorized"), Some(401))
    );
    assert!(
        curl("/readyz").await.ends_with("ok\n200"),
        "health checks stay public"
    );
}
