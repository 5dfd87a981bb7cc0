#!/usr/bin/env python3
"""GetSecretValue requests as botocore makes and signs them, for src/lambda/secrets-manager.test.ts.

stdin:  JSON list of cases
        {"accessKeyId", "secretAccessKey", "sessionToken"?, "region", "time": unix seconds,
         "secretId", "versionStage",
         "ours": {"method", "url", "headers": {name: value}, "body"}}   (our signed request)
stdout: JSON list, one per case, in order:
        {"botocore": {"url", "target", "contentType", "body"},   (botocore's own request)
         "authorization"}   (botocore's SigV4 over exactly our method, URL, headers and body)

Two checks, independent of the signer we ship: that our request is the one botocore sends (URL,
X-Amz-Target, Content-Type, JSON body), and that botocore's SigV4, run over our request's bytes and
headers at the same instant, computes the Authorization header we computed — what Secrets Manager
verifies. Time is frozen as in eks-token-vectors.py; ambient AWS_* configuration is dropped.
"""

import datetime
import json
import os
import sys
from unittest import mock

for name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import botocore.auth  # noqa: E402
import botocore.awsrequest  # noqa: E402
import botocore.credentials  # noqa: E402
import botocore.session  # noqa: E402


def vector(case):
    frozen = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc).replace(tzinfo=None)
    captured = {}

    def capture(request, **kwargs):
        text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else v  # noqa: E731
        captured["url"] = request.url
        captured["target"] = text(request.headers.get("X-Amz-Target"))
        captured["contentType"] = text(request.headers.get("Content-Type"))
        captured["body"] = text(request.body)
        return botocore.awsrequest.AWSResponse(request.url, 200, {}, None)

    session = botocore.session.Session()
    client = session.create_client(
        "secretsmanager",
        region_name=case["region"],
        aws_access_key_id=case["accessKeyId"],
        aws_secret_access_key=case["secretAccessKey"],
        aws_session_token=case.get("sessionToken"),
    )
    client.meta.events.register("before-send.secrets-manager.GetSecretValue", capture)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        try:
            client.get_secret_value(SecretId=case["secretId"], VersionStage=case["versionStage"])
        except Exception:  # the empty stand-in response does not parse; the request is captured
            pass
    if "url" not in captured:
        sys.exit("secretsmanager-vectors: botocore sent no request (event name changed?)")

    ours = case["ours"]
    headers = {k: v for k, v in ours["headers"].items() if k.lower() != "authorization"}
    request = botocore.awsrequest.AWSRequest(
        method=ours["method"], url=ours["url"], headers=headers, data=ours["body"].encode("utf-8")
    )
    credentials = botocore.credentials.Credentials(
        case["accessKeyId"], case["secretAccessKey"], case.get("sessionToken")
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        botocore.auth.SigV4Auth(credentials, "secretsmanager", case["region"]).add_auth(request)
    return {"botocore": captured, "authorization": request.headers["Authorization"]}


def main():
    cases = json.load(sys.stdin)
    json.dump([vector(case) for case in cases], sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
