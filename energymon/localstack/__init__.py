"""Servers the local stack and the tests start themselves: the tansu broker, influxd, and the S3
server (moto) that tansu's s3:// storage needs in the fault tests."""
