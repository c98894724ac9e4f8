mod common;
use common::{Server, TempDir};

for_each_backend!(serves_index_and_404,);
for_each_model!(serves_index_and_404);

fn serves_index_and_404() {
    let root = TempDir::new("smoke");
    root.write("index.html", "<h1>hi</h1>\n");
    let server = Server::start(root.path(), &[]);
    let r = server.get("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>hi</h1>\n");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(server.get("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
}
