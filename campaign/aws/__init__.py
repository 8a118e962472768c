"""boto3 clients and requests."""
