"""Drives `waguard demo` with the real AWS CLI and boto3, as a newcomer would.

Usage: python3 demo_clients.py ENDPOINT. Exits non-zero with a message on the first mismatch.
"""
import json
import os
import subprocess
import sys

import boto3

endpoint = sys.argv[1]
arn = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef"
env = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="AKWGDEMOPAYMENTS0001",
    AWS_SECRET_ACCESS_KEY="demo-payments-secret-0001",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)


def cli(*args):
    return subprocess.run(
        ["aws", "wellarchitected", *args, "--endpoint-url", endpoint],
        env=env, capture_output=True, text=True, timeout=60,
    )


# The AWS CLI, exactly as `waguard demo` prints it.
ok = cli("create-template-share", "--template-arn", arn, "--shared-with", "ou-ab12-11111111")
assert ok.returncode == 0, ok.stderr
share_id = json.loads(ok.stdout)["ShareId"]
assert len(share_id) == 32, ok.stdout
denied = cli("create-template-share", "--template-arn", arn, "--shared-with", "ou-ab12-99999999")
assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr, denied.stderr
print("aws cli: allowed ->", share_id, "| denied ->", denied.stderr.strip().splitlines()[-1])

# boto3, through AWS_ENDPOINT_URL_WELLARCHITECTED as a team would configure it.
os.environ.update(env)
os.environ["AWS_ENDPOINT_URL_WELLARCHITECTED"] = endpoint
client = boto3.client("wellarchitected")
out = client.create_template_share(TemplateArn=arn, SharedWith="ou-ab12-22222222")
assert len(out["ShareId"]) == 32, out
listed = client.list_template_shares(TemplateArn=arn)["TemplateShareSummaries"]
# The two made through the gateway, and the demo's share made around it (for `waguard scan`).
assert {(s["SharedWith"], s["Status"]) for s in listed} == {
    ("ou-ab12-11111111", "PENDING"),
    ("ou-ab12-22222222", "PENDING"),
    ("ou-ab12-99999999", "ACCEPTED"),
}, listed
try:
    client.create_template_share(TemplateArn=arn, SharedWith="ou-ab12-99999999")
    raise SystemExit("boto3: unapproved OU was not denied")
except client.exceptions.AccessDeniedException as e:
    assert "ou-ab12-99999999" in str(e), e
    print("boto3: allowed ->", out["ShareId"], "| denied ->", e)
