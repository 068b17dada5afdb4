"""A local emulator of the AWS HTTP APIs the product calls (Bedrock Runtime, Personalize Runtime).

Start it with `awsemu.server.Emulator` in tests, or `manage.py aws_emulator` in the foreground; point
boto3 at it with `endpoint_url`. Nothing here imports Django except the management command.
"""
