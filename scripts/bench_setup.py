"""What the benchmarks that scripts/bench-*.sh run against their admin share: a client logged in
as its superadmin, and a train and a validation dataset to train on.
"""

import os
import tempfile

from rafiki.client import Client


def superadmin_with_datasets(port, task):
    """Logs in as the superadmin of the admin on `port` (SUPERADMIN_PASSWORD) and uploads a
    train and a validation dataset of `task` (the same two-line CSV) from a new working
    directory. Returns the client, that directory, and the two datasets as uploaded.
    """
    client = Client(admin_host="127.0.0.1", admin_port=port)
    client.login(email="superadmin@rafiki", password=os.environ["SUPERADMIN_PASSWORD"])
    work = tempfile.mkdtemp()
    data = os.path.join(work, "data.csv")
    with open(data, "w") as f:
        f.write("x,y\n1,2\n")
    train = client.create_dataset("d", task, data)
    val = client.create_dataset("v", task, data)
    return client, work, train, val
