#!/usr/bin/env python3
"""EKS token test vectors from botocore, made the way `aws eks get-token` makes them.

stdin:  JSON list of cases
        {"accessKeyId", "secretAccessKey", "sessionToken"?, "region", "cluster", "time": unix seconds}
stdout: JSON list, one {"url", "token"} per case, in order.

Mirrors awscli/customizations/eks/get_token.py: an STS client whose `provide-client-params` handler
moves the x-k8s-aws-id param into the request context and whose `before-sign` handler turns it into
a header, then generate_presigned_url('get_caller_identity', ExpiresIn=60, HttpMethod='GET'), and
the token is 'k8s-aws-v1.' + urlsafe base64 of the URL without padding.

Determinism:
- Time is frozen by patching botocore.auth.get_current_datetime, the one clock SigV4 signing reads
  (botocore.auth imports it by name from botocore.compat, so the patch goes where it is looked up).
  The script checks X-Amz-Date in every URL, so a botocore that reads the clock elsewhere fails
  loudly instead of producing vectors for "now".
- No ambient configuration: AWS_* variables are dropped and config/credential files pointed at
  /dev/null before botocore loads, so a developer's profile, endpoint override (AWS_ENDPOINT_URL)
  or credentials cannot leak in. Credentials are passed to the client explicitly.
- sts_regional_endpoints='regional': the token must name sts.<region>.amazonaws.com (the Lambda
  signs for its own region), whatever botocore's default of the day is.
"""

import base64
import datetime
import json
import os
import sys
from unittest import mock
from urllib.parse import parse_qs, urlsplit

for name in [n for n in os.environ if n.startswith("AWS_")]:
    del os.environ[name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402

K8S_AWS_ID_HEADER = "x-k8s-aws-id"
URL_TIMEOUT = 60
TOKEN_PREFIX = "k8s-aws-v1."


def retrieve_k8s_aws_id(params, context, **kwargs):
    if K8S_AWS_ID_HEADER in params:
        context[K8S_AWS_ID_HEADER] = params.pop(K8S_AWS_ID_HEADER)


def inject_k8s_aws_id_header(request, **kwargs):
    if K8S_AWS_ID_HEADER in request.context:
        request.headers[K8S_AWS_ID_HEADER] = request.context[K8S_AWS_ID_HEADER]


def vector(case):
    session = botocore.session.Session()
    session.set_config_variable("sts_regional_endpoints", "regional")
    sts = session.create_client(
        "sts",
        region_name=case["region"],
        aws_access_key_id=case["accessKeyId"],
        aws_secret_access_key=case["secretAccessKey"],
        aws_session_token=case.get("sessionToken"),
    )
    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", retrieve_k8s_aws_id)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", inject_k8s_aws_id_header)

    # Naive UTC, as botocore's own get_current_datetime() returns by default.
    frozen = datetime.datetime.fromtimestamp(case["time"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=frozen):
        url = sts.generate_presigned_url(
            "get_caller_identity",
            Params={K8S_AWS_ID_HEADER: case["cluster"]},
            ExpiresIn=URL_TIMEOUT,
            HttpMethod="GET",
        )

    amz_date = parse_qs(urlsplit(url).query).get("X-Amz-Date", [None])[0]
    if amz_date != frozen.strftime("%Y%m%dT%H%M%SZ"):
        sys.exit(f"eks-token-vectors: clock not frozen (X-Amz-Date {amz_date}); botocore changed how it reads time")

    token = TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("utf-8").rstrip("=")
    return {"url": url, "token": token}


def main():
    cases = json.load(sys.stdin)
    json.dump([vector(case) for case in cases], sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
