"""schemathesis hooks of the API fuzz run: keep every request on the test server.

`POST /datasets` takes a `dataset_url` the admin downloads from; a generated one could name
any host, so the field is dropped from generated forms (the admin's refusal of private and
malformed URLs is tested in crates/rafiki-admin/tests/api/dataset_urls.rs).
"""

import schemathesis


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is not None and operation.path == "/datasets" and isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "dataset_url"}
    return body
