"""Creates the sync table on a local DynamoDB-compatible server (moto) from the Table
resource of infra/template.yaml itself, so that local runs use the deployed schema.

    python create-table.py ENDPOINT TABLE_NAME [TEMPLATE]

Needs boto3 and PyYAML (both come with moto[server]). Only for local endpoints.
"""

import sys
import time
from urllib.parse import urlparse

import boto3
import yaml


def main() -> None:
    endpoint, table = sys.argv[1], sys.argv[2]
    template = sys.argv[3] if len(sys.argv) > 3 else "infra/template.yaml"
    host = urlparse(endpoint).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing a non-local endpoint: {endpoint}")
    resources = yaml.safe_load(open(template))["Resources"]
    (props,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::DynamoDB::Table"]
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    args = {
        "TableName": table,
        "BillingMode": props["BillingMode"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
    }
    if "LocalSecondaryIndexes" in props:
        args["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
    client.create_table(**args)
    for _ in range(100):
        if client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
    print(f"table {table} created at {endpoint}")


if __name__ == "__main__":
    main()
