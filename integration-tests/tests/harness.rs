//! The harness itself against the real services: ZooKeeper keeps data across a restart.

use integration_tests::ZooKeeper;
use zookeeper_client as zk;

#[tokio::test]
async fn zookeeper_serves_and_keeps_data_across_restart() {
    let mut server = ZooKeeper::start();
    let client = zk::Client::connect(&server.connect_string()).await.unwrap();
    let acl = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    client.create("/harness", b"kept", &acl).await.unwrap();
    drop(client);

    server.restart();
    let client = zk::Client::connect(&server.connect_string()).await.unwrap();
    let (data, _) = client.get_data("/harness").await.unwrap();
    assert_eq!(data, b"kept");
}
