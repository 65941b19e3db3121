"""Sends N authenticated `GET /users` requests to the admin on 127.0.0.1:PORT, one after
another on one keep-alive connection, and checks each answer (scripts/bench-metrics-cost.sh).

Usage: python3 scripts/bench_requests.py PORT TOKEN N
"""

import http.client
import json
import sys


def main() -> None:
    port, token, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}"}
    users = None
    for _ in range(count):
        connection.request("GET", "/users", headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"GET /users answered {response.status}: {body[:200]!r}")
        users = len(json.loads(body))
    print(f"{count} requests, {users} users each")


if __name__ == "__main__":
    main()
