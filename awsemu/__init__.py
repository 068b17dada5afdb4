"""A local emulator of the AWS APIs the product calls: Bedrock (runtime and batch inference), Personalize
(runtime and control plane), S3 and STS, speaking their real wire protocols on one HTTP port.

Start it with `awsemu.server.Emulator` in tests, or `manage.py aws_emulator` in the foreground; point boto3 at it
with `endpoint_url` or the `AWS_ENDPOINT_URL_*` variables. Nothing here imports Django except the command.
"""
